"""The safety rules as a plant engineer meets them: each unsafe procedure refused with a
located line and exit 2, its safe twin accepted, against an inventory that says which hosts
are production; and the run-time half (stage, max_visits, windows) refusing before a byte."""
from __future__ import annotations

import json
import re
import socket
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from otpatch.engine import guards
from otpatch.engine.inventory import MaintenanceWindow, load_inventory
from otpatch.engine.loader import catalogue, check_playbook
from otpatch.engine.model import Requirement
from conftest import FIXTURES, ROOT, otpatch_child, run_json

SAFETY = FIXTURES / "safety"
SITE = SAFETY / "site.yml"

UNSAFE = [
    # (unsafe fixture, the rule it breaks, the line it is reported on, its safe twin)
    ("lab-label-on-production", "stage-mismatch", 24, "base"),
    ("mixed-stages", "stage-mixed", 22, "base"),
    ("no-gate", "production-without-signoff", 21, "base"),
    ("no-gate", "production-without-window", 21, "base"),
    ("rollback-to-terminal", "rollback-unverified", 27, "base"),
    ("rollback-restores-nothing", "rollback-unverified", 27, "base"),
    ("rollback-without-readback", "rollback-unverified", 28, "base"),
    ("verify-before-change", "change-unverified", 29, "base"),
    ("unverified", "change-unverified", 29, "waive-unverified"),
    ("cycle", "cycle-unbounded", 7, "cycle"),
    ("signoff-one-role", "signoff-dual", 18, "base"),
    ("signoff-one-person", "signoff-dual", 18, "base"),
    ("no-window", "production-without-window", 23, "base"),
    ("firmware-from-string", "firmware-param", 30, "base"),
    ("window-undeclared", "window-undeclared", 19, "base"),
    ("window-too-short", "window-too-short", 19, "base"),
    ("waive-signoff", "waiver-invalid", 12, "waive-unverified"),
    ("attest-role-unheld", "attest-role-unheld", 21, "base"),
    ("window-ended", "window-ended", 19, "base"),  # plan and run; see below
    ("simulator-on-real-host", "simulator-interface", 26, "base"),
]
BY_VALIDATE = [row for row in UNSAFE if row[1] != "window-ended"]


def unsafe(name: str) -> Path:
    return SAFETY / "unsafe" / f"{name}.yml"


def safe(name: str) -> Path:
    return SAFETY / "safe" / f"{name}.yml"


@pytest.fixture(scope="module")
def site():
    return load_inventory(SITE)


@pytest.mark.parametrize("name, rule, line, twin", BY_VALIDATE,
                         ids=[f"{r[0]}-{r[1]}" for r in BY_VALIDATE])
def test_unsafe_procedure_is_refused_at_its_line_and_its_twin_passes(home, name, rule, line,
                                                                    twin):
    done = otpatch_child(home, "validate", "-i", str(SITE), str(unsafe(name)))
    assert done.returncode == 2, done.stdout
    lines = done.stderr.strip().splitlines()
    assert re.search(rf"^{re.escape(str(unsafe(name)))}:{line}:\d+: \[{rule}\] ", done.stderr,
                     re.M), done.stderr
    assert all(re.match(rf"^{re.escape(str(unsafe(name)))}:\d+:\d+: \[[a-z-]+\] ", text)
               for text in lines), lines
    twin_done = otpatch_child(home, "validate", "-i", str(SITE), str(safe(twin)))
    assert twin_done.returncode == 0, twin_done.stderr


def test_validate_cli_exits_2_with_located_lines_and_0_for_the_twin(home):
    done = otpatch_child(home, "validate", "-i", str(SITE), str(unsafe("no-gate")))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines and all(re.match(rf"^{re.escape(str(unsafe('no-gate')))}:\d+:\d+: \[", line)
                         for line in lines)
    assert "[production-without-window] state 'transfer' changes a production device" in done.stderr
    ok = otpatch_child(home, "validate", "-i", str(SITE), str(safe("base")))
    assert ok.returncode == 0, ok.stderr
    assert f"{safe('base')}: valid against {SITE}" in ok.stdout


def test_without_an_inventory_an_unlabelled_device_state_is_production(home):
    """No -i: a state with no stage that targets a device is taken as production."""
    _, problems = check_playbook(unsafe("no-gate"))
    assert {"production-without-signoff", "production-without-window"} <= {p.rule for p in problems}


def test_the_lab_label_alone_passes_without_the_inventory_that_refutes_it():
    _, problems = check_playbook(unsafe("lab-label-on-production"))
    assert "stage-mismatch" not in {p.rule for p in problems}


def test_the_waiver_passes_and_is_shown(home):
    done = otpatch_child(home, "validate", "-i", str(SITE), str(safe("waive-unverified")))
    assert done.returncode == 0, done.stderr
    assert "waived change-unverified: the version is read at the HMI" in done.stdout
    doc = run_json(otpatch_child(home, "validate", "-i", str(SITE),
                                 str(safe("waive-unverified")), "--json"))
    assert doc["playbooks"][0]["waivers"] == [
        {"rule": "change-unverified",
         "reason": "the version is read at the HMI and attested in check"}]


# -- plan and run refuse the same, before anything is sent --------------------------------------

class Listener:
    """A TCP listener on 127.0.0.1 that counts connections: the production PLC's endpoint."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def plc_listener():
    listener = Listener()
    yield listener
    listener.close()


def site_copy(tmp_path: Path, port: int, simulator: bool = False) -> Path:
    """The site with its CPUs at `port`; prod-plc marked a simulator only with `simulator`."""
    text = SITE.read_text().replace("127.0.0.1:1", f"127.0.0.1:{port}")
    if not simulator:
        text = text.replace("simulator: true, endpoints", "endpoints")
    path = tmp_path / "site.yml"
    path.write_text(text)
    return path


def copy_beside(tmp_path: Path, fixture: Path) -> Path:
    """The fixture next to the site copy (its firmware path stays valid from there)."""
    folder = tmp_path / "safety" / fixture.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / fixture.name
    target.write_text(fixture.read_text().replace("../../engine/fw.bin",
                                                  str(FIXTURES / "engine" / "fw.bin")))
    return target


@pytest.mark.parametrize("command", [("plan",), ("run", "--execute"), ("run", "--dry-run")])
def test_a_production_host_from_a_lab_state_is_refused_and_nothing_is_sent(
        tmp_path, home, plc_listener, command):
    inventory = site_copy(tmp_path, plc_listener.port)
    playbook = copy_beside(tmp_path, unsafe("lab-label-on-production"))
    done = otpatch_child(home, command[0], str(playbook), "-i", str(inventory), *command[1:])
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{playbook}:24:3: [stage-mismatch] state 'transfer' is labelled stage lab" in done.stderr
    assert "prod-plc" in done.stderr and "Traceback" not in done.stderr
    assert plc_listener.connections == 0
    assert not (home / "journal.sqlite").exists() or "r-" not in otpatch_child(
        home, "status").stdout


@pytest.mark.parametrize("command", [("plan",), ("run", "--dry-run")])
def test_an_ended_window_is_refused_by_plan_and_run(tmp_path, home, plc_listener, command):
    inventory = site_copy(tmp_path, plc_listener.port, simulator=True)
    playbook = copy_beside(tmp_path, unsafe("window-ended"))
    assert otpatch_child(home, "validate", "-i", str(inventory), str(playbook)).returncode == 0
    done = otpatch_child(home, command[0], str(playbook), "-i", str(inventory), *command[1:])
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(rf"^{re.escape(str(playbook))}:19:9: \[window-ended\] gate: window "
                     r"last_year \(2025-06-01T22:00:00\+02:00 \.\. .*\) ended before ",
                     done.stderr, re.M), done.stderr
    assert plc_listener.connections == 0


def test_plan_shows_the_window_arithmetic_when_it_is_too_short(tmp_path, home):
    inventory = site_copy(tmp_path, 1)
    playbook = copy_beside(tmp_path, unsafe("window-too-short"))
    done = otpatch_child(home, "plan", str(playbook), "-i", str(inventory))
    assert done.returncode == 2
    assert ("[window-too-short] gate: window short is 10m (2030-06-01T22:00:00+02:00 .. "
            "2030-06-01T22:10:00+02:00) but the path from gate expects 10m and needs 17m in "
            "the worst case (check fails at 10m, then rollback restore 7m)") in done.stderr


def test_a_dry_run_assumes_a_window_open_only_until_it_ends():
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    req = Requirement("window", window="production")

    def verdict(start: datetime, end: datetime, dry_run: bool = True) -> guards.Verdict:
        view = guards.GateContext(policy=guards.POLICIES["dry_run" if dry_run else "execute"],
                                  now=now.timestamp(), params={}, facts={},
                                  windows={"production": MaintenanceWindow("production",
                                                                           start, end)})
        return guards.window_open(req, view)

    later = verdict(now + timedelta(days=4), now + timedelta(days=4, hours=4))
    assert later.passed and later.simulated and "has not ended" in later.detail
    over = verdict(now - timedelta(days=365), now - timedelta(days=364))
    assert not over.passed and "ended before 2026-12-01T12:00:00+00:00" in over.detail
    assert not verdict(now + timedelta(days=4), now + timedelta(days=5), dry_run=False).passed


# -- run time: max_visits and a templated target of another stage ----------------------------

LOOP_WITH_DEVICE = """\
apiVersion: otpatch/v1
kind: Playbook
metadata: {{name: bounded-loop, version: 1.0.0}}
initial: write
states:
  write:
    checkpoint: as_found
    rollback: undo
    max_visits: 2
    do:
      - logdevice.set_value: {{device: "{device}", key: setpoint, value: 7}}
    next: settle
  settle:
    do: [{{core.wait: {{duration: 1s}}}}]
    next: write
  undo:
    do:
      - logdevice.set_value: {{device: "{device}", key: setpoint, value: 0}}
    next: rolled_back
"""


def test_a_spent_max_visits_fails_through_the_rollback_path(tmp_path, home):
    device = tmp_path / "device.json"
    playbook = tmp_path / "loop.yml"
    playbook.write_text(LOOP_WITH_DEVICE.format(device=device))
    doc = run_json(otpatch_child(home, "run", str(playbook), "--dry-run", "--json"))
    assert doc["status"] == "rolled_back"
    assert [v["state"] for v in doc["path"]] == ["write", "settle", "write", "settle", "undo",
                                                 "rolled_back"]
    assert "state write already entered 2 time(s) (max_visits 2)" in json.dumps(doc)
    assert json.loads(device.read_text()) == {"setpoint": 0}
    assert (home / "journal.sqlite").stat().st_size < 200_000


TEMPLATED_TARGET = """\
apiVersion: otpatch/v1
kind: Playbook
metadata: {name: templated-target, version: 1.0.0}
params:
  which: {type: string, default: plc}
targets:
  plc: {group: production_cpus}
  lab_plc: {group: lab_cpus}
initial: look
states:
  look:
    stage: lab
    do:
      - m580.identity: {target: "{{ params.which }}"}
    next: completed
"""


def test_a_templated_target_of_another_stage_is_refused_at_run_time(tmp_path, home,
                                                                    plc_listener,
                                                                    site_register):
    inventory = site_copy(tmp_path, plc_listener.port)
    site_register.sign(inventory)  # an execute run needs the site register signed
    playbook = tmp_path / "templated.yml"
    playbook.write_text(TEMPLATED_TARGET)
    doc = run_json(otpatch_child(home, "run", str(playbook), "-i", str(inventory),
                                 "--execute", "--json"))
    assert doc["status"] == "aborted"
    assert ("not sent: target plc -> prod-plc (production), but this state runs in lab"
            in json.dumps(doc))
    assert plc_listener.connections == 0


# -- the rules, listed ---------------------------------------------------------------------------

def test_validate_rules_lists_every_rule_with_why_and_waivability(home):
    done = otpatch_child(home, "validate", "--rules")
    assert done.returncode == 0, done.stderr
    for rule, entry in catalogue().items():
        assert re.search(rf"^{re.escape(rule)}( \(.*\))?: ", done.stdout, re.M), rule
        assert entry.why, rule
    assert re.search(r"^change-unverified \(waivable\): ", done.stdout, re.M)
    assert re.search(r"^production-without-signoff: .*Why: IEC 62443-2-3", done.stdout, re.M)
    assert re.search(r"^window-ended \(plan and run\): ", done.stdout, re.M)
    never = {"production-without-signoff", "signoff-dual", "production-without-window",
             "rollback-uncovered", "rollback-unverified"}
    assert all(not catalogue()[rule].waivable for rule in never)


def test_validate_an_inventory_alone(home, tmp_path):
    ok = otpatch_child(home, "validate", "-i", str(ROOT / "inventory" / "lab.yml"))
    assert ok.returncode == 0 and "inventory/lab.yml: valid (sha256:" in ok.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("all:\n  hosts:\n    plc-1: {otpatch_stage: produktion}\n")
    done = otpatch_child(home, "validate", "-i", str(bad))
    assert done.returncode == 2
    assert re.match(rf"^{re.escape(str(bad))}:3:\d+: \[schema\] ", done.stderr)


BUDGET_OFF_PATH = """\
apiVersion: otpatch/v1
kind: Playbook
metadata: {name: budget-off-path, version: 1.0.0}
initial: work
budgets:
  downtime: {limit: 9m, states: [work, undo]}
states:
  work:
    rollback: undo
    do: [{core.wait: {duration: 1s}}]
    expect_duration: 8m
    next: completed
  undo:
    do: [{core.wait: {duration: 1s}}]
    expect_duration: 7m
    next: rolled_back
"""


def test_validate_and_plan_judge_a_budget_the_same_way(tmp_path, home):
    """An off-path rollback state counts in the worst case, not in the expected time."""
    playbook = tmp_path / "budget.yml"
    playbook.write_text(BUDGET_OFF_PATH)
    assert otpatch_child(home, "validate", str(playbook)).returncode == 0
    done = otpatch_child(home, "plan", str(playbook))
    assert done.returncode == 0, done.stderr
    assert ("downtime 9m: expected 8m (within); worst case with rollback 15m (OVER): work "
            "fails, then rollback -> undo (off the happy path: undo)") in done.stdout
    playbook.write_text(BUDGET_OFF_PATH.replace("limit: 9m", "limit: 7m"))
    refused = otpatch_child(home, "validate", str(playbook))
    assert refused.returncode == 2
    assert "[budget-over] budget downtime: expected 8m on the path (work) > limit 7m" in \
        refused.stderr


def test_the_shipped_procedures_pass_against_the_lab_inventory(home):
    playbooks = sorted(str(p) for p in (ROOT / "playbooks").glob("*.yml"))
    done = otpatch_child(home, "validate", "-i", str(ROOT / "inventory" / "lab.yml"), *playbooks)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("valid against") == len(playbooks)


def test_a_window_gate_refuses_when_too_little_of_the_window_is_left():
    """Open, but the path from the gate needs 22m in the worst case and 10m remain."""
    start = datetime(2026, 12, 5, 21, tzinfo=timezone.utc)
    window = MaintenanceWindow("production", start, start + timedelta(hours=4))
    req = Requirement("window", window="production")

    def at(now: datetime) -> guards.Verdict:
        view = guards.GateContext(policy=guards.POLICIES["execute"], now=now.timestamp(),
                                  params={}, facts={}, windows={"production": window},
                                  state="production_gate", needs={"production_gate": 22 * 60})
        return guards.window_open(req, view)

    late = at(window.end - timedelta(minutes=10))
    assert not late.passed
    assert ("10m left, but the path from production_gate needs 22m in the worst case"
            in late.detail)
    assert at(start + timedelta(minutes=5)).passed
