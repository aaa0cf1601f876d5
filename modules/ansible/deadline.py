"""Stopping ansible-playbook at a step's time limit, or on an interrupt, with the tasks it
started."""
from __future__ import annotations

import os
import signal
import time
from typing import Callable

GRACE_S = 10.0  # after SIGTERM, how long ansible-playbook has to stop its workers


class PlaybookStopper:
    """ansible-runner's cancel_callback, used instead of its `timeout`.

    ansible-runner's own timeout SIGKILLs ansible-playbook's process group, but ansible-core
    runs each task in a worker with a session of its own (setsid), so the task would run on,
    orphaned, after the step reported a timeout. At the deadline this sends SIGTERM to
    ansible-playbook, which passes it to every worker's group and ends; only if it is still
    running `grace` seconds later does it ask ansible-runner to kill it.

    Passing any cancel_callback also keeps ansible-runner from installing its own SIGINT and
    SIGTERM handlers in this process, which it never restores (Ctrl-C would stop working for
    the rest of the otpatch run).
    """

    def __init__(self, seconds: float | None, pid_of: Callable[[], int | None], *,
                 grace: float = GRACE_S, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds  # None: no time limit
        self.expired = False
        self._clock = clock
        self._end = None if seconds is None else clock() + seconds
        self._pid_of = pid_of  # ansible-playbook's pid, known from its first event
        self._grace = grace
        self._terminated_at: float | None = None

    def __call__(self) -> bool:
        """True: cancel now (ansible-runner then kills the process group)."""
        now = self._clock()
        if self._end is None or now < self._end:
            return False
        self.expired = True
        if self._terminated_at is None:
            return not self.terminate()
        return now - self._terminated_at >= self._grace

    def terminate(self) -> bool:
        """SIGTERM to ansible-playbook, which stops its workers; False if it is not known to
        run (no event yet: no play, so no worker, has started)."""
        pid = self._pid_of()
        if pid is None:
            return False
        self._terminated_at = self._clock()
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        return True
