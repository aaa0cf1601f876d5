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
root is noted too: root can edit the file whatever its mode."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from otpatch.modules.contract.errors import InputError, PlaybookError
from otpatch.modules.contract.platform import on_windows, runs_as_root

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
    from otpatch.modules.contract.files import open_regular

    if path is None:
        raise RegisterUnsigned(f"no pinned register keys were given (the CLI reads "
                               f"${KEYS_ENV}, else {POSIX_PATH})")
    shown = f"the pinned register keys {path}"
    try:
        real = Path(os.path.realpath(path))
        with open_regular(real) as f:
            st = os.fstat(f.fileno())
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise RegisterUnsigned(f"{shown} cannot be read: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise RegisterUnsigned(f"{shown}: larger than {MAX_BYTES // 1024} KiB: refused unread")
    protection, note = _protection(path, real, st)
    return PinnedKeys(str(path), _signers(raw, str(path)), protection, note)


def _protection(path: Path, real: Path, st: os.stat_result) -> tuple[str, str]:
    """(protection in words, note); RegisterUnsigned if someone but root can change it."""
    if on_windows():
        return ("not checked on Windows", f"on Windows the ACL of {path} is not checked: "
                "let only administrators write it")
    trouble = _changeable(real, st)
    if trouble:
        who, detail = trouble
        raise RegisterUnsigned(f"the pinned register keys {path} can be changed by {who} "
                               f"({detail}): {INSTALL}")
    note = (f"otpatch runs as root, and root can edit the pinned register keys {path}"
            if runs_as_root() else "")
    mode = stat.S_IMODE(st.st_mode)
    return f"owned by root, mode {mode:04o}, every folder above it root's", note


def _changeable(real: Path, st: os.stat_result) -> tuple[str, str] | None:
    """(who, why) for the first thing that lets someone other than root change the file:
    its owner or mode, or a folder above it (each can replace it)."""
    if st.st_uid != 0:
        return f"uid {st.st_uid}", f"owner uid {st.st_uid}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return _writers(st), f"mode {stat.S_IMODE(st.st_mode):04o}"
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
            return _writers(fst), f"folder {folder} writable by {by}"
    return None


def _writers(st: os.stat_result) -> str:
    return "anyone" if st.st_mode & stat.S_IWOTH else f"group gid {st.st_gid}"


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
