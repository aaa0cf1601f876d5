"""Hashing firmware files: the one place files are hashed (streamed; regular, <= 2 GiB)."""
from __future__ import annotations

import errno
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.files import format_size, open_regular

ALGORITHMS = ("sha256", "md5")
_CHUNK = 1024 * 1024


MAX_IMAGE_BYTES = 2 * 1024 ** 3  # 2 GiB: far above any PLC or firewall image


def file_digests(path: str | Path, algorithms: tuple[str, ...] = ("sha256",)) -> dict[str, str]:
    """Hex digests of a file for each algorithm, reading it once. Only a regular file of at
    most MAX_IMAGE_BYTES is hashed (`/dev/zero` would never end): OSError otherwise."""
    digests, _ = _digests_and_size(path, algorithms)
    return digests


def _digests_and_size(path: str | Path, algorithms: tuple[str, ...]
                      ) -> tuple[dict[str, str], int]:
    hashers = {name: hashlib.new(name) for name in algorithms}
    size = 0
    with open_regular(path) as f:
        if os.fstat(f.fileno()).st_size > MAX_IMAGE_BYTES:
            raise _too_large(path)
        while chunk := f.read(_CHUNK):
            size += len(chunk)
            if size > MAX_IMAGE_BYTES:  # it grew while being read
                raise _too_large(path)
            for h in hashers.values():
                h.update(chunk)
    return {name: h.hexdigest() for name, h in hashers.items()}, size


def _too_large(path: str | Path) -> OSError:
    return OSError(errno.EFBIG, f"larger than {format_size(MAX_IMAGE_BYTES)}, the bound for a "
                                "firmware image: refused", str(path))


@dataclass(frozen=True)
class Verification:
    """A file checked against its vendor's published hash; SHA-256 always recorded."""

    path: str
    algorithm: str
    published: str
    actual: str
    sha256: str
    size: int

    @property
    def ok(self) -> bool:
        return hmac.compare_digest(self.actual.lower(), self.published.lower())

    def fact(self) -> dict[str, Any]:
        """What the run records; `hash_verified` compares `algorithm` and `hash`."""
        return {"path": self.path, "algorithm": self.algorithm, "hash": self.published.lower(),
                "sha256": self.sha256, "size": self.size}


def verify_file(path: str | Path, algorithm: str, published: str) -> Verification:
    """Hash the file with the published algorithm (and SHA-256) and compare."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported hash algorithm {algorithm!r}; use one of {ALGORITHMS}")
    digests, size = _digests_and_size(path, tuple(dict.fromkeys((algorithm, "sha256"))))
    return Verification(str(path), algorithm, published, digests[algorithm], digests["sha256"],
                        size)


def image_path(image: Mapping[str, Any], base: Path | None) -> Path:
    """The firmware file of a firmware param value; relative paths are relative to `base`
    (the playbook's folder)."""
    path = Path(str(image["path"])).expanduser()
    return path if path.is_absolute() or base is None else base / path


def recheck_before_transfer(image: Mapping[str, Any], ctx: Any) -> str | None:
    """Hash the image again right before it goes to a device: a file swapped or corrupted
    after `firmware.verify` is caught here. Returns the problem, or None when it is intact."""
    path = image_path(image, getattr(ctx, "playbook_dir", None))
    try:
        check = verify_file(path, str(image["algorithm"]), str(image["hash"]))
    except OSError as e:
        return f"cannot read firmware image {path}: {e.strerror or e}"
    if not check.ok:
        return (f"firmware image {path} changed since it was verified: {check.algorithm} is "
                f"{check.actual}, published {check.published}")
    verified = [v for v in (ctx.facts.get("verified") or {}).values()
                if isinstance(v, Mapping) and v.get("path") == str(path)]
    if any(v.get("sha256") != check.sha256 for v in verified):
        return (f"firmware image {path} changed since it was verified: SHA-256 now "
                f"{check.sha256}")
    return None
