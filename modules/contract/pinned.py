"""Files the site's administrator pins (keys otpatch trusts): their protection checked."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

from otpatch.modules.contract.errors import InputError
from otpatch.modules.contract.files import open_regular
from otpatch.modules.contract.platform import on_windows, runs_as_root


def read_pinned(path: Path, limit: int, what: str, install: str,
                refuse: Callable[[str], Exception] = InputError) -> tuple[bytes, str, str]:
    """(bytes, protection in words, note) of the pinned regular file `path`, at most `limit`
    bytes; refuse(one line naming it) if it cannot be read, is larger, or someone but root
    can change it (see protection)."""
    real = Path(os.path.realpath(path))
    try:
        with open_regular(real) as f:
            st = os.fstat(f.fileno())
            raw = f.read(limit + 1)
    except OSError as e:
        raise refuse(f"{what} {path} cannot be read: {e.strerror or e}") from None
    if len(raw) > limit:
        raise refuse(f"{what} {path}: larger than {limit // 1024} KiB: refused unread")
    words, note = protection(path, real, st, what, install, refuse)
    return raw, words, note


def protection(path: Path, real: Path, st: os.stat_result, what: str, install: str,
               refuse: Callable[[str], Exception] = InputError) -> tuple[str, str]:
    """(protection in words, note) of the pinned file or folder `path` (`real`: its real
    path, `st`: its stat). Raises refuse("{what} {path} can be changed by {who} ({why}):
    {install}") if someone but root can change it, or replace it through a folder above.

    A variable can point otpatch at any file, so where its trust comes from is checked, not
    assumed: on POSIX the file and every folder above it must be owned by root and not
    writable by group or others, a sticky folder such as /tmp excepted (the checks of
    OpenSSH's StrictModes and of sudo on sudoers). On Windows the ACL is not read (as
    engine/keys.py does for private keys): that is noted, not refused. Running as root is
    noted too: root can edit the file whatever its mode. Used by engine/registerkeys.py
    (register signers) and modules/advisories/signatures.py (advisory signing keys)."""
    if on_windows():
        return ("not checked on Windows", f"on Windows the ACL of {path} is not checked: "
                "let only administrators write it")
    trouble = changeable(real, st)
    if trouble:
        who, detail = trouble
        raise refuse(f"{what} {path} can be changed by {who} ({detail}): {install}")
    note = f"otpatch runs as root, and root can edit {what} {path}" if runs_as_root() else ""
    mode = stat.S_IMODE(st.st_mode)
    return f"owned by root, mode {mode:04o}, every folder above it root's", note


def changeable(real: Path, st: os.stat_result) -> tuple[str, str] | None:
    """(who, why) for the first thing that lets someone other than root change the file:
    its owner or mode, or a folder above it (each can replace it). A pinned folder is
    checked as a file: sticky or not, if others may write it they may add to it."""
    if st.st_uid != 0:
        return f"uid {st.st_uid}", f"owner uid {st.st_uid}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return writers(st), f"mode {stat.S_IMODE(st.st_mode):04o}"
    for folder in real.parents:
        try:
            fst = os.stat(folder)
        except OSError as e:
            return "unknown users", f"folder {folder} cannot be checked: {e.strerror or e}"
        if fst.st_uid != 0:
            return f"uid {fst.st_uid}", f"folder {folder} owned by uid {fst.st_uid}"
        sticky = fst.st_mode & stat.S_ISVTX  # others may add files, never replace root's
        if fst.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky:
            by = "others" if fst.st_mode & stat.S_IWOTH else "its group"
            return writers(fst), f"folder {folder} writable by {by}"
    return None


def writers(st: os.stat_result) -> str:
    """Who besides the owner may write what `st` describes, in words."""
    return "anyone" if st.st_mode & stat.S_IWOTH else f"group gid {st.st_gid}"
