"""Ed25519 keys: made and written 0600, loaded, signing and checking (host and people alike).

On POSIX a private key must be its owner's alone (mode 0600): one readable by group or others
is refused. On Windows file modes say nothing (the ACL does), so there a key is created with
its folder's ACL and loaded without that check: keep it in a folder only its user can read."""
from __future__ import annotations

import base64
import binascii
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otpatch.modules.contract.errors import InputError
from otpatch.modules.contract.files import open_regular
from otpatch.modules.contract.platform import create_private, is_private

HOST_KEY_ENV = "OTPATCH_HOST_KEY"  # path of the otpatch host's private key (PEM, 0600 on POSIX)
HOST_KEY_FILE = "host.key"  # else $OTPATCH_HOME/host.key, if it is there


def public_text(raw: bytes) -> str:
    """A public key as the inventory writes it: base64 of its 32 raw bytes."""
    return base64.b64encode(raw).decode("ascii")


def short(public_key: str) -> str:
    """A public key shortened for a message: `ed25519 zO2A4snlufbi…`."""
    return f"ed25519 {public_key[:12]}…"


def decode_public(text: str) -> bytes | None:
    """The 32 raw bytes of a base64 Ed25519 public key, or None if it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        return None
    return raw if len(raw) == 32 else None


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key loaded from its PEM file; signs bytes."""

    path: Path
    public_key: str  # base64, as the inventory names it
    _key: Any

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode("ascii")


def signature_valid(public_key: str, signature: str, message: bytes) -> bool:
    """Whether `signature` (base64) is public_key's Ed25519 signature over message."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    raw = decode_public(public_key) if isinstance(public_key, str) else None
    try:
        sig = base64.b64decode(signature, validate=True)
    except (binascii.Error, TypeError, ValueError):
        return False
    if raw is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(sig, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def generate(path: Path) -> str:
    """Write a new Ed25519 private key to path (PEM, PKCS#8, mode 0600 on POSIX; on Windows
    the folder's ACL applies); refuse an existing file. Returns the public key (base64)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = create_private(path)  # 0600 whatever the umask
    except FileExistsError:
        raise InputError(f"{path}: already exists; not overwritten (a key in use would be "
                         "lost): choose another file") from None
    except OSError as e:
        raise InputError(f"{path}: cannot write the key: {e.strerror or e}") from e
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
        out.flush()
        os.fsync(out.fileno())
    return public_text(_raw_public(key))


def load(path: Path, what: str) -> SigningKey:
    """The private key at path; InputError if missing, readable by others, or not Ed25519.
    "Readable by others" is its POSIX mode; on Windows that is not checked (see the module)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        st = path.stat()
        with open_regular(path) as f:  # no FIFO or device: a key file is small
            data = f.read(64 * 1024)
    except OSError as e:
        raise InputError(f"{what} {path}: cannot read it: {e.strerror or e}") from e
    if is_private(st) is False:  # None: not to be told from a mode here (Windows)
        mode = stat.S_IMODE(st.st_mode)
        raise InputError(f"{what} {path}: readable by others (mode {mode:04o}): "
                         f"chmod 600 {path}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise InputError(f"{what} {path}: not an unencrypted PEM private key ({e})") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{what} {path}: not an Ed25519 key")
    return SigningKey(path, public_text(_raw_public(key)), key)


def host_key_path(home: Path) -> Path | None:
    """Where the CLI finds the otpatch host's key: the file $OTPATCH_HOST_KEY names (which
    must exist), else <home>/host.key if there is one, else None (unanchored). The one
    place that reads $OTPATCH_HOST_KEY; the engine and the API take the path."""
    named = os.environ.get(HOST_KEY_ENV)
    if named:
        return Path(named)
    default = home / HOST_KEY_FILE
    return default if default.exists() else None


def load_host(path: Path | None) -> SigningKey | None:
    """The host's signing key from `path` (InputError if it cannot be used); None for None."""
    return load(Path(path), "host key") if path is not None else None


def host_key(home: Path) -> SigningKey | None:
    """The key at host_key_path(home), loaded; None if there is none."""
    return load_host(host_key_path(home))


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
