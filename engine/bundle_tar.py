"""An evidence bundle as a tar.gz: written deterministically (the same files give the
same bytes) and atomically; read back in memory, never extracted, a member that is a
link, a device, outside the bundle's one top folder, too large, or one too many refused
before it is read."""
from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from typing import TYPE_CHECKING

from otpatch.engine import evidence_store as store
from otpatch.modules.contract.errors import InputError, clip

if TYPE_CHECKING:
    from otpatch.engine.bundle import Bundle

MAX_BUNDLE_BYTES = 512 * 1024 * 1024  # the .tar.gz as read
MAX_MEMBER_BYTES = store.MAX_EXPORT_BYTES  # a journal slice is the largest member
MAX_TOTAL_BYTES = 1024 * 1024 * 1024  # everything unpacked (a gzip bomb stops here)
MAX_MEMBERS = 10_000


# -- writing ---------------------------------------------------------------------------------

def tar_bytes(bundle: Bundle) -> bytes:
    """The bundle as a gzipped tar: names sorted under its top folder, regular files
    only, mode 0644, owner 0:0, mtime the run's end, gzip mtime 0: the same files give
    the same bytes."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(bundle.files):
            data = bundle.files[name]
            info = tarfile.TarInfo(f"{bundle.top}/{name}")
            info.size, info.mtime, info.mode = len(data), bundle.mtime, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def write(bundle: Bundle, output: str) -> int:
    """Write the bundle to `output` atomically (all of it, or nothing); its size."""
    from otpatch.modules.contract.files import write_atomic

    data = tar_bytes(bundle)
    write_atomic(output, data, "export -o")
    return len(data)


# -- reading the tar --------------------------------------------------------------------------

def read_bundle(path: str) -> dict[str, bytes]:
    """The bundle's files (path under its top folder -> bytes); InputError (exit 2) for a
    file that is not a gzipped tar, or holds a member a bundle never does."""
    from otpatch.modules.contract.files import read_regular

    doing = f"verify-bundle {clip(path)}"
    raw = read_regular(path, MAX_BUNDLE_BYTES, "verify-bundle")
    if raw[:2] != b"\x1f\x8b":
        raise InputError(f"{doing}: not a gzip file: not an otpatch bundle (.tar.gz)")
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            return _members(tar, doing)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise InputError(f"{doing}: not a readable tar.gz ({clip(str(e) or type(e).__name__)})"
                         ": truncated or damaged, or not an otpatch bundle") from None


def _members(tar: tarfile.TarFile, doing: str) -> dict[str, bytes]:
    files, top, total, count = {}, None, 0, 0
    while (member := tar.next()) is not None:
        count += 1
        if count > MAX_MEMBERS:
            raise InputError(f"{doing}: more than {MAX_MEMBERS} members: refused")
        head, rel = _safe_name(member.name, doing)
        top = top or head
        if head != top:
            raise InputError(f"{doing}: member {clip(member.name)} is outside the bundle's "
                             f"folder {top}/: refused")
        if member.isdir():
            continue
        if not rel:
            raise InputError(f"{doing}: member {clip(member.name)} is a file outside any "
                             "folder: not an otpatch bundle")
        if not member.isreg() or member.issparse():
            raise InputError(f"{doing}: member {clip(member.name)} is not a regular file "
                             "(a link, a device or a FIFO): refused")
        total += member.size
        if member.size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES:
            raise InputError(f"{doing}: member {clip(member.name)} makes the bundle larger "
                             f"than a bundle may be: refused")
        if rel in files:
            raise InputError(f"{doing}: member {clip(member.name)} appears twice: refused")
        files[rel] = tar.extractfile(member).read()
    if top is None or not top.startswith("otpatch-bundle-"):
        raise InputError(f"{doing}: no otpatch-bundle-RUN_ID/ folder: not an otpatch bundle")
    return files


def _safe_name(name: str, doing: str) -> tuple[str, str]:
    """(top folder, path under it) of a member name that stays inside the bundle."""
    parts = name.split("/")
    if (name.startswith("/") or "\\" in name or "\x00" in name
            or any(p in ("..", ".") for p in parts) or (len(parts) > 1 and "" in parts[1:-1])):
        raise InputError(f"{doing}: member {clip(repr(name))} is an absolute path or leaves "
                         "the bundle's folder: refused")
    return parts[0], "/".join(p for p in parts[1:] if p)
