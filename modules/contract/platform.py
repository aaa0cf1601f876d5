"""The one home of OS-specific facilities (POSIX and Windows): a run lock, opening files for
reading and creating private ones, directory fsync, terminal names and stop signals."""
from __future__ import annotations

import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any, NamedTuple

from otpatch.modules.contract.errors import InputError

LOCK_FILE_MODE = 0o600  # the lock file is the run's own, as the rest of its folder


def _native_lock(path: Path) -> Any:
    """filelock's OS lock on `path`: flock on POSIX, LockFileEx on Windows; either is freed by
    the OS when its process dies. Never a soft lock (a marker file outlives a SIGKILLed run).
    Imported here, not at the top: reading a file (this module's other use) needs none of it."""
    from filelock import FileLock

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
        from filelock import Timeout

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
    from filelock import Timeout

    probe = _native_lock(path)
    try:
        probe.acquire()
    except Timeout:
        return True
    probe.release()
    return False


# -- which OS ------------------------------------------------------------------------------

def on_windows() -> bool:
    """Whether this is Windows. sys.platform is "win32" there, on 64-bit Windows too (Python
    docs, sys.platform); the one place that asks, so each branch below reads it."""
    return sys.platform == "win32"


def runs_as_root() -> bool | None:
    """Whether this process runs as root (effective uid 0); None on Windows, which has no
    uids (os.geteuid: "Availability: Unix", Python docs)."""
    if on_windows():
        return None
    return os.geteuid() == 0


# -- opening and creating files ------------------------------------------------------------

def _os_flags(*names: str) -> int:
    """The os.open flags among `names` that this OS defines, OR-ed together. The Python docs
    (os module, "open() flag constants") list O_NONBLOCK, O_NOCTTY and O_CLOEXEC as "only
    available on Unix" and O_BINARY as "only available on Windows": each is asked by name."""
    flags = 0
    for name in names:
        flags |= getattr(os, name, 0)
    return flags


# O_BINARY: "on Windows adding O_BINARY is needed to open files in binary mode" (Python docs,
# os.open); without it the C runtime reads \r\n as \n and stops at 0x1A, so a firmware image
# would be hashed altered. O_NONBLOCK: opening a FIFO returns at once instead of waiting for
# a writer (POSIX open(2)); O_NOCTTY: a terminal opened by name never becomes ours.
_READ_FLAGS = os.O_RDONLY | _os_flags("O_BINARY", "O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC")
_NONBLOCK = _os_flags("O_NONBLOCK")


def read_flags() -> int:
    """The flags open_for_reading opens with: read only, binary, and on POSIX without
    blocking at the open and without taking a terminal."""
    return _READ_FLAGS


def open_for_reading(path: str | os.PathLike) -> int:
    """A descriptor of `path` opened with read_flags(), in blocking mode again for reading.
    The caller checks what it opened (os.fstat) before it reads."""
    fd = os.open(path, _READ_FLAGS)
    try:
        if _NONBLOCK:  # only where O_NONBLOCK exists: os.set_blocking is Unix only on 3.11
            os.set_blocking(fd, True)  # (Python docs, os.set_blocking; pipes only on Windows)
    except BaseException:
        os.close(fd)
        raise
    return fd


PRIVATE_FILE_MODE = 0o600


def create_private(path: str | os.PathLike, *, replace: bool = False) -> int:
    """A descriptor of a new binary file at `path` for writing, mode 0600 on POSIX whatever
    the umask. FileExistsError if the file exists, unless `replace`: then it is truncated.

    On Windows the file is created with the folder's ACL: os.chmod (and os.fchmod from 3.13)
    "only supports setting the file's read-only flag" there (Python docs, os.chmod), so
    there is no mode to set; who may read the file is the ACL's to say."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags | _os_flags("O_BINARY"), PRIVATE_FILE_MODE)
    try:
        if not on_windows():  # os.fchmod: Unix; Windows only from 3.13, read-only flag only
            os.fchmod(fd, PRIVATE_FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_for_append(path: str | os.PathLike, mode: int = 0o644) -> int:
    """A descriptor of `path` for appending bytes, created with `mode` if missing: binary on
    Windows too (os.O_BINARY, Python docs for os.open: "Windows only"), so a line written
    ends in LF there as here."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _os_flags("O_BINARY"), mode)


def is_private(st: os.stat_result) -> bool | None:
    """Whether the file `st` describes is closed to group and others: its POSIX mode bits.
    None on Windows, where it cannot be told from them: os.stat reports 0o666 (0o444 if
    read-only) for every file, since permissions there are the file's ACL (Python docs,
    os.chmod: "All other bits are ignored")."""
    if on_windows():
        return None
    return not st.st_mode & (stat.S_IRWXG | stat.S_IRWXO)


def fsync_directory(folder: str | os.PathLike) -> None:
    """Make a new entry in `folder` durable (POSIX fsync(2) of the directory: "an explicit
    fsync() on a file descriptor for the directory is also needed").

    Nothing on Windows: os.open cannot open a directory there (the C runtime's CreateFile
    lacks FILE_FLAG_BACKUP_SEMANTICS, which Microsoft's CreateFileW docs require for a
    directory handle; Python raises PermissionError), and NTFS journals its own metadata."""
    if on_windows():
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the terminal and the signals a person sends -------------------------------------------

def terminal_name(fd: int) -> str | None:
    """The device path of the terminal on `fd` (/dev/pts/3); None if `fd` is not a terminal
    or this OS does not name terminals: os.ttyname is Unix only (Python docs, os.ttyname),
    and a Windows console has no device path to record."""
    if on_windows():
        return None
    try:
        return os.ttyname(fd)
    except OSError:  # "If fd is not associated with a terminal device, an exception is raised"
        return None


class StopSignals(NamedTuple):
    """The signals a foreground command stops on here, and how a person sends them."""

    signals: tuple[signal.Signals, ...]
    words: str  # "Ctrl-C or SIGTERM"


def stop_signals() -> StopSignals:
    """SIGINT and SIGTERM on POSIX. On Windows SIGINT and SIGBREAK (Ctrl-C, Ctrl-Break): a
    console delivers only those two, and os.kill with SIGTERM there is TerminateProcess,
    which no handler sees (Python docs, signal.SIGBREAK, signal.signal and os.kill)."""
    if on_windows():
        return StopSignals((signal.SIGINT, signal.SIGBREAK), "Ctrl-C or Ctrl-Break")
    return StopSignals((signal.SIGINT, signal.SIGTERM), "Ctrl-C or SIGTERM")


# -- the clock -------------------------------------------------------------------------------

class ClockSync(NamedTuple):
    """What the OS reports of the host clock's synchronisation (IEC 62443-3-3 SR 2.11):
    synchronised True/False, or None when this OS reports nothing otpatch reads; the error
    bound it gives (seconds, None if none); how it was read; the offset still being
    corrected (seconds, None if not reported). Windows (w32tm) and macOS (timed) keep this
    to their own services, with no read-only kernel call: there it is "not read"."""

    synchronised: bool | None
    max_error: float | None
    how: str
    offset: float | None = None  # seconds the kernel's PLL still corrects, as it reports it


_TIME_ERROR = 5  # adjtimex(2): "the system clock is not synchronized to a reliable server"
_STA_UNSYNC = 0x0040  # adjtimex(2) status bit: clock unsynchronized
_STA_NANO = 0x2000  # adjtimex(2) status bit: offset and other times in nanoseconds


def clock_sync() -> ClockSync:
    """The kernel's own view on Linux: adjtimex(2) with modes 0 only reads (man 2 adjtimex:
    the return value is the clock state, TIME_ERROR when unsynchronised; maxerror is the
    maximum error in microseconds). Other systems: not read (None), said so."""
    if not sys.platform.startswith("linux"):
        return ClockSync(None, None, f"not read on {sys.platform}")
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    tx = _timex_type()()
    state = libc.adjtimex(ctypes.byref(tx))
    if state < 0:
        return ClockSync(None, None, f"adjtimex failed: errno {ctypes.get_errno()}")
    unsynced = state == _TIME_ERROR or bool(tx.status & _STA_UNSYNC)
    unit = 1e9 if tx.status & _STA_NANO else 1e6  # offset in ns with STA_NANO, else in us
    return ClockSync(not unsynced, tx.maxerror / 1e6,
                     f"adjtimex: state {state}, status {tx.status:#x}", tx.offset / unit)


def _timex_type() -> Any:
    """glibc's struct timex (sys/timex.h) on Linux: its fields in order, then the eleven
    reserved ints; 208 bytes on x86_64."""
    import ctypes

    class TimeVal(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]

    longs = ("offset", "freq", "maxerror", "esterror")
    more = ("constant", "precision", "tolerance")
    tail = ("tick", "ppsfreq", "jitter")
    counts = ("stabil", "jitcnt", "calcnt", "errcnt", "stbcnt")

    class Timex(ctypes.Structure):
        _fields_ = ([("modes", ctypes.c_uint)] + [(n, ctypes.c_long) for n in longs]
                    + [("status", ctypes.c_int)] + [(n, ctypes.c_long) for n in more]
                    + [("time", TimeVal)] + [(n, ctypes.c_long) for n in tail]
                    + [("shift", ctypes.c_int)] + [(n, ctypes.c_long) for n in counts]
                    + [("tai", ctypes.c_int), ("_reserved", ctypes.c_int * 11)])
    return Timex

