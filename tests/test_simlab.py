"""`otpatch sim up`: the lab's simulators as a real process, stopped cleanly by SIGTERM."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from otpatch.engine.inventory import load_inventory
from otpatch.modules.registry import simulator_probe

from conftest import ROOT, child_env, otpatch_child


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab_copy(tmp_path) -> Path:
    """inventory/lab.yml with ports nobody else uses."""
    text = (ROOT / "inventory" / "lab.yml").read_text()
    for port in ("5020", "5021", "5022", "44818", "44819", "44820", "44822", "44823", "44824",
                 "8443", "8444"):
        text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
    path = tmp_path / "lab.yml"
    path.write_text(text)
    return path


def test_sim_up_serves_until_sigterm(tmp_path, lab_copy):
    proc = subprocess.Popen([sys.executable, "-m", "otpatch.engine.cli", "sim", "up", "-i",
                             str(lab_copy), "--fault", "reboot_hang"], cwd=ROOT,
                            env=child_env(tmp_path / "home"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while len(lines) < 20 and not (lines and lines[-1].startswith("simulators up")):
            lines.append(proc.stdout.readline())  # one line per host, then "simulators up"
        assert lines[-1].startswith("simulators up (faults: reboot_hang)"), lines
        assert any(line.startswith("prod-plc-1: enip 127.0.0.1:") for line in lines)
        plc = load_inventory(lab_copy).hosts["lab-plc-1"]
        answers, detail = simulator_probe(plc)
        assert answers, detail
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "simulators stopped" in out


def test_unknown_fault_is_one_line(tmp_path, lab_copy):
    done = otpatch_child(tmp_path / "home", "sim", "up", "-i", str(lab_copy), "--fault", "melt")
    assert done.returncode == 2
    assert done.stderr.startswith("otpatch: unknown fault(s) melt; known: hash_mismatch")


def test_port_in_use_is_one_line(tmp_path, lab_copy):
    plc = load_inventory(lab_copy).hosts["lab-plc-1"]
    port = int(plc.endpoints["modbus"].rpartition(":")[2])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        done = otpatch_child(tmp_path / "home", "sim", "up", "-i", str(lab_copy))
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "cannot start the simulators" in done.stderr
