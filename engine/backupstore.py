"""The backup store: configuration backups (mGuard profiles, M580 application archives) kept
by content under $OTPATCH_HOME/backups/sha256/<first 2 hex>/<64 hex>.

Content-addressed, so the name is the proof: an object whose bytes no longer hash to its
name is damaged, and the same backup taken twice is one object. Objects are written once,
atomically (a private temporary file in the same folder, synced, then linked to its name,
which fails rather than replaces), readable by their owner only (a profile can hold VPN
keys), in folders only the owner may enter. What each object is (host, artifact, when,
where it came from) is not kept here but in the site record (engine/siterecord.py,
BackupStored entries), hash-chained and signed; engine/backup_index.py reads it back."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.errors import InputError, clip
from otpatch.modules.contract.files import read_regular
from otpatch.modules.contract.platform import create_private, fsync_directory, on_windows

FOLDER = Path("backups") / "sha256"
MAX_BYTES = 512 * 1024 * 1024  # as modules/m580/application.py ARCHIVE_LIMIT: an archive
FOLDER_MODE = 0o700
SHORTEST_PREFIX = 8  # hex digits a command line may abbreviate a backup's SHA-256 to
_HEX = re.compile(r"[0-9a-f]{8,64}")


@dataclass(frozen=True)
class Rehash:
    """One stored object hashed again: ok | missing | differs | unreadable."""

    sha256: str
    status: str
    detail: str
    actual: str = ""  # the SHA-256 of the bytes found, when they were read

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def root(home: Path) -> Path:
    return home / FOLDER


def object_path(home: Path, sha256: str) -> Path:
    """Where the object of this SHA-256 (64 lower-case hex digits) lives."""
    return root(home) / sha256[:2] / sha256


def plain(text: str, *, prefix_ok: bool = False) -> str:
    """A SHA-256 as the store names it, from `sha256:<hex>` or `<hex>` (any case); with
    prefix_ok also an abbreviation of at least SHORTEST_PREFIX digits. InputError else."""
    hexits = str(text).strip().lower().removeprefix("sha256:")
    if _HEX.fullmatch(hexits) and (len(hexits) == 64 or prefix_ok):
        return hexits
    shortest = f"at least {SHORTEST_PREFIX} and " if prefix_ok else ""
    raise InputError(f"backup {clip(repr(text))}: expected a SHA-256 ({shortest}up to 64 hex "
                     "digits, as `otpatch backup list` shows it)")


def put(home: Path, data: bytes) -> tuple[str, bool]:
    """Keep `data`; (its SHA-256, whether an object was written: False when the store already
    held it intact). A damaged object of that name is replaced by these bytes, which are
    what the name says it holds (the damage was found and named by `backup verify`)."""
    sha = sha256_hex(data)
    path = object_path(home, sha)
    if rehash(home, sha).ok:
        return sha, False
    _private_folders(home, path.parent)
    tmp = path.parent / f".{sha}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = create_private(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # never over another file: FileExistsError instead
        except FileExistsError:  # damaged (a racing writer's intact copy re-hashes ok)
            if not rehash(home, sha).ok:
                os.replace(tmp, path)
        fsync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return sha, True


def get(home: Path, sha256: str) -> bytes:
    """The object's bytes, hashed again first; InputError when it is missing or differs."""
    path = object_path(home, sha256)
    data = _read(path)
    if isinstance(data, str):
        raise InputError(f"backup {sha256[:12]}: {data}")
    actual = sha256_hex(data)
    if actual != sha256:
        raise InputError(f"backup {sha256[:12]}: the stored object {path} differs from its "
                         f"SHA-256 (its bytes hash to {actual}): damaged, not used")
    return data


def rehash(home: Path, sha256: str) -> Rehash:
    """Hash the stored object again against the SHA-256 it is stored under."""
    path = object_path(home, sha256)
    data = _read(path)
    if data is None:
        return Rehash(sha256, "missing", f"no stored object at {path}")
    if isinstance(data, str):
        return Rehash(sha256, "unreadable", data)
    actual = sha256_hex(data)
    if actual != sha256:
        return Rehash(sha256, "differs", f"the stored object {path} hashes to {actual}",
                      actual)
    return Rehash(sha256, "ok", f"{len(data)} bytes, SHA-256 as recorded", actual)


def stored(home: Path) -> list[str]:
    """The SHA-256 of every object in the store (by name; rehash checks the bytes)."""
    if not root(home).is_dir():
        return []
    return sorted(p.name for p in root(home).glob("[0-9a-f][0-9a-f]/*")
                  if p.parent.name == p.name[:2] and _HEX.fullmatch(p.name)
                  and len(p.name) == 64)


def _read(path: Path) -> bytes | str | None:
    """The bytes, None when there is no file, or why it cannot be read."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return read_regular(path, MAX_BYTES, "stored backup")
    except InputError as e:
        return str(e)


def _private_folders(home: Path, folder: Path) -> None:
    """The store's folders, created owner-only (0700) whatever the umask."""
    for part in (home / "backups", root(home), folder):
        part.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        if not on_windows():
            os.chmod(part, FOLDER_MODE)
