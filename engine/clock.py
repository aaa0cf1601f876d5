"""Clocks: wall time for execute runs, virtual time for dry runs (a 4-hour soak passes at once)."""
from __future__ import annotations

import time
from datetime import datetime, timezone


class WallClock:
    """Real time; sleep really sleeps."""

    simulated = False

    def __init__(self, start: float | None = None) -> None:
        self._start = time.time() if start is None else start

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def elapsed(self) -> float:
        return time.time() - self._start


class VirtualClock:
    """Simulated time: starts at the run's wall start, advances only when told to."""

    simulated = True

    def __init__(self, start: float | None = None, elapsed: float = 0.0) -> None:
        # A resumed dry run continues from the simulated time the journal last recorded.
        self._start = time.time() if start is None else start
        self._elapsed = elapsed

    def now(self) -> float:
        return self._start + self._elapsed

    def sleep(self, seconds: float) -> None:
        self._elapsed += max(0.0, seconds)

    def elapsed(self) -> float:
        return self._elapsed


def iso(ts: float) -> str:
    """UTC ISO 8601 with seconds, for records a person reads."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
