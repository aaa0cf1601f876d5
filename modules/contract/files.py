"""The files a user names: inputs only regular files read with a bound, outputs written
atomically (a temporary file in the same folder, then os.replace) to a regular path.

A FIFO, a device or a directory is refused from its stat, before anything opens it, and
inputs are opened without blocking at the open (O_NONBLOCK on POSIX), in binary mode, and
checked again on the open descriptor, so neither a FIFO nor a path swapped between the two
checks can block a command (platform.open_for_reading)."""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from otpatch.modules.contract.errors import InputError, clip
from otpatch.modules.contract.platform import open_for_reading

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words: `a FIFO`, `a directory`..."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _not_regular(path: str | os.PathLike, mode: int) -> OSError:
    return OSError(errno.EINVAL, f"not a regular file ({kind_of(mode)})", str(path))


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """Open a regular file for reading; OSError (its strerror says why) for anything else,
    never blocking on a FIFO or a device."""
    before = os.stat(path)
    if not stat.S_ISREG(before.st_mode):
        raise _not_regular(path, before.st_mode)
    fd = open_for_reading(path)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # swapped since the stat
            raise _not_regular(path, mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of the regular file `what` at path, at most `limit` of them; InputError
    naming `what`, the path and the bound otherwise."""
    try:
        with open_regular(path) as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise InputError(f"{what} {clip(os.fsdecode(path))}: cannot read: "
                         f"{e.strerror or e}") from None
    if len(data) > limit:
        raise InputError(f"{what} {clip(os.fsdecode(path))}: larger than "
                         f"{format_size(limit)}: refused unread")
    return data


def write_atomic(path: str | os.PathLike, data: bytes, what: str) -> None:
    """Write `data` to a regular file at path: a temporary file in the same folder, synced,
    then renamed over it, so a reader sees the old file or the new one, never half of one.
    InputError for a missing folder, a directory, a FIFO or device, a symlink loop."""
    shown = f"{what} {clip(os.fsdecode(path))}"
    target = _output_target(Path(path), shown)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:100]}.",
                                   suffix=".tmp")
    except OSError as e:
        raise InputError(f"{shown}: cannot write in {target.parent}: "
                         f"{e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{shown}: cannot write: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _output_target(path: Path, shown: str) -> Path:
    """The regular path an output replaces (a symlink's target), or InputError."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:  # a symlink loop, a name too long, a folder we cannot search
        raise InputError(f"{shown}: cannot write: {e.strerror or e}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InputError(f"{shown}: cannot write: not a regular file ({kind_of(st.st_mode)})")
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise InputError(f"{shown}: cannot write: the folder {target.parent} does not exist")
    return target


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def format_size(limit: int) -> str:
    """A bound in words: 2 GiB, 1 MiB, 300 bytes."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"
