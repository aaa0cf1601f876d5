"""OpenPGP signatures of CSAF advisories (the .asc beside each) checked against pinned keys."""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from otpatch.modules.contract import pinned
from otpatch.modules.contract.errors import InputError
from otpatch.modules.contract.files import read_regular
from otpatch.modules.contract.platform import on_windows

KEYS_ENV = "OTPATCH_ADVISORY_KEYS"
POSIX_PATH = Path("/etc/otpatch/advisory-keys")
WINDOWS_FOLDER = ("otpatch", "advisory-keys")  # under %PROGRAMDATA%
KEY_SUFFIX = ".asc"
MAX_KEY_BYTES = 512 * 1024  # a provider's armored key with its certifications: a few KiB
MAX_SIGNATURE_BYTES = 64 * 1024  # an armored detached signature: under 1 KiB
MAX_ADVISORY_BYTES = 64 << 20  # the largest CSAF files (vendors' product trees): ~20 MiB
GPG_TIMEOUT = 20.0  # seconds for one gpg call
GPG_OPTIONS = ("--no-autostart", "--no-auto-key-retrieve")  # no agent, no network to wait on
NO_GPG = "gpg not installed: install Debian's gnupg"
WHAT = "the pinned advisory keys"
ONE = "the pinned advisory key"
INSTALL = "install them owned by root, mode 0644, in a folder owned by root, mode 0755"


class SignatureStatus(str, Enum):
    """What the .asc beside an advisory says about it."""

    VALID = "valid"  # a good signature by a key the site pins
    BAD = "bad"  # does not verify: altered, for another file, or by a revoked/expired key
    UNKNOWN_KEY = "unknown_key"  # good OpenPGP data, signed by a key the site does not pin
    UNSIGNED = "unsigned"  # no .asc beside the file
    NO_PINNED_KEYS = "no_pinned_keys"  # the site pins no key: nothing was checked
    ERROR = "error"  # not checked: gpg missing or failed, the .asc unreadable or no signature


_LABELS = {"valid": "signature valid", "bad": "signature BAD", "unsigned": "not signed",
           "unknown_key": "signed by a key the site does not pin"}  # else: not checked


@dataclass(frozen=True)
class SignatureCheck:
    """The signature of one advisory file: its status, why in words, and for a signature
    gpg could read, who made it (fingerprints in upper-case hex, as gpg prints them)."""

    file: str
    status: SignatureStatus
    why: str
    fingerprint: str = ""  # the signer's primary key (valid; unknown_key when gpg names it)
    signing_fingerprint: str = ""  # the key that made it: the primary key or a subkey
    key_id: str = ""  # the 16-hex-digit id the signature names
    user_id: str = ""
    key_file: str = ""  # the pinned file the key came from (valid)

    @property
    def valid(self) -> bool:
        return self.status is SignatureStatus.VALID

    def line(self) -> str:
        """One line for the report: `icsa-25-035-04.json: signature valid: by ...`."""
        label = _LABELS.get(self.status.value, "signature not checked")
        return f"{self.file}: {label}: {self.why}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


@dataclass(frozen=True)
class PinnedKey:
    """One OpenPGP public key the site pins, and the file it came from."""

    fingerprint: str  # the primary key
    subkeys: tuple[str, ...]  # the subkeys' fingerprints: a provider may sign with one
    user_ids: tuple[str, ...]
    file: str

    def has(self, fingerprint: str) -> bool:
        """Whether `fingerprint` is this key's primary key or one of its subkeys."""
        return fingerprint.upper() in (self.fingerprint, *self.subkeys)


@dataclass(frozen=True)
class AdvisoryKeys:
    """The advisory signing keys the site pins: where, the keys, their armored text (what
    each check imports), how the folder is protected, and why none can be used (gpg)."""

    path: str  # the folder; "" when the site pins none
    keys: tuple[PinnedKey, ...] = ()
    armored: tuple[bytes, ...] = ()
    protection: str = ""
    note: str = ""  # what was not checked, or who can edit them anyway
    gpg: str = ""  # the gpg binary found at load
    unusable: str = ""  # why no signature can be checked with them (gpg missing or failing)


NO_KEYS = AdvisoryKeys("")


def advisory_keys_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where this host pins the advisory keys: $OTPATCH_ADVISORY_KEYS, else the platform's
    folder (/etc/otpatch/advisory-keys, %PROGRAMDATA%\\otpatch\\advisory-keys) if it exists;
    None: the site pins none. The one place that reads the environment for them."""
    env = os.environ if environ is None else environ
    if env.get(KEYS_ENV):
        return Path(env[KEYS_ENV])
    folder = (Path(env.get("PROGRAMDATA") or r"C:\ProgramData").joinpath(*WINDOWS_FOLDER)
              if on_windows() else POSIX_PATH)
    return folder if os.path.lexists(folder) else None


def load_advisory_keys(path: Path | None) -> AdvisoryKeys:
    """The keys pinned in the folder `path`: every *.asc in it, one ASCII-armored OpenPGP
    public key file per provider (schneider-electric.asc). A folder, not one file: each
    provider's key is added, rotated or removed as its own file, and a problem names the
    provider's file (as apt's trusted.gpg.d). None: the site pins none (NO_KEYS).

    InputError, one line naming the file, for a folder or key file that someone but root can
    change (modules/contract/pinned.py), a file that is not an armored public key, a secret
    key, or an expired, revoked or signing-incapable key. Without gpg the keys load
    `unusable` ("gpg not installed"): each check then says so and the run goes on."""
    if path is None:
        return NO_KEYS
    real, protection, note = _pinned_folder(path)
    files = _key_files(path, real)
    armored = tuple(_read_key(file) for file in files)
    found = AdvisoryKeys(str(path), (), armored, protection, note)
    if not armored:
        return found
    binary = shutil.which("gpg")
    if binary is None:
        return replace(found, unusable=NO_GPG)
    try:
        keys = _inspect(binary, files, armored)
    except _GpgTrouble as e:
        return replace(found, gpg=binary, unusable=str(e))
    return replace(found, keys=keys, gpg=binary)


def verify(json_path: str | os.PathLike, keys: AdvisoryKeys) -> SignatureCheck:
    """The signature of one advisory: `json_path` + ".asc", a detached signature (CSAF 2.0
    section 7.1.19, requirement 19). See check_all."""
    return check_all([json_path], keys)[os.fspath(json_path)]


def check_all(files: Iterable[str | os.PathLike], keys: AdvisoryKeys
              ) -> dict[str, SignatureCheck]:
    """The signature of each advisory file, keyed by the path as given (str), in order.

    Call it once per load: the pinned keys are imported once, into a private temporary
    GNUPGHOME (never the user's ~/.gnupg), for all the files. With no key pinned it reads
    nothing and runs no gpg. Valid means: gpg found a good signature over exactly the bytes
    of the file, made by a key (primary or subkey) whose fingerprint is pinned. gpg's own
    trust (trust_level: a freshly imported key is TRUST_UNDEFINED in its web of trust) is
    not consulted: the site pins keys explicitly, and pinning is the trust. A .asc holding
    several signatures is valid only if gpg reports no problem with any of them."""
    names = [os.fspath(f) for f in files]
    if not keys.armored:
        return {name: _no_keys(name, keys) for name in names}
    checks = {name: SignatureCheck(name, SignatureStatus.UNSIGNED,
                                   f"no {Path(name).name}{KEY_SUFFIX} beside it")
              for name in names if not os.path.lexists(name + KEY_SUFFIX)}
    signed = [name for name in names if name not in checks]
    if signed:
        checks.update(_check_signed(signed, keys))
    return {name: checks[name] for name in names}


# -- the pinned keys -------------------------------------------------------------------------

def _pinned_folder(path: Path) -> tuple[Path, str, str]:
    """(real path, protection, note) of the keys folder; InputError if it cannot be used."""
    real = Path(os.path.realpath(path))
    try:
        st = os.stat(real)
    except OSError as e:
        raise InputError(f"{WHAT} {path} cannot be read: {e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(f"{WHAT} {path}: not a folder: pin one ASCII-armored public key "
                         f"file per provider in a folder, e.g. {POSIX_PATH}/vendor.asc")
    protection, note = pinned.protection(path, real, st, WHAT, INSTALL)
    return real, protection, note


def _key_files(path: Path, real: Path) -> list[Path]:
    """The *.asc files of the folder, sorted (other files are not keys: README, .dpkg-old)."""
    try:
        names = sorted(e.name for e in os.scandir(real) if e.name.endswith(KEY_SUFFIX))
    except OSError as e:
        raise InputError(f"{WHAT} {path} cannot be listed: {e.strerror or e}") from None
    return [Path(path) / name for name in names]


def _read_key(file: Path) -> bytes:
    """The armored text of one pinned key file, its protection checked like the folder's."""
    raw, _, _ = pinned.read_pinned(file, MAX_KEY_BYTES, ONE, INSTALL)
    if b"-----BEGIN PGP PRIVATE KEY BLOCK-----" in raw:
        raise InputError(f"{ONE} {file}: a secret key: pin only the provider's public key "
                         "(gpg --armor --export), and remove this copy of a secret key")
    if b"-----BEGIN PGP PUBLIC KEY BLOCK-----" not in raw:
        raise InputError(f"{ONE} {file}: not an ASCII-armored OpenPGP public key (no "
                         "-----BEGIN PGP PUBLIC KEY BLOCK----- line)")
    return raw


def _inspect(binary: str, files: list[Path], armored: tuple[bytes, ...]
             ) -> tuple[PinnedKey, ...]:
    """Each file's keys as gpg reads them, each key once (the first file naming it)."""
    found: dict[str, PinnedKey] = {}
    with _keyring(binary) as gpg:
        for file, raw in zip(files, armored):
            for key in _imported(gpg, file, raw):
                found.setdefault(key.fingerprint, key)
    return tuple(found.values())


def _imported(gpg: Any, file: Path, raw: bytes) -> list[PinnedKey]:
    """The keys of one file imported into the private keyring; InputError for a file gpg
    finds no usable public key in."""
    result = _import(gpg, raw)
    if result.sec_read:
        raise InputError(f"{ONE} {file}: holds a secret key: pin only the public key")
    if not result.fingerprints:
        raise InputError(f"{ONE} {file}: gpg finds no OpenPGP public key in it")
    listed = _bounded(gpg.list_keys, False, sorted(set(result.fingerprints)))
    return [_usable(file, listing) for listing in listed]


def _usable(file: Path, listing: Mapping[str, Any]) -> PinnedKey:
    """A listed key as pinned, if it can still sign. gpg's validity field: r revoked,
    e expired; the upper-case S of the capabilities: the key as a whole can sign."""
    fpr = listing["fingerprint"]
    if listing.get("trust") == "r":
        raise InputError(f"{ONE} {file}: key {fpr} is revoked: pin the provider's current key")
    if listing.get("trust") == "e":
        day = time.strftime("%Y-%m-%d", time.gmtime(int(listing.get("expires") or 0)))
        raise InputError(f"{ONE} {file}: key {fpr} expired on {day}: pin the provider's "
                         "current key")
    if "S" not in listing.get("cap", ""):
        raise InputError(f"{ONE} {file}: key {fpr} has no key or subkey that can sign")
    subkeys = tuple(sub[2] for sub in listing.get("subkeys", ()) if len(sub) > 2 and sub[2])
    return PinnedKey(fpr, subkeys, tuple(listing.get("uids", ())), str(file))


# -- gpg, bounded ----------------------------------------------------------------------------

class _GpgTrouble(Exception):
    """gpg could not be run, failed, or did not answer in time: one line why."""


class _GpgTimeout(_GpgTrouble):
    """gpg did not answer in time: the next call would wait as long."""


@contextmanager
def _keyring(binary: str) -> Iterator[Any]:
    """A python-gnupg GPG on a private, temporary GNUPGHOME, removed afterwards."""
    import gnupg

    with tempfile.TemporaryDirectory(prefix="otpatch-gpg-",
                                     ignore_cleanup_errors=True) as home:
        yield _bounded(lambda: gnupg.GPG(gpgbinary=binary, gnupghome=home,
                                         options=list(GPG_OPTIONS)))


def _import(gpg: Any, raw: bytes) -> Any:
    """gpg --import of `raw` from a file in the private home: gpg reads it itself. Piped, as
    python-gnupg's import_keys does, a gpg that stops early breaks the pipe (EPIPE)."""
    copy = Path(gpg.gnupghome) / "import.asc"
    copy.write_bytes(raw)
    return _bounded(gpg.import_keys, b"", [str(copy)])


def _bounded(call: Callable[..., Any], *args: Any) -> Any:
    """call(*args), waited for at most GPG_TIMEOUT seconds. python-gnupg 0.5.7 has no
    timeout and hands out no process to kill, so the call runs in a daemon thread: a gpg
    that hangs is abandoned, not waited for (with GPG_OPTIONS it has nothing to wait on)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call(*args)
        except Exception as e:  # python-gnupg: OSError/ValueError when gpg cannot run; any
            box["error"] = e  # other failure too is one line: the run goes on

    worker = threading.Thread(target=run, name="otpatch-gpg", daemon=True)
    worker.start()
    worker.join(GPG_TIMEOUT)
    if worker.is_alive():
        raise _GpgTimeout(f"gpg did not answer within {GPG_TIMEOUT:g} s")
    if "error" in box:
        raise _GpgTrouble(f"gpg failed: {str(box['error']).splitlines()[0]}")
    return box["value"]


# -- the checks ------------------------------------------------------------------------------

def _no_keys(name: str, keys: AdvisoryKeys) -> SignatureCheck:
    where = (f"no key file in {keys.path}" if keys.path else
             f"put each provider's public key in {POSIX_PATH}/ or set ${KEYS_ENV}")
    return SignatureCheck(name, SignatureStatus.NO_PINNED_KEYS,
                          f"the site pins no advisory keys ({where})")


def _error(name: str, why: str) -> SignatureCheck:
    return SignatureCheck(name, SignatureStatus.ERROR, why)


def _check_signed(names: list[str], keys: AdvisoryKeys) -> dict[str, SignatureCheck]:
    """The files that have a .asc, checked in one private keyring of the pinned keys. After
    a gpg that did not answer, the rest are not tried (each would wait as long)."""
    if keys.unusable:
        return {name: _error(name, keys.unusable) for name in names}
    checks: dict[str, SignatureCheck] = {}
    try:
        with _keyring(keys.gpg) as gpg:
            _import(gpg, b"\n".join(keys.armored))
            for name in names:
                checks[name] = _check_one(gpg, name, keys)
    except _GpgTrouble as e:
        checks.update({name: _error(name, str(e)) for name in names if name not in checks})
    return checks


def _check_one(gpg: Any, name: str, keys: AdvisoryKeys) -> SignatureCheck:
    """One file against its .asc: both read with a bound (regular files only) and copied
    into the private home, so gpg checks exactly the bytes read, from files nobody else
    can swap. (verify_data, which pipes the data, fails with EPIPE when gpg stops early.)"""
    try:
        signature = read_regular(name + KEY_SUFFIX, MAX_SIGNATURE_BYTES, "signature")
        data = read_regular(name, MAX_ADVISORY_BYTES, "advisory")
    except InputError as e:
        return _error(name, str(e))
    sig_file, data_file = Path(gpg.gnupghome) / "signature.asc", Path(gpg.gnupghome) / "data"
    sig_file.write_bytes(signature)
    data_file.write_bytes(data)
    try:
        result = _bounded(gpg.verify_file, str(sig_file), str(data_file))
    except _GpgTimeout:
        raise
    except _GpgTrouble as e:
        return _error(name, str(e))
    return _classify(name, result, keys)


_BAD = {"signature bad": "the file does not match {sig}: altered since it was signed, or "
                         "{sig} signs another file",
        "signature expired": "the signature in {sig} has expired",
        "signing key has expired": "{sig} was made by a key that has expired",
        "signing key was revoked": "{sig} was made by a key that was revoked"}
_NOT_A_SIGNATURE = ("signature expected but not found", "unexpected data")


def _classify(name: str, result: Any, keys: AdvisoryKeys) -> SignatureCheck:
    """The status of python-gnupg's Verify result. Every problem gpg reported counts:
    `valid` alone is the last signature's state."""
    problems = [p.get("status") for p in result.problems]
    sig = Path(name).name + KEY_SUFFIX
    if result.valid and not problems:
        return _valid_if_pinned(name, result, keys)
    if "no public key" in problems:
        return _unknown(name, result.fingerprint or "", result.key_id or "", keys)
    bad = next((p for p in problems if p in _BAD), None)
    if bad:
        return SignatureCheck(name, SignatureStatus.BAD, _BAD[bad].format(sig=sig),
                              key_id=result.key_id or "", user_id=result.username or "")
    why = result.status or f"exit code {result.returncode}"
    if why in _NOT_A_SIGNATURE:  # gpg's NODATA and UNEXPECTED
        return _error(name, f"{sig} is not an OpenPGP signature (gpg: {why})")
    return _error(name, f"gpg cannot check {sig}: {why}")


def _valid_if_pinned(name: str, result: Any, keys: AdvisoryKeys) -> SignatureCheck:
    """A good signature is valid only if its key's fingerprint is pinned: the primary
    (VALIDSIG's last field) and the key that signed, itself or one of its subkeys."""
    signer = (result.fingerprint or "").upper()
    primary = (result.pubkey_fingerprint or signer).upper()
    key = next((k for k in keys.keys if k.fingerprint == primary), None)
    if key is None or not key.has(signer):
        return _unknown(name, signer, result.key_id or "", keys)
    sub = f" (subkey {signer})" if signer != key.fingerprint else ""
    return SignatureCheck(
        name, SignatureStatus.VALID, f"by {result.username}, key {key.fingerprint}{sub}, "
        f"pinned in {key.file}", fingerprint=key.fingerprint, signing_fingerprint=signer,
        key_id=result.key_id or "", user_id=result.username or "", key_file=key.file)


def _unknown(name: str, fingerprint: str, key_id: str, keys: AdvisoryKeys) -> SignatureCheck:
    shown = f"{fingerprint} (key id {key_id})" if fingerprint else f"key id {key_id or '?'}"
    return SignatureCheck(name, SignatureStatus.UNKNOWN_KEY,
                          f"{shown} is not among the {len(keys.keys)} key(s) pinned in "
                          f"{keys.path}", fingerprint=fingerprint, key_id=key_id)
