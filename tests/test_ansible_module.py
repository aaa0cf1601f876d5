"""ansible.playbook against real ansible-runner runs on this machine (local connection only)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pytest
from jsonschema import Draft202012Validator

from otpatch.modules.contract.values import freeze
from otpatch.modules.ansible.environment import ansible_envvars, scrubbed
from otpatch.modules.ansible.events import PAYLOAD_LIMIT
from otpatch.modules.ansible.playbook import AnsiblePlaybook, runs_in_check_mode
from otpatch.modules.contract.module import Attestation

FIXTURES = Path(__file__).parent / "fixtures" / "ansible"


# --- a stand-in for the engine's run context, which is not part of this unit --------------

@dataclass
class StandInClock:
    simulated: bool = True
    t: float = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@dataclass(frozen=True)
class InventoryFile:
    path: Path


@dataclass
class StandInContext:
    """Implements the Context protocol fields ansible.playbook uses, plus playbook_dir; the
    journal is a list of (event_type, payload)."""

    mode: str
    run_dir: Path
    inventory: InventoryFile
    playbook_dir: Path | None = FIXTURES
    clock: StandInClock = field(default_factory=StandInClock)
    run_id: str = "test-run"
    facts: Mapping[str, Any] = field(default_factory=dict)
    namespace: Mapping[str, Any] = field(default_factory=dict)
    records: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def dry_run(self) -> bool:
        return self.mode == "dry_run"

    def hosts(self, target: str) -> tuple[Any, ...]:
        return ()

    def attest(self, statement: str, role: str | None, simulated_answer: bool) -> Attestation:
        return Attestation(statement, simulated_answer, "simulation", "1970-01-01T00:00:00Z",
                           simulated=True)

    def record(self, event_type: str, payload: Mapping[str, Any]) -> None:
        self.records.append((event_type, dict(payload)))

    def events(self) -> list[dict]:
        return [p for kind, p in self.records if kind == "ansible_event"]


@pytest.fixture(autouse=True)
def ansible_home_in_tmp(tmp_path, monkeypatch):
    # Every ansible-playbook run creates ANSIBLE_HOME (~/.ansible); on a local connection its
    # "remote" temp is ~/.ansible/tmp, and ssh keeps its control sockets in ~/.ansible/cp.
    # The module leaves all three alone (a real run needs the operator's collections, the
    # device's own temp and shared ssh connections), so the tests move them here;
    # ansible-runner passes this process's environment on to ansible-playbook.
    home = tmp_path / "ansible_home"
    monkeypatch.setenv("ANSIBLE_HOME", str(home))
    monkeypatch.setenv("ANSIBLE_REMOTE_TEMP", str(home / "tmp"))
    monkeypatch.setenv("ANSIBLE_SSH_CONTROL_PATH_DIR", str(home / "cp"))


@pytest.fixture
def marker_dir(tmp_path) -> Path:
    path = tmp_path / "device"
    path.mkdir()
    return path


def context(tmp_path: Path, mode: str, inventory: str = "inventory.yml") -> StandInContext:
    return StandInContext(mode=mode, run_dir=tmp_path / "run",
                          inventory=InventoryFile(FIXTURES / inventory))


def marker_args(marker_dir: Path, **more: Any) -> dict:
    return {"playbook": "write_marker.yml", "extravars": {"marker_dir": str(marker_dir)}, **more}


# --- real runs ------------------------------------------------------------------------------

def test_execute_writes_the_file_and_journals_every_event(tmp_path, marker_dir, capfd):
    ctx = context(tmp_path, "execute")
    result = AnsiblePlaybook().run(marker_args(marker_dir), ctx)
    assert capfd.readouterr() == ("", "")  # otpatch has its own display

    assert (result.changed, result.failed, result.unreachable) == (True, False, False)
    assert result.msg == "write_marker.yml: ok=3 changed=1 failed=0 unreachable=0 (successful)"
    assert (marker_dir / "marker.txt").read_text() == "patched\n"
    assert result.facts["stats"] == {
        "localhost": {"ok": 3, "changed": 1, "failures": 0, "unreachable": 0, "skipped": 0}}
    assert (result.facts["rc"], result.facts["status"]) == (0, "successful")

    events = ctx.events()
    assert [e["counter"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["event"] == "playbook_on_start"
    assert events[-1]["event"] == "playbook_on_stats"
    copy = [e for e in events if e["event"] == "runner_on_ok" and e.get("task") ==
            "Write the marker file"]
    assert copy == [{"phase": "run", "event": "runner_on_ok", "counter": copy[0]["counter"],
                     "play": "Write the patch marker", "task": "Write the marker file",
                     "host": "localhost", "action": "ansible.builtin.copy", "changed": True,
                     "failed": False}]
    assert all(len(json.dumps(e)) <= PAYLOAD_LIMIT and "stdout" not in e for e in events)
    # the runner's own artifacts stay in the run directory, one fresh folder per call
    assert Path(result.facts["private_data_dir"]).parent == tmp_path / "run" / "ansible"


def test_dry_run_four_step(tmp_path, marker_dir):
    module, args = AnsiblePlaybook(), freeze(marker_args(marker_dir))  # frozen, as the engine's
    dry, real = context(tmp_path, "dry_run"), context(tmp_path, "execute")

    first = module.run(args, dry)
    assert (first.changed, first.failed) == (True, False), first.msg
    assert first.msg.endswith("(successful, check mode)")
    assert not (marker_dir / "marker.txt").exists()
    assert [e["diff_of"] for e in dry.events() if e["event"] == "runner_on_file_diff"] == [
        [str(marker_dir / "marker.txt")]]

    assert module.run(args, real).changed
    assert (marker_dir / "marker.txt").exists()

    again = module.run(args, dry)
    assert (again.changed, again.failed) == (False, False), again.msg

    last = module.run(args, real)
    assert (last.changed, last.failed) == (False, False), last.msg
    assert len(list((tmp_path / "run" / "ansible").iterdir())) == 4


def test_read_back_tells_pending_from_in_effect(tmp_path, marker_dir):
    module, args, ctx = AnsiblePlaybook(), marker_args(marker_dir), context(tmp_path, "execute")

    before = module.read_back(args, ctx)
    assert before.applied is False, before.result.msg
    assert "pending" in before.result.msg
    assert not (marker_dir / "marker.txt").exists()  # a read-back changes nothing

    module.run(args, ctx)
    after = module.read_back(args, ctx)
    assert after.applied is True, after.result.msg
    assert (after.result.failed, after.result.changed) == (False, False)
    assert {e["phase"] for e in ctx.events()} == {"read_back", "run"}


def test_read_back_cannot_tell_when_the_device_is_unreachable(tmp_path, marker_dir):
    ctx = context(tmp_path, "execute", inventory="unreachable.yml")
    back = AnsiblePlaybook().read_back(marker_args(marker_dir), ctx)
    assert back.applied is None
    assert back.result.unreachable and "plc-gw unreachable" in back.result.msg


def test_unreachable_host_is_its_own_outcome(tmp_path, marker_dir):
    ctx = context(tmp_path, "execute", inventory="unreachable.yml")
    result = AnsiblePlaybook().run(marker_args(marker_dir), ctx)
    assert (result.unreachable, result.failed, result.changed) == (True, True, False)
    assert "unreachable=1" in result.msg and "Connection refused" in result.msg
    assert any(e.get("unreachable") for e in ctx.events())


def test_failing_task_fails_the_step_and_says_which(tmp_path):
    ctx = context(tmp_path, "execute")
    result = AnsiblePlaybook().run({"playbook": "refuse.yml"}, ctx)
    assert (result.failed, result.changed, result.unreachable) == (True, False, False)
    assert result.msg == ("refuse.yml: ok=0 changed=0 failed=1 unreachable=0 (failed): task "
                          "'Check the firmware image' on localhost: firmware image hash mismatch")
    assert result.facts["rc"] != 0
    assert [e["msg"] for e in ctx.events() if e.get("failed")] == ["firmware image hash mismatch"]


def test_timeout_stops_the_run_and_its_task(tmp_path):
    ctx, pid_file = context(tmp_path, "execute"), tmp_path / "soak.pid"
    # 8 s: ansible-playbook starts and reaches the task on a loaded CI machine, still well
    # inside the task's 20 s soak
    args = {"playbook": "slow.yml", "timeout": "8s", "extravars": {"pid_file": str(pid_file)}}
    result = AnsiblePlaybook().run(args, ctx)
    assert result.failed and result.facts["status"] == "timeout"
    assert result.msg.endswith("(timeout): timed out after 8s")
    assert pid_file.exists(), "the task never started: nothing to stop"
    # the task's own process is stopped too, not left running as an orphan
    assert process_gone(int(pid_file.read_text()), within_s=5)


def test_signal_handlers_are_left_as_they_were(tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    AnsiblePlaybook().run({"playbook": "refuse.yml"}, context(tmp_path, "execute"))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def process_gone(pid: int, within_s: float) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_missing_playbook_fails_clearly_without_running(tmp_path):
    ctx = context(tmp_path, "execute")
    result = AnsiblePlaybook().run({"playbook": "no_such_playbook.yml"}, ctx)
    assert result.failed and not result.changed
    missing = FIXTURES / "no_such_playbook.yml"
    assert result.msg == f"no_such_playbook.yml: playbook not found: {missing}"
    assert ctx.records == []
    assert not (tmp_path / "run").exists()


# --- data: argument schema, check-mode table, environment ----------------------------------

def test_args_schema_is_valid_2020_12():
    Draft202012Validator.check_schema(AnsiblePlaybook.args_schema)


@pytest.mark.parametrize("args, error", [
    ({"playbook": "site.yml"}, None),
    ({"playbook": "site.yml", "limit": "plc-*", "tags": ["patch"], "extravars": {"a": 1},
      "check": True, "timeout": "10m"}, None),
    ({"playbook": "site.yml", "timeout": 90}, None),
    ({"playbook": "site.yml", "become": True}, "Additional properties are not allowed"),
    ({}, "'playbook' is a required property"),
    ({"playbook": "site.yml", "tags": "patch"}, "is not of type 'array'"),
    ({"playbook": "site.yml", "check": "yes"}, "is not of type 'boolean'"),
    ({"playbook": "site.yml", "extravars": ["a"]}, "is not of type 'object'"),
    ({"playbook": "site.yml", "timeout": "soon"}, "is not valid under any of the given schemas"),
], ids=["minimal", "every-arg", "timeout-seconds", "unknown-key", "no-playbook",
        "tags-not-list", "check-not-bool", "extravars-not-mapping", "bad-duration"])
def test_args_schema(args, error):
    validator = Draft202012Validator(AnsiblePlaybook.args_schema)
    errors = [e.message for e in validator.iter_errors(args)]
    if error is None:
        assert errors == []
    else:
        assert any(error in m for m in errors), errors


@pytest.mark.parametrize("check, dry_run, expected", [
    (None, True, True), (True, True, True), (False, True, False),
    (None, False, False), (True, False, True), (False, False, False),
], ids=["dry-default", "dry-check", "dry-check-false", "exec-default", "exec-check",
        "exec-check-false"])
def test_check_mode_table(check, dry_run, expected):
    args = {"playbook": "site.yml"} if check is None else {"playbook": "site.yml", "check": check}
    assert runs_in_check_mode(args, dry_run) is expected


@pytest.mark.parametrize("environ, host_key_checking, lc_all", [
    ({"LANG": "C.UTF-8"}, "True", None),
    ({"LANG": "en_US.utf8", "ANSIBLE_HOST_KEY_CHECKING": "False"}, None, None),
    ({"LC_ALL": "C", "LANG": "en_US.UTF-8"}, "True", "C.UTF-8"),
    ({}, "True", "C.UTF-8"),
], ids=["utf8", "operator-chose-hkc", "lc-all-c", "no-locale"])
def test_environment(tmp_path, environ, host_key_checking, lc_all):
    env = ansible_envvars(tmp_path, environ, bin_dir=tmp_path)
    assert env.get("ANSIBLE_HOST_KEY_CHECKING") == host_key_checking  # None: the operator's
    assert env.get("LC_ALL") == lc_all
    assert env["ANSIBLE_LOCAL_TEMP"] == str(tmp_path / "tmp")
    assert env["ANSIBLE_NOCOLOR"] == "1"


@pytest.mark.parametrize("name, kept", [
    ("PATH", True), ("HOME", True), ("LANG", True), ("PYTHONPATH", True),
    ("ANSIBLE_HOST_KEY_CHECKING", True), ("ANSIBLE_PRIVATE_KEY_FILE", True),
    ("SSH_AUTH_SOCK", True), ("KEYBOARD", True),
    ("EWS_LOGIN", False),  # named by the inventory as a password_env
    ("OTPATCH_LAB_MGUARD_PASSWORD", False), ("GITHUB_TOKEN", False), ("aws_secret", False),
    ("Vendor_Api_Key", False), ("ANSIBLE_GALAXY_TOKEN", False),
])
def test_scrubbed_environment(name, kept):
    assert (name in scrubbed({name: "x"}, {"EWS_LOGIN"})) is kept


def test_import_does_not_load_ansible_runner():
    code = ("import sys, otpatch.modules.ansible.playbook; "
            "sys.exit('ansible_runner' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
