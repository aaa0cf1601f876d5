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
    for port in ("15020", "15021", "15022", "15030", "15031", "15032", "15040", "15041",
                 "15042", "15043", "15044"):
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


def test_a_fault_scoped_to_a_host_or_a_stage_reaches_only_those_simulators(tmp_path):
    """`--fault NAME@HOST` and `NAME@STAGE`: the other simulators stay healthy, at start and
    after a reset, so one lab serves a fault at every stage in turn."""
    from otpatch.engine.simlab import start_lab

    with start_lab(ROOT / "inventory" / "lab.yml", ["reboot_hang@prod-plc-1"], ephemeral=True,
                   out_dir=tmp_path / "lab") as lab:
        assert "reboot_hang" in lab.device("prod-plc-1").faults
        assert not lab.device("lab-plc-1").faults and not lab.device("staging-plc-1").faults
        lab.reset(["transfer_abort@staging"])
        assert "transfer_abort" in lab.device("staging-plc-1").faults
        assert not lab.device("prod-plc-1").faults and not lab.device("lab-plc-1").faults
        lab.reset(["io_connection_loss"])  # unscoped: every simulator that knows it
        assert "io_connection_loss" in lab.device("lab-x80-1").faults
        assert "io_connection_loss" in lab.device("prod-x80-2").faults
        with pytest.raises(Exception, match="fault 'reboot_hang@nowhere': no simulator host"):
            lab.reset(["reboot_hang@nowhere"])


def test_a_fault_scoped_to_nothing_is_one_line(tmp_path, lab_copy):
    done = otpatch_child(tmp_path / "home", "sim", "up", "-i", str(lab_copy), "--fault",
                         "reboot_hang@nowhere")
    assert done.returncode == 2
    assert done.stderr.startswith("otpatch: fault 'reboot_hang@nowhere': ")
    assert "has no simulator host or stage of that name" in done.stderr
