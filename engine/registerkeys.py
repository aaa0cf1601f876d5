"""The keys that may sign a site register, pinned at install in a file the site's
administrator owns: the operator who edits the inventory must not be able to name a new
signer (a register signed only by people it lists itself would prove nothing).

Where it is: $OTPATCH_REGISTER_KEYS, else /etc/otpatch/register-keys.yml on POSIX and
%PROGRAMDATA%\\otpatch\\register-keys.yml on Windows (`pinned_keys_path`, the one place that
reads the environment; everything else takes the path). Because a variable can point it
anywhere, its protection is checked, not assumed: on POSIX the file and every folder above
it must be owned by root and not writable by group or others, a sticky folder such as /tmp
excepted (the checks of OpenSSH's StrictModes and of sudo on sudoers). On Windows the ACL is
not read (as engine/keys.py does for private keys): that is noted, not refused. Running as
root is noted too: root can edit the file whatever its mode. The check is
modules/contract/pinned.py's, shared with the pinned advisory keys."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from otpatch.modules.contract import pinned
from otpatch.modules.contract.errors import InputError, PlaybookError
from otpatch.modules.contract.platform import on_windows

KEYS_ENV = "OTPATCH_REGISTER_KEYS"
POSIX_PATH = Path("/etc/otpatch/register-keys.yml")
WINDOWS_FILE = ("otpatch", "register-keys.yml")  # under %PROGRAMDATA%
MAX_BYTES = 256 * 1024
UNSIGNED = "site register not signed: "
INSTALL = "install them owned by root, mode 0644"


class RegisterUnsigned(InputError):
    """The site register cannot be trusted: unsigned, altered after signing, signed by keys
    not pinned, or its pinned keys missing or changeable by others. An InputError (exit 2):
    the site's own files are what fail, and the run is refused before anything is journaled,
    so there is no waiting run for `resume` to continue (what a refused gate means, exit 3).
    The message is one line, starting "site register not signed: "."""

    def __init__(self, why: str):
        super().__init__(why if why.startswith(UNSIGNED) else UNSIGNED + why)


@dataclass(frozen=True)
class PinnedSigner:
    """A person the site's administrator trusts to sign the register, in these roles."""

    name: str
    roles: tuple[str, ...]
    public_key: str  # base64 of the raw Ed25519 key, as `otpatch keygen --name` prints


@dataclass(frozen=True)
class PinnedKeys:
    """The pinned signers, where they were read from, and how the file is protected."""

    path: str
    signers: tuple[PinnedSigner, ...]
    protection: str  # in words, for `register verify`
    note: str = ""  # what was not checked, or who can edit it anyway

    def by_key(self, public_key: str) -> PinnedSigner | None:
        return next((s for s in self.signers if s.public_key == public_key), None)


def pinned_keys_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where this host pins the register keys: $OTPATCH_REGISTER_KEYS, else the platform's
    default. The one place that reads the environment for it; the engine takes the path."""
    env = os.environ if environ is None else environ
    if env.get(KEYS_ENV):
        return Path(env[KEYS_ENV])
    if on_windows():
        return Path(env.get("PROGRAMDATA") or r"C:\ProgramData").joinpath(*WINDOWS_FILE)
    return POSIX_PATH


def load_pinned(path: Path | None) -> PinnedKeys:
    """The pinned signers at `path`; RegisterUnsigned saying why they cannot be trusted."""
    if path is None:
        raise RegisterUnsigned(f"no pinned register keys were given (the CLI reads "
                               f"${KEYS_ENV}, else {POSIX_PATH})")
    raw, protection, note = pinned.read_pinned(path, MAX_BYTES, "the pinned register keys",
                                               INSTALL, RegisterUnsigned)
    return PinnedKeys(str(path), _signers(raw, str(path)), protection, note)


def _signers(raw: bytes, file: str) -> tuple[PinnedSigner, ...]:
    """The signers of a validated file; RegisterUnsigned with the first located problem."""
    from otpatch.modules.contract.schemas import schema_problems
    from otpatch.modules.contract.yamlsrc import parse_yaml

    try:
        source = parse_yaml(raw, file)
    except PlaybookError as e:
        raise RegisterUnsigned(_first(e.problems)) from None
    problems = schema_problems(source, "register-keys")
    if problems:
        raise RegisterUnsigned(_first(problems))
    signers = tuple(PinnedSigner(s["name"], tuple(s["roles"]), s["public_key"])
                    for s in source.data["signers"])
    for i, signer in enumerate(signers):
        for other in signers[:i]:
            same = ("name" if other.name == signer.name else
                    "public key" if other.public_key == signer.public_key else None)
            if same:
                where = source.problem(("signers", i), "schema", "")
                raise RegisterUnsigned(f"{file}:{where.line}:{where.col}: signer "
                                       f"{signer.name}: the same {same} as {other.name}")
    return signers


def _first(problems: list) -> str:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"
