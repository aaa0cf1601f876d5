"""Shared test fixtures: an isolated OTPATCH_HOME, the CLI in-process and as a child."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The stand-in device module for crash and rehearsal tests (tests/plugins/logdevice.py):
# for child processes and the in-process CLI (both read the variable), and for the tests
# that call the engine directly, in the registry now.
os.environ.setdefault("OTPATCH_MODULE_PLUGINS", "tests.plugins.logdevice")
from otpatch.modules.registry import load_registry  # noqa: E402

load_registry(["tests.plugins.logdevice"])
# The lab mGuards' password (simulator and driver read it): a fresh one for each test session.
os.environ.setdefault("OTPATCH_LAB_MGUARD_PASSWORD", "lab-" + os.urandom(8).hex())

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh OTPATCH_HOME for the test."""
    path = tmp_path / "otpatch-home"
    monkeypatch.setenv("OTPATCH_HOME", str(path))
    return path


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """The test's environment for a child otpatch: no OTPATCH_* of the caller's, except the
    lab mGuards' password and the pinned register keys a test set (`site_register`)."""
    env = {k: v for k, v in os.environ.items() if (not k.startswith("OTPATCH_")
           or k in ("OTPATCH_LAB_MGUARD_PASSWORD", "OTPATCH_REGISTER_KEYS"))
           and k not in ("COLUMNS", "LINES")}  # a pty's size is the child's own (xdist sets them)
    env.update(OTPATCH_HOME=str(home), OTPATCH_MODULE_PLUGINS="tests.plugins.logdevice",
               PYTHONPATH=str(ROOT), **extra)
    return env


def otpatch_child(home: Path, *args: str, timeout: float = 60, **extra: str
                  ) -> subprocess.CompletedProcess:
    """`otpatch ARGS` in a real child process (the installed console entry point)."""
    return subprocess.run([sys.executable, "-m", "otpatch.engine.cli", *args], cwd=ROOT,
                          env=child_env(home, **extra), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def run_json(result: subprocess.CompletedProcess) -> dict:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def verdict_cache(tmp_path_factory) -> Path:
    """One CSAF verdict cache (a real SQLite file) for the session's advisory loads: the
    csaf tests run once per file per worker, as a site's second run would
    (tests/test_advisories_conformance.py checks that a cached load equals a fresh one)."""
    return tmp_path_factory.mktemp("verdicts") / "csaf-verdicts.sqlite"


@pytest.fixture
def lab(tmp_path):
    """The simulator lab of inventory/lab.yml on ephemeral ports; `lab.inventory` is the
    inventory copy that points at them. Every simulator is stopped afterwards."""
    from otpatch.engine.simlab import start_lab

    with start_lab(ROOT / "inventory" / "lab.yml", ephemeral=True,
                   out_dir=tmp_path / "lab") as running:
        yield running


LAB_SIGNERS = (("bernd-maier", "ot_security_officer"), ("alice-chen", "process_owner"))


def lab_keys(folder: Path, people) -> dict[str, Path]:
    """The lab people's private keys (inventory/lab-keys/PERSON.key) copied into `folder`,
    mode 0600 (git keeps no file modes, and a key readable by others is refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for person in people:
        out[person] = folder / f"{person}.key"
        out[person].write_bytes((ROOT / "inventory" / "lab-keys" / f"{person}.key").read_bytes())
        out[person].chmod(0o600)
    return out


class SiteRegister:
    """The lab's register signers (inventory/lab-register-keys.yml) pinned in a root-owned
    0644 file under tmp_path, and their keys copied 0600 (git keeps no file modes).
    `env` names the pinned keys for a child process (the fixture also sets it in this
    process's environment, which otpatch_child passes on);
    `sign(inventory)` signs that inventory's register as both lab signers, beside it;
    `copy(inventory)` copies an inventory of the repository to tmp_path first, since a
    signed register is never written into the repository."""

    def __init__(self, folder: Path):
        if getattr(os, "geteuid", lambda: None)() != 0:  # POSIX root only (not Windows)
            pytest.skip("pinned register keys must be owned by root (uid 0): run the tests "
                        "as root")
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.pinned = folder / "register-keys.yml"
        self.pinned.write_bytes((ROOT / "inventory" / "lab-register-keys.yml").read_bytes())
        self.pinned.chmod(0o644)
        self.keys = lab_keys(folder, [person for person, _ in LAB_SIGNERS])
        self.env = {"OTPATCH_REGISTER_KEYS": str(self.pinned)}

    def copy(self, inventory: str | Path = ROOT / "inventory" / "lab.yml") -> Path:
        target = self.folder / Path(inventory).name
        target.write_bytes(Path(inventory).read_bytes())
        return target

    def sign(self, inventory: str | Path) -> Path:
        from otpatch.engine.cli import main
        from otpatch.engine.siteregister import register_file

        assert ROOT not in Path(inventory).resolve().parents, "copy() it to tmp_path first"
        with pytest.MonkeyPatch.context() as env:
            env.setenv("OTPATCH_REGISTER_KEYS", str(self.pinned))
            for person, role in LAB_SIGNERS:
                assert main(["register", "sign", "-i", str(inventory), "--key",
                             str(self.keys[person]), "--role", role]) == 0
        return register_file(inventory)


@pytest.fixture
def site_register(tmp_path, monkeypatch) -> SiteRegister:
    """Pinned lab register keys (see SiteRegister); $OTPATCH_REGISTER_KEYS set for the
    in-process CLI and for otpatch_child. Pinned keys must be root's: without root the
    fixture cannot make any, and skips."""
    register = SiteRegister(tmp_path / "site")
    monkeypatch.setenv("OTPATCH_REGISTER_KEYS", str(register.pinned))
    return register


@pytest.fixture
def lab_inventory(site_register) -> Path:
    """An unsigned copy of inventory/lab.yml beside the pinned lab register keys."""
    return site_register.copy()


@pytest.fixture
def signed_lab(site_register, lab_inventory) -> Path:
    """A copy of inventory/lab.yml in tmp_path, its register signed by both lab signers."""
    site_register.sign(lab_inventory)
    return lab_inventory
