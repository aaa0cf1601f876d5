"""Crash test: a real child process is SIGKILLed at each journal boundary in turn (before
and after every commit); `otpatch resume` must end in the same terminal state as an
uninterrupted run, the journal must verify, and no device-changing action may run twice
without a read-back between."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FIXTURES, otpatch_child, run_json

CHANGE = str(FIXTURES / "engine" / "change-and-verify.yml")
STAGED = str(FIXTURES / "engine" / "staged-change.yml")  # `--stage lab`: staging skipped
SCENARIOS = {"completes": {}, "rolls back": {"verify_ok": "no"},
             "a lab stage run": {"stage": "lab"},
             "a lab stage run rolls back": {"stage": "lab", "verify_ok": "no"}}
MAX_COMMITS = 40  # bounds the loop; these runs commit six or seven times
# run_started, each device step's intent and result, run_ended: set_fact, assert and the
# transitions join the next commit (group commit of replayable work), so a kill before a
# commit also loses them, and resume must redo them.
MIN_BOUNDARIES = 12


def run_args(device: Path, params: dict) -> list[str]:
    """The run of a scenario: change-and-verify.yml, or staged-change.yml as a stage run."""
    params = dict(params)
    stage = params.pop("stage", None)
    extra = [f"device={device}", *(f"{k}={v}" for k, v in params.items())]
    head = ["run", STAGED, "--stage", stage] if stage else ["run", CHANGE]
    return [*head, "--dry-run", "--json", *[a for e in extra for a in ("-e", e)]]


def uninterrupted(tmp_path: Path, params: dict) -> tuple[dict, dict]:
    device = tmp_path / "reference" / "plc.json"
    device.parent.mkdir()
    done = otpatch_child(tmp_path / "reference-home", *run_args(device, params))
    return run_json(done), json.loads(device.read_text())


def ops(device: Path) -> list[str]:
    log = device.with_suffix(".ops")
    return log.read_text().split("\n")[:-1] if log.exists() else []


def assert_no_blind_redo(lines: list[str]) -> None:
    """The same action (key=value) never applies twice without a read-back between."""
    pending: set[str] = set()
    for line in lines:
        op, action = line.split()
        if op == "apply" and action in pending:
            pytest.fail(f"{action} applied twice without a read-back between: {lines}")
        if op == "apply":
            pending.add(action)
        else:
            pending.discard(action)


def boundaries() -> list[tuple[str, int]]:
    return [(when, n) for n in range(1, MAX_COMMITS) for when in ("before", "after")]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=list(SCENARIOS))
def test_kill_at_every_journal_boundary_then_resume(tmp_path, scenario):
    params = SCENARIOS[scenario]
    reference, reference_device = uninterrupted(tmp_path, params)
    if "stage" in params:  # the staging states were passed over, before and after
        assert [v["state"] for v in reference["path"] if v["event"] == "skip"] == (
            ["staging_notice"] + (["staging_record"] if reference["status"] == "completed"
                                  else []))
    killed = 0
    for when, n in boundaries():
        case = tmp_path / f"{when}-{n}"
        case.mkdir()
        device, home = case / "plc.json", case / "home"
        first = otpatch_child(home, *run_args(device, params), OTPATCH_FAULT_KILL=f"{when}:{n}")
        if first.returncode != -9:  # the run has fewer commits than n: every boundary done
            assert run_json(first)["status"] == reference["status"]
            break
        killed += 1
        listed = run_json(otpatch_child(home, "status", "--json"))["runs"]
        if not listed:  # killed before run_started was committed: nothing ran, nothing to resume
            assert not device.exists() or ops(device) == []
            continue
        run_id = listed[0]["run_id"]
        if listed[0]["status"] == reference["status"]:  # killed after its last commit
            doc = listed[0]
        else:
            resumed = otpatch_child(home, "resume", run_id, "--json")
            doc = run_json(resumed)
            assert doc["status"] == reference["status"], (when, n, resumed.stderr)
        assert [v["state"] for v in doc["path"]] == [v["state"] for v in reference["path"]]
        assert json.loads(device.read_text()) == reference_device, (when, n)
        assert_no_blind_redo(ops(device))
        verify = otpatch_child(home, "journal", "verify")
        assert verify.returncode == 0, (when, n, verify.stderr)
    else:
        pytest.fail(f"the run never finished within {MAX_COMMITS} commits")
    assert killed >= MIN_BOUNDARIES, f"only {killed} boundaries were exercised"


def test_reverified_step_is_marked_in_the_journal(tmp_path):
    """Killed after the device applied `mode` but before its result was committed: resume
    reads the device back, records the result as re-verified, and does not apply again."""
    device, home = tmp_path / "plc.json", tmp_path / "home"
    # commits: 1 run_started, 2 the intent of `set mode` (with prepare's transition and its
    # set_fact, which need no commit of their own), 3 its result
    first = otpatch_child(home, *run_args(device, {}), OTPATCH_FAULT_KILL="before:3")
    assert first.returncode == -9
    assert ops(device) == ["apply mode=manual"]
    run_id = run_json(otpatch_child(home, "status", "--json"))["runs"][0]["run_id"]
    resumed = otpatch_child(home, "resume", run_id, "--json")
    assert run_json(resumed)["status"] == "completed"
    assert ops(device) == ["apply mode=manual", "read_back mode=manual", "apply firmware=v2"]
    status = otpatch_child(home, "status", run_id)
    assert "completed" in status.stdout


@pytest.mark.slow
def test_killed_mid_firmware_transfer_resumes_by_reading_the_plc_back(tmp_path, lab):
    """The real M580 module against the simulator: killed after the transfer reached the CPU
    but before its result was committed, the resumed run reads the CPU back (the target
    version is staged or running), records that, and never transfers twice."""
    from otpatch.engine.journal import Journal

    m580 = str(FIXTURES.parent.parent / "playbooks" / "m580-firmware-update.yml")
    for n in range(4, 20):  # find the commit of the lab transfer's result
        home = tmp_path / f"kill-before-{n}"
        killed = otpatch_child(home, "run", m580, "-i", str(lab.inventory), "--dry-run",
                               OTPATCH_FAULT_KILL=f"before:{n}")
        assert killed.returncode == -9, killed.stderr
        with Journal.open(home, create=False) as journal:
            last = journal.entries()[-1]
        if last.event_type == "step_intent" and last.payload["module"] == "m580.firmware_transfer":
            break
    else:
        pytest.fail("never killed between the transfer's intent and its result")
    run_id = last.run_id
    resumed = run_json(otpatch_child(home, "resume", run_id, "--json"))
    assert resumed["status"] == "completed", resumed["message"]
    with Journal.open(home, create=False) as journal:
        entries = journal.entries(run_id)
        assert journal.verify().ok
    read_backs = [e for e in entries if e.event_type == "read_back"]
    assert [(e.payload["module"], e.payload["applied"]) for e in read_backs] == [
        ("m580.firmware_transfer", True)]
    lab_transfers = [e for e in entries if e.event_type == "step_intent"
                     and e.payload["module"] == "m580.firmware_transfer"
                     and e.payload["state"] == "lab_transfer"]
    assert len(lab_transfers) == 1  # the intent before the kill; no second transfer
    reverified = [e for e in entries if e.event_type == "step_result" and e.payload.get("reverified")]
    assert [e.payload["state"] for e in reverified] == ["lab_transfer"]
