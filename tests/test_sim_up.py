"""`otpatch sim up` as a real process: it starts every time, its lab ports stay out of the
ephemeral range, and the shipped mGuard procedure completes against it as it says."""
from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from conftest import ROOT, child_env, otpatch_child, run_json

MGUARD = "playbooks/mguard-firmware-update.yml"
LAB = ROOT / "inventory" / "lab.yml"
UP_TIMEOUT_S = 20


class SimUp:
    """One `otpatch sim up ARGS` child: `up()` waits (bounded) for its "simulators up" line,
    `stop()` sends SIGTERM and waits; whatever is still running at the end is killed."""

    def __init__(self, home: Path, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "otpatch.engine.cli", "sim", "up", *args], cwd=ROOT,
            env=child_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL)
        self.lines: list[str] = []
        self._out: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def up(self) -> list[str]:
        deadline = time.monotonic() + UP_TIMEOUT_S
        while not (self.lines and self.lines[-1].startswith("simulators up")):
            try:
                line = self._out.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no 'simulators up' in time: {self.lines}") from None
            assert line, f"sim up ended: {self.lines}"
            self.lines.append(line.rstrip("\n"))
        return self.lines

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._out.put(line)
        self._out.put("")

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM; (exit code, the rest of stdout, stderr)."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=UP_TIMEOUT_S)
        self._reader.join(timeout=UP_TIMEOUT_S)
        rest = []
        while not self._out.empty():
            rest.append(self._out.get())
        return self.proc.returncode, "".join(rest), self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=UP_TIMEOUT_S)
        self._reader.join(timeout=UP_TIMEOUT_S)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def sim_up(tmp_path):
    """Start `sim up` children; every one still running is killed at the end."""
    started: list[SimUp] = []

    def start(*args: str) -> SimUp:
        started.append(SimUp(tmp_path / "home", *args))
        return started[-1]

    yield start
    for child in started:
        child.kill()


def local_traffic(connections: int = 400) -> None:
    """What other local programs leave behind: closed client connections, each holding an
    ephemeral port in TIME_WAIT."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(connections)
        for _ in range(connections):
            with socket.create_connection(server.getsockname()) as client:
                peer, _ = server.accept()
                client.close()  # the client closes first: its port stays in TIME_WAIT
                peer.close()


def lab_ports() -> list[int]:
    doc = YAML(typ="safe").load(LAB.read_text())
    ports: list[int] = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "endpoints":
                    ports.extend(int(str(v).rpartition(":")[2]) for v in value.values())
                else:
                    walk(value)
    walk(doc)
    return ports


def test_the_shipped_lab_ports_lie_outside_the_ephemeral_range():
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    from otpatch.engine.simup import LAB_SYSLOG_PORT

    ports = lab_ports() + [LAB_SYSLOG_PORT]
    assert len(ports) == 14 and len(set(ports)) == 14, ports
    assert all(15020 <= p <= 15099 for p in ports), ports  # the block lab.yml documents
    assert not [p for p in ports if low <= p <= high], (low, high)


def test_sim_up_with_free_ports_starts_20_times_right_after_local_traffic(sim_up, tmp_path):
    local_traffic()
    for attempt in range(20):
        child = sim_up("-i", str(LAB), "--free-ports", "--write-inventory",
                       str(tmp_path / f"lab-{attempt}.yml"))
        lines = child.up()
        assert sum(": https 127.0.0.1:" in line or ": enip 127.0.0.1:" in line
                   for line in lines) == 10, lines
        rc, out, err = child.stop()
        assert rc == 0 and "simulators stopped" in out, (attempt, err)


def test_fixed_ports_restart_at_once_after_clients_were_served(sim_up, tmp_path):
    """A lab on fixed ports outside the ephemeral range, served and stopped, starts again
    at once. The shipped block shifted by 100 (15120-15199): other tests probe the shipped
    ports themselves (a dry run against inventory/lab.yml finds no simulator there), and
    tests run two at a time."""
    shifted = tmp_path / "lab.yml"
    shifted.write_text(re.sub(r"127\.0\.0\.1:150(\d\d)", r"127.0.0.1:151\1", LAB.read_text()))
    for attempt in range(2):
        child = sim_up("-i", str(shifted))
        child.up()
        for port in (15120, 15130, 15143):  # Modbus, EtherNet/IP, HTTPS: each answers
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        rc, out, err = child.stop()
        assert rc == 0, (attempt, err)


def run_against(child: SimUp, tmp_path: Path, playbook: str = MGUARD) -> dict:
    """`otpatch run` exactly as `sim up` told the user to run it."""
    command = next(line.strip() for line in child.up() if line.strip().startswith("otpatch run"))
    args = command.split()[2:]
    args[args.index("PLAYBOOK")] = playbook
    done = otpatch_child(tmp_path / "run-home", "run", *args, "--json", timeout=90)
    return run_json(done)


def test_the_mguard_procedure_completes_against_sim_up(sim_up, tmp_path):
    inventory = tmp_path / "written" / "lab.yml"
    child = sim_up("-i", str(LAB), "--free-ports", "--write-inventory", str(inventory))
    result = run_against(child, tmp_path)
    assert inventory.exists()
    assert result["status"] == "completed", result
    assert "syslog_port=" in " ".join(child.lines)


@pytest.mark.parametrize("host,failed_in", [("lab-mguard-1", "lab_verify"),
                                            ("prod-mguard-1", "production_verify")])
def test_a_fault_for_one_host_strikes_only_that_host(sim_up, tmp_path, host, failed_in):
    child = sim_up("-i", str(LAB), "--free-ports", "--write-inventory",
                   str(tmp_path / "lab.yml"), "--fault", f"syslog_gap@{host}")
    result = run_against(child, tmp_path)
    states = [visit["state"] for visit in result["path"]]
    assert result["status"] == "rolled_back", result
    assert failed_in in states and "0 message(s)" in result["message"], result
    if host == "prod-mguard-1":  # the lab firewall, fault-free, passed its syslog check
        assert "lab_evidence" in states and "lab_restore" not in states
    else:
        assert not any(s.startswith("production_") for s in states)


def test_a_host_with_no_simulator_is_skipped_with_a_line(sim_up, tmp_path):
    inventory = tmp_path / "mixed.yml"
    inventory.write_text(
        "all:\n  hosts:\n"
        "    s7-1:\n      vendor: Siemens\n      model: SIMATIC S7-1500\n"
        "      simulator: true\n      endpoints: {s7: \"127.0.0.1:15060\"}\n"
        "    x80-1:\n      vendor: Schneider Electric\n"
        "      model: Modicon X80 EIO drop adapter\n      part_number: BMECRA31210\n"
        "      firmware: v02.40\n      simulator: true\n"
        "      endpoints: {enip: \"127.0.0.1:15061\"}\n")
    lines = sim_up("-i", str(inventory), "--free-ports").up()
    assert "s7-1: skipped: no simulator for its kind (Siemens SIMATIC S7-1500)" in lines
    assert any(line.startswith("x80-1: enip 127.0.0.1:") for line in lines)


@pytest.mark.parametrize("args,message", [
    (("--write-inventory", "x.yml"), "--write-inventory needs --free-ports"),
    (("--syslog", "10.30.30.10:514"), "must be on a loopback address"),
    (("--syslog", "514"), "give HOST:PORT"),
], ids=["write-without-free-ports", "syslog-not-loopback", "syslog-no-host"])
def test_bad_sim_up_arguments_are_one_line(tmp_path, args, message):
    done = otpatch_child(tmp_path / "home", "sim", "up", "-i", str(LAB), *args)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert message in done.stderr
