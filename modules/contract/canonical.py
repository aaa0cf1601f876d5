"""Canonical JSON and SHA-256: the one place otpatch turns values into hashes."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace, UTF-8 text kept as is; NaN and Infinity refused.

    Raises TypeError or ValueError for a value JSON cannot represent.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_hex(data: str | bytes) -> str:
    """SHA-256 of bytes, or of text encoded as UTF-8, as 64 lowercase hex digits."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def canonical_hash(value: Any) -> str:
    """SHA-256 hex of the canonical JSON of a value."""
    return sha256_hex(canonical_json(value))
