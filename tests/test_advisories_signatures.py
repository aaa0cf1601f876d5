"""OpenPGP signatures of CSAF advisories (issue 15, item 5): real keys made with Debian's gpg
in a temporary GNUPGHOME, a real advisory signed with `gpg --detach-sign --armor`, every status
the site's report can show, the pinned keys refused with one line when they cannot be
trusted, and gpg missing or hanging said so while the run goes on."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from otpatch.modules.advisories import signatures
from otpatch.modules.advisories.signatures import (NO_KEYS, POSIX_PATH, SignatureStatus,
                                                   advisory_keys_path, check_all,
                                                   load_advisory_keys, verify)
from otpatch.modules.contract.errors import InputError

from conftest import SHARED

ADVISORY = SHARED / "data" / "csaf" / "advisories" / "icsa-25-035-04.json"
INSTALL = "install them owned by root, mode 0644, in a folder owned by root, mode 0755"
GPG = shutil.which("gpg")
MISSING = "gpg not installed: make test installs Debian's gnupg"


@dataclass(frozen=True)
class Signers:
    """Keys made once for the module: the provider the site pins (a certify-only primary key
    and an ed25519 signing subkey, as PSIRTs publish them), a stranger the site does not pin,
    an expired key and the provider's key revoked, each exported armored to `folder`."""

    home: Path
    folder: Path
    provider: str  # primary fingerprint
    provider_subkey: str
    stranger: str

    def gpg(self, *args: str) -> str:
        done = subprocess.run([GPG, "--homedir", str(self.home), "--batch", "--yes",
                               "--passphrase", "", "--pinentry-mode", "loopback", *args],
                              capture_output=True, text=True, timeout=60, check=True)
        return done.stdout

    def sign(self, file: Path, key: str) -> Path:
        self.gpg("--local-user", key, "--armor", "--detach-sign", str(file))
        return Path(f"{file}.asc")


def _fingerprints(signers: Signers, key: str) -> list[str]:
    lines = signers.gpg("--with-colons", "--fingerprint", "--fingerprint", "--list-keys", key)
    return [line.split(":")[9] for line in lines.splitlines() if line.startswith("fpr:")]


def _make_key(signers: Signers, uid: str, expires: str = "never", *options: str) -> str:
    signers.gpg(*options, "--quick-gen-key", uid, "ed25519", "sign", expires)
    return _fingerprints(signers, uid)[0]


@pytest.fixture(scope="module")
def signers(tmp_path_factory) -> Signers:
    if GPG is None:  # as tests/test_report_chromium.py: a skip here, a failure in CI
        if os.environ.get("CI"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    folder = tmp_path_factory.mktemp("exported")
    made = Signers(home, folder, "", "", "")
    made.gpg("--quick-gen-key", "Example PSIRT <psirt@example.com>", "ed25519", "cert",
             "never")
    provider = _fingerprints(made, "psirt@example.com")[0]
    made.gpg("--quick-add-key", provider, "ed25519", "sign", "never")
    subkey = _fingerprints(made, provider)[1]
    stranger = _make_key(made, "Someone Else <else@example.org>")
    expired = _make_key(made, "Old Key <old@example.org>", "1d",  # made in 2020, for a day
                        "--faked-system-time", "20200101T000000")
    made = Signers(home, folder, provider, subkey, stranger)
    for name, key in (("provider", provider), ("stranger", stranger), ("expired", expired)):
        (folder / f"{name}.asc").write_text(made.gpg("--armor", "--export", key))
    (folder / "secret.asc").write_text(made.gpg("--armor", "--export-secret-keys", stranger))
    (folder / "revoked.asc").write_bytes(_revoked(made, provider, tmp_path_factory))
    yield made
    if shutil.which("gpgconf"):  # key generation started an agent in `home`: stop it
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False,
                       capture_output=True, timeout=30)


def _revoked(signers: Signers, key: str, factory) -> bytes:
    """The provider's public key with its revocation certificate (gpg made one at key
    generation, its armor line escaped with a leading colon) applied, in a second home."""
    cert = (signers.home / "openpgp-revocs.d" / f"{key}.rev").read_text()
    other = Signers(factory.mktemp("revoked-home"), signers.folder, "", "", "")
    other.home.chmod(0o700)
    public = signers.folder / "provider.asc"
    revocation = other.home / "revocation.asc"
    revocation.write_text(cert.replace(":-----BEGIN", "-----BEGIN"))
    other.gpg("--no-autostart", "--import", str(public), str(revocation))  # no agent left
    return other.gpg("--no-autostart", "--armor", "--export", key).encode()


def _root_only() -> None:
    if getattr(os, "geteuid", lambda: None)() != 0:  # POSIX root only (not Windows)
        pytest.skip("pinned advisory keys must be owned by root (uid 0): run the tests as "
                    "root")


def pin(folder: Path, signers: Signers, *names: str) -> Path:
    """A root-owned pinned-keys folder (0755) with the exported keys `names` (0644)."""
    _root_only()
    folder.mkdir()
    for name in names:
        shutil.copy(signers.folder / f"{name}.asc", folder / f"{name}.asc")
        (folder / f"{name}.asc").chmod(0o644)
    folder.chmod(0o755)
    return folder


@pytest.fixture
def keys(tmp_path, signers):
    return load_advisory_keys(pin(tmp_path / "advisory-keys", signers, "provider"))


@pytest.fixture
def advisory(tmp_path) -> Path:
    copy = tmp_path / ADVISORY.name
    copy.write_bytes(ADVISORY.read_bytes())
    return copy


# -- what the check says -------------------------------------------------------------------

def test_a_signature_by_a_pinned_subkey_is_valid_and_names_the_pinned_key(signers, keys,
                                                                           advisory):
    signers.sign(advisory, signers.provider)
    got = verify(advisory, keys)
    assert got.status is SignatureStatus.VALID and got.valid
    assert (got.fingerprint, got.signing_fingerprint) == (signers.provider,
                                                          signers.provider_subkey)
    assert got.user_id == "Example PSIRT <psirt@example.com>"
    assert got.line() == (
        f"{advisory}: signature valid: by Example PSIRT <psirt@example.com>, key "
        f"{signers.provider} (subkey {signers.provider_subkey}), pinned in "
        f"{keys.path}/provider.asc")
    assert keys.keys[0].subkeys == (signers.provider_subkey,)


def altered(signers, advisory):
    signers.sign(advisory, signers.provider)
    advisory.write_bytes(advisory.read_bytes().replace(b"Schneider", b"Schneidex", 1))
    return "the file does not match icsa-25-035-04.json.asc: altered since it was signed, " \
           "or icsa-25-035-04.json.asc signs another file"


def signature_of_another_file(signers, advisory):
    other = advisory.with_name("other.json")
    other.write_text("{}")
    signers.sign(other, signers.provider).rename(f"{advisory}.asc")
    return "the file does not match icsa-25-035-04.json.asc"


def by_a_key_not_pinned(signers, advisory):
    signers.sign(advisory, signers.stranger)
    return f"{signers.stranger} (key id {signers.stranger[-16:]}) is not among the 1 key(s) " \
           "pinned in "


def no_signature_beside_it(signers, advisory):
    return "no icsa-25-035-04.json.asc beside it"


def garbage_for_a_signature(signers, advisory):
    Path(f"{advisory}.asc").write_text("this is not a signature\n")
    return "icsa-25-035-04.json.asc is not an OpenPGP signature (gpg: signature expected " \
           "but not found)"


def a_key_for_a_signature(signers, advisory):
    shutil.copy(signers.folder / "stranger.asc", f"{advisory}.asc")
    return "icsa-25-035-04.json.asc is not an OpenPGP signature (gpg: unexpected data)"


def a_huge_signature(signers, advisory):
    Path(f"{advisory}.asc").write_bytes(b"-" * (64 * 1024 + 1))
    return f"signature {advisory}.asc: larger than 64 KiB: refused unread"


@pytest.mark.parametrize("arrange,status", [
    (altered, SignatureStatus.BAD),
    (signature_of_another_file, SignatureStatus.BAD),
    (by_a_key_not_pinned, SignatureStatus.UNKNOWN_KEY),
    (no_signature_beside_it, SignatureStatus.UNSIGNED),
    (garbage_for_a_signature, SignatureStatus.ERROR),
    (a_key_for_a_signature, SignatureStatus.ERROR),
    (a_huge_signature, SignatureStatus.ERROR),
], ids=lambda v: getattr(v, "__name__", getattr(v, "value", v)))
def test_what_is_not_a_valid_signature_says_why(signers, keys, advisory, arrange, status):
    says = arrange(signers, advisory)
    got = verify(advisory, keys)
    assert got.status is status and not got.valid
    assert says in got.why, got.line()
    assert "\n" not in got.line() and got.line().startswith(f"{advisory}: ")


def test_check_all_checks_every_file_with_one_import_in_order(signers, keys, advisory):
    signers.sign(advisory, signers.provider)
    unsigned = advisory.with_name("unsigned.json")
    unsigned.write_bytes(advisory.read_bytes())
    stranger = advisory.with_name("stranger.json")
    stranger.write_bytes(advisory.read_bytes())
    signers.sign(stranger, signers.stranger)
    got = check_all([str(stranger), unsigned, advisory], keys)
    assert list(got) == [str(stranger), str(unsigned), str(advisory)]
    assert [c.status.value for c in got.values()] == ["unknown_key", "unsigned", "valid"]


def test_with_no_key_pinned_nothing_is_read_and_the_report_says_so(tmp_path):
    missing = tmp_path / "never-written.json"  # not even opened
    got = verify(missing, NO_KEYS)
    assert got.status is SignatureStatus.NO_PINNED_KEYS
    assert got.line() == (f"{missing}: signature not checked: the site pins no advisory keys "
                          f"(put each provider's public key in {POSIX_PATH}/ or set "
                          "$OTPATCH_ADVISORY_KEYS)")


def test_an_empty_pinned_folder_pins_no_keys(tmp_path, signers, advisory):
    folder = pin(tmp_path / "advisory-keys", signers)
    signers.sign(advisory, signers.provider)
    got = verify(advisory, load_advisory_keys(folder))
    assert got.status is SignatureStatus.NO_PINNED_KEYS
    assert got.why == f"the site pins no advisory keys (no key file in {folder})"


# -- the pinned keys -----------------------------------------------------------------------

ONE = "the pinned advisory key"


@pytest.mark.parametrize("name,says", [
    ("not-a-key", "not an ASCII-armored OpenPGP public key (no -----BEGIN PGP PUBLIC KEY "
                  "BLOCK----- line)"),
    ("secret", "a secret key: pin only the provider's public key (gpg --armor --export), and "
               "remove this copy of a secret key"),
    ("expired", "expired on 2020-01-02: pin the provider's current key"),
    ("revoked", "is revoked: pin the provider's current key"),
    ("broken", "gpg finds no OpenPGP public key in it"),
])
def test_a_key_file_that_cannot_be_pinned_is_refused_in_one_line_naming_it(tmp_path, signers,
                                                                           name, says):
    (signers.folder / "not-a-key.asc").write_text("Schneider Electric PSIRT, see the web\n")
    (signers.folder / "broken.asc").write_text(  # armored, but no key inside
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5\n"
        "-----END PGP PUBLIC KEY BLOCK-----\n")
    folder = pin(tmp_path / "advisory-keys", signers, "provider", name)
    with pytest.raises(InputError) as refused:
        load_advisory_keys(folder)
    assert str(refused.value).startswith(f"{ONE} {folder / f'{name}.asc'}: ")
    assert says in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("what,mode,says", [
    ("folder", 0o777, "the pinned advisory keys {folder} can be changed by anyone "
                      "(mode 0777)"),
    ("folder", 0o1777, "the pinned advisory keys {folder} can be changed by anyone "
                       "(mode 1777)"),  # sticky does not help: others may add a key
    ("file", 0o664, "the pinned advisory key {folder}/provider.asc can be changed by group "
                    "gid 0 (mode 0664)"),
    ("parent", 0o777, "the pinned advisory keys {folder} can be changed by anyone (folder "
                      "{parent} writable by others)"),
])
def test_pinned_keys_others_can_change_are_refused(tmp_path, signers, what, mode, says):
    parent = tmp_path / "etc"
    parent.mkdir()
    folder = pin(parent / "advisory-keys", signers, "provider")
    {"folder": folder, "file": folder / "provider.asc", "parent": parent}[what].chmod(mode)
    with pytest.raises(InputError) as refused:
        load_advisory_keys(folder)
    assert str(refused.value) == f"{says.format(folder=folder, parent=parent)}: {INSTALL}"


def test_pinned_keys_owned_by_another_user_are_refused(tmp_path, signers):
    folder = pin(tmp_path / "advisory-keys", signers, "provider")
    os.chown(folder / "provider.asc", 1000, -1)
    with pytest.raises(InputError, match=r"provider.asc can be changed by uid 1000 "
                                         r"\(owner uid 1000\)"):
        load_advisory_keys(folder)


def test_a_missing_pinned_folder_or_a_file_is_refused(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(InputError, match=f"^the pinned advisory keys {missing} cannot be "
                                         "read: No such file or directory$"):
        load_advisory_keys(missing)
    single = tmp_path / "keys.asc"
    single.write_text("x")
    with pytest.raises(InputError, match="not a folder: pin one ASCII-armored public key "
                                         "file per provider in a folder"):
        load_advisory_keys(single)


def test_the_keys_path_is_the_environment_s_else_the_default_folder_if_it_exists():
    assert advisory_keys_path({"OTPATCH_ADVISORY_KEYS": "/srv/k"}) == Path("/srv/k")
    assert POSIX_PATH == Path("/etc/otpatch/advisory-keys")
    assert advisory_keys_path({}) == (POSIX_PATH if os.path.lexists(POSIX_PATH) else None)
    assert load_advisory_keys(None) is NO_KEYS


# -- gpg missing or hanging: said, and the run goes on --------------------------------------

def test_without_gpg_each_signed_file_says_install_gnupg(tmp_path, signers, advisory,
                                                          monkeypatch):
    folder = pin(tmp_path / "advisory-keys", signers, "provider")
    signers.sign(advisory, signers.provider)
    unsigned = advisory.with_name("unsigned.json")
    unsigned.write_text("{}")
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))
    got = check_all([advisory, unsigned], load_advisory_keys(folder))
    assert got[str(advisory)].line() == (f"{advisory}: signature not checked: gpg not "
                                         "installed: install Debian's gnupg")
    assert got[str(unsigned)].status is SignatureStatus.UNSIGNED


def test_a_gpg_that_does_not_answer_is_abandoned_after_the_timeout(tmp_path, signers,
                                                                     advisory, monkeypatch):
    folder = pin(tmp_path / "advisory-keys", signers, "provider")
    signers.sign(advisory, signers.provider)
    programs = tmp_path / "programs"
    programs.mkdir()
    stuck = f"#!/bin/sh\nexec {shutil.which('sleep')} 3\n"  # a gpg waiting on something
    (programs / "gpg").write_text(stuck)
    (programs / "gpg").chmod(0o755)
    monkeypatch.setenv("PATH", str(programs))
    monkeypatch.setattr(signatures, "GPG_TIMEOUT", 0.3)
    got = verify(advisory, load_advisory_keys(folder))
    assert got.line() == f"{advisory}: signature not checked: gpg did not answer within 0.3 s"


def test_advisories_match_records_each_providers_signature(signers, tmp_path):
    """The whole path a site uses: pinned keys named by OTPATCH_ADVISORY_KEYS, a signed
    advisory, an altered one and an unsigned one, through `otpatch advisories match`."""
    import json

    from conftest import FIXTURES, otpatch_child

    keys = pin(tmp_path / "pinned", signers, "provider")
    feed = tmp_path / "feed"
    feed.mkdir()
    for name in ("icsa-25-035-04.json", "icsa-23-201-01.json", "icsa-21-194-02.json"):
        shutil.copy(ADVISORY.parent / name, feed / name)
    signers.sign(feed / "icsa-25-035-04.json", signers.provider_subkey)
    signers.sign(feed / "icsa-23-201-01.json", signers.provider_subkey)
    with open(feed / "icsa-23-201-01.json", "a") as f:
        f.write("\n")  # altered after signing
    result = otpatch_child(tmp_path / "home", "advisories", "match", "-i",
                           str(FIXTURES / "advisories" / "plant.yml"), str(feed), "--json",
                           OTPATCH_ADVISORY_KEYS=str(keys))
    assert (result.returncode, result.stderr) == (0, "")
    doc = json.loads(result.stdout)
    assert doc["signatures"]["counts"] == {"valid": 1, "bad": 1, "unsigned": 1}
    status = {m["advisory"]: {s["signature"] for s in m["sources"]} for m in doc["matches"]}
    assert status["ICSA-25-035-04"] == {"valid"} and status["ICSA-23-201-01"] == {"bad"}
    assert status["ICSA-21-194-02"] == {"unsigned"}
    assert any("icsa-23-201-01.json: signature BAD" in n for n in doc["notes"])
