"""Waiting on a device by the run's clock: real waits in execute mode, virtual in a dry run."""
from __future__ import annotations

import os
import signal
from typing import Any, Callable, TypeVar

T = TypeVar("T")

# Test hook, inert unless set: with OTPATCH_FAULT_KILL_POLL=N in the environment the process
# sends itself SIGKILL right after the N-th interval it waits in poll_until (counted from 1
# over the whole process), so a crash test lands inside a device action (mid-transfer,
# mid-reboot, mid-restore), a simulated instant no journal commit marks. Like
# engine/journal.py's OTPATCH_FAULT_KILL.
FAULT_KILL_POLL_ENV = "OTPATCH_FAULT_KILL_POLL"
_waited_intervals = 0


def poll_until(ctx: Any, check: Callable[[], T | None], *, timeout: float, interval: float,
               advance: Callable[[float], None] | None = None) -> tuple[T | None, float]:
    """Call `check` every `interval` seconds of the run's clock until it returns something
    other than None, or `timeout` seconds have passed; returns (value or None, waited).

    In a dry run the run's clock is virtual: each interval advances it at once, and
    `advance(seconds)` lets the simulator pass the same simulated time, so an 8-minute
    transfer takes 8 simulated minutes and no real ones."""
    waited = 0.0
    while True:
        value = check()
        if value is not None or waited >= timeout:
            return value, waited
        step = min(interval, timeout - waited)
        ctx.clock.sleep(step)
        if ctx.clock.simulated and advance is not None:
            advance(step)
        waited += step
        _kill_if_asked()


def _kill_if_asked() -> None:
    global _waited_intervals
    limit = os.environ.get(FAULT_KILL_POLL_ENV)
    if not limit:
        return
    _waited_intervals += 1
    if _waited_intervals == int(limit):
        os.kill(os.getpid(), signal.SIGKILL)
