"""An mGuard's login from the inventory: the user name, and the password from an environment
variable or a file (never written in the inventory itself)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from otpatch.modules.contract.errors import InputError


class CredentialsMissing(InputError):
    """The inventory names no usable password for a host."""


def username_of(host: Any) -> str:
    user = (host.credentials or {}).get("username")
    if not user:
        raise CredentialsMissing(f"{host.name}: no credentials.username in the inventory")
    return str(user)


def password_of(host: Any) -> str:
    """The password, read where the inventory says it is; the message names the place,
    never the value."""
    creds = host.credentials or {}
    if creds.get("password_env"):
        var = str(creds["password_env"])
        value = os.environ.get(var)
        if not value:
            raise CredentialsMissing(f"{host.name}: environment variable {var} (its password) "
                                     "is not set")
        return value
    if creds.get("password_file"):
        path = Path(str(creds["password_file"])).expanduser()
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as e:
            raise CredentialsMissing(f"{host.name}: cannot read its password file {path}: "
                                     f"{e.strerror or e}") from e
        if not value:
            raise CredentialsMissing(f"{host.name}: its password file {path} is empty")
        return value
    raise CredentialsMissing(f"{host.name}: credentials name neither password_env nor "
                             "password_file")


def where_password(host: Any) -> str:
    """Where the password comes from, for messages ("env OTPATCH_..." or "file ...")."""
    creds = host.credentials or {}
    if creds.get("password_env"):
        return f"environment variable {creds['password_env']}"
    return f"file {creds.get('password_file')}"
