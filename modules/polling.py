"""Waiting on a device by the run's clock: real waits in execute mode, virtual in a dry run."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T")


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
