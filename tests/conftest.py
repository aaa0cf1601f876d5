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
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTPATCH_") or k == "OTPATCH_LAB_MGUARD_PASSWORD"}
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


@pytest.fixture
def lab(tmp_path):
    """The simulator lab of inventory/lab.yml on ephemeral ports; `lab.inventory` is the
    inventory copy that points at them. Every simulator is stopped afterwards."""
    from otpatch.engine.simlab import start_lab

    with start_lab(ROOT / "inventory" / "lab.yml", ephemeral=True,
                   out_dir=tmp_path / "lab") as running:
        yield running
