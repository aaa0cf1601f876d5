"""The one home of OS-specific facilities: a run lock that works on POSIX and on Windows."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from otpatch.modules.contract.errors import InputError

LOCK_FILE_MODE = 0o600  # the lock file is the run's own, as the rest of its folder


def _native_lock(path: Path) -> FileLock:
    """filelock's OS lock on `path`: flock on POSIX, LockFileEx on Windows; either is freed by
    the OS when its process dies. Never a soft lock (a marker file outlives a SIGKILLed run)."""
    return FileLock(
        path, timeout=0, blocking=False, mode=LOCK_FILE_MODE,
        thread_local=False,  # held by this object, whichever thread enters or leaves it
        is_singleton=False,  # a second object on one path is a second holder, refused
        fallback_to_soft=False,  # a file system without flock is an error, not a soft lock
        preserve_lock_file=True)  # the file stays on release (Windows would remove it)


class RunLock:
    """An exclusive, non-blocking lock on the file `path` for the length of a `with` block.

    Entering raises InputError(busy_message) while anyone else holds it: another process, or
    another RunLock (or this one, entered twice) in this process. The OS frees it when the
    holding process dies, so a killed run can be resumed at once.
    """

    def __init__(self, path: str | os.PathLike[str], busy_message: str) -> None:
        self.path = Path(path)
        self.busy_message = busy_message
        self._lock = _native_lock(self.path)

    def __enter__(self) -> "RunLock":
        if self._lock.is_locked:  # filelock re-enters its own holds; a run lock never does
            raise InputError(self.busy_message)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise InputError(self.busy_message) from None
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()


def lock_held(path: str | os.PathLike[str]) -> bool:
    """Whether someone holds the lock on `path` right now (a RunLock in this process counts).
    A probe: one non-blocking attempt, released at once; False if the file does not exist."""
    path = Path(path)
    if not path.exists():
        return False
    probe = _native_lock(path)
    try:
        probe.acquire()
    except Timeout:
        return True
    probe.release()
    return False
