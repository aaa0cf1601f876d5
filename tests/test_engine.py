"""Rehearsals: a playbook plus scripted behaviour gives an expected state path and status."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from otpatch.engine import runs
from otpatch.engine.display import PlainDisplay
from otpatch.modules.contract.errors import InputError
from otpatch.engine.journal import Journal
from otpatch.engine.record import RunStatus

from conftest import FIXTURES, ROOT

CHANGE = str(FIXTURES / "engine" / "change-and-verify.yml")
READINESS = str(ROOT / "playbooks" / "patch-readiness.yml")
LAB = str(ROOT / "inventory" / "lab.yml")
GATED = str(FIXTURES / "engine" / "gated.yml")


def dry_run(home: Path, playbook: str, inventory: str | None = None, **params: str):
    out = io.StringIO()
    progress = runs.start(playbook, inventory, "dry_run", params, home, PlainDisplay(out))
    return progress, out.getvalue()


def states_of(progress) -> list[str]:
    return [visit.state for visit in progress.path]


def device_values(path: Path) -> dict:
    return json.loads(path.read_text())


REHEARSALS = [
    # id, params, final status, state path, device values after
    ("verified change completes", {}, "completed",
     ["prepare", "change", "verify", "completed"], {"mode": "manual", "firmware": "v2"}),
    ("failed verification rolls back", {"verify_ok": "no"}, "rolled_back",
     ["prepare", "change", "verify", "restore", "rolled_back"],
     {"mode": "manual", "firmware": "v1"}),
    ("unverified rollback halts for a human", {"verify_ok": "no", "restore_ok": "no"},
     "halted", ["prepare", "change", "verify", "restore"], {"mode": "manual", "firmware": "v1"}),
]


@pytest.mark.parametrize("params,status,path,values", [r[1:] for r in REHEARSALS],
                         ids=[r[0] for r in REHEARSALS])
def test_rehearsal(home, tmp_path, params, status, path, values):
    device = tmp_path / "plc.json"
    progress, text = dry_run(home, CHANGE, device=str(device), **params)
    assert progress.status.value == status, progress.message
    assert states_of(progress) == path
    assert device_values(device) == values
    assert f"run {progress.run_id} {status}" in text


def test_low_risk_defers_before_anything_is_touched(home, lab):
    progress, text = dry_run(home, READINESS, str(lab.inventory),
                             cvss_vector="CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N")
    assert progress.status is RunStatus.ABORTED
    assert states_of(progress) == ["assess_risk", "aborted"]
    assert "defer to the next planned cycle" in text


def test_halted_run_says_a_human_must_act(home, tmp_path):
    progress, _ = dry_run(home, CHANGE, device=str(tmp_path / "d.json"), verify_ok="no",
                          restore_ok="no")
    assert "a human must restore it" in progress.message
    assert "restore not verified" in progress.message


def test_dry_run_advances_simulated_time_by_expected_durations(home, tmp_path):
    progress, text = dry_run(home, CHANGE, device=str(tmp_path / "d.json"), verify_ok="no")
    change = next(v for v in progress.path if v.state == "change")
    restore = next(v for v in progress.path if v.state == "restore")
    assert change.left_at - change.entered_at == 8 * 60
    assert restore.left_at - restore.entered_at == 6 * 60
    assert "[sim 00:14:00]" in text  # 8 min change + 6 min restore, on the simulated clock


def test_readiness_playbook_dry_run_completes_with_simulated_soak(home, lab):
    progress, text = dry_run(home, READINESS, str(lab.inventory))
    assert progress.status is RunStatus.COMPLETED, progress.message
    assert states_of(progress) == ["assess_risk", "lab_soak", "production_readiness",
                                   "completed"]
    assert progress.elapsed >= 4 * 3600
    risk = progress.facts["risk"]
    assert (risk["base"], risk["due_category"]) == (9.8, "emergency_72h")
    assert "simulation sign-off for process_owner + ot_security_officer" in text
    assert "confirmed by simulation (operator, simulated): All PID loops are stable" in text


def test_every_device_step_has_intent_before_result_and_chain_verifies(home, tmp_path):
    """A device change's intent is on disk before the action; a step that changes no device
    has only its result (without one, a resume simply runs it again)."""
    progress, _ = dry_run(home, CHANGE, device=str(tmp_path / "d.json"))
    with Journal.open(home, create=False) as journal:
        kinds = [e.event_type for e in journal.entries(progress.run_id)]
        assert journal.verify().ok
    steps = [k for k in kinds if k in ("step_intent", "step_result")]
    assert steps == ["step_result", "step_intent", "step_result", "step_intent", "step_result",
                     "step_result"]
    assert kinds[0] == "run_started" and kinds[-1] == "run_ended"
    assert kinds.index("checkpoint") < kinds.index("step_intent")


def test_checkpoint_records_as_found_facts(home, tmp_path):
    progress, _ = dry_run(home, CHANGE, device=str(tmp_path / "d.json"))
    assert "as_found" in progress.checkpoints


def test_execute_mode_refuses_signoff_gate_plainly(home):
    progress = runs.start(GATED, None, "execute", {}, home, PlainDisplay(io.StringIO()))
    assert progress.status is RunStatus.AWAITING
    assert progress.state == "prepare"
    assert "the run's operator is not named" in progress.message


def test_dry_run_takes_simulation_signoff_but_not_an_unverified_hash(home):
    progress, text = dry_run(home, GATED)
    assert progress.status is RunStatus.AWAITING
    assert progress.state == "production_gate"
    assert "simulation sign-off for process_owner + ot_security_officer" in text
    assert "firmware: no verified hash recorded in this run" in progress.message


def test_resume_of_awaiting_run_retries_the_gate(home):
    out = io.StringIO()
    progress = runs.start(GATED, None, "execute", {}, home, PlainDisplay(out))
    assert progress.status is RunStatus.AWAITING
    again = runs.resume(progress.run_id, home, PlainDisplay(out))
    assert again.status is RunStatus.AWAITING
    with Journal.open(home, create=False) as journal:
        entries = journal.entries(progress.run_id)
    kinds = [e.event_type for e in entries]
    assert kinds.count("run_paused") == 2 and "run_resumed" in kinds
    refusals = [e for e in entries if e.event_type == "requirement" and e.result == "refused"]
    assert len(refusals) == 2


def test_resume_of_ended_run_is_refused(home, tmp_path):
    progress, _ = dry_run(home, CHANGE, device=str(tmp_path / "d.json"))
    with pytest.raises(InputError, match="already ended"):
        runs.resume(progress.run_id, home, PlainDisplay(io.StringIO()))


def test_dry_run_refuses_targets_not_marked_simulator(home, tmp_path):
    inventory = tmp_path / "plant.yml"
    inventory.write_text(Path(LAB).read_text().replace("simulator: true", "simulator: false"))
    with pytest.raises(InputError, match="dry run refused: prod-plc-1 is not marked"):
        dry_run(home, READINESS, str(inventory))
    assert not (home / "journal.sqlite").exists() or not Journal.open(home).runs()


def test_dry_run_refuses_a_simulator_host_nobody_answers_for(home, tmp_path):
    """Marked simulator in the inventory, but nothing answers as one: refused, nothing run."""
    with pytest.raises(InputError, match="prod-plc-1 does not answer as a simulator"):
        dry_run(home, READINESS, LAB)


def test_bad_argument_after_rendering_fails_the_step_even_in_dry_run(home, tmp_path):
    playbook = tmp_path / "bad-arg.yml"
    playbook.write_text(
        "apiVersion: otpatch/v1\nkind: Playbook\nmetadata: {name: bad-arg, version: 1.0.0}\n"
        "params:\n  soak: {type: string, default: forever}\ninitial: soak\nstates:\n"
        "  soak:\n    do:\n      - core.wait: {duration: '{{ params.soak }}'}\n"
        "    next: completed\n")
    progress, text = dry_run(home, str(playbook))
    assert progress.status is RunStatus.ABORTED
    assert "bad arguments: duration" in text


def test_unknown_param_on_command_line_is_bad_input(home, tmp_path):
    with pytest.raises(InputError, match="-e colour: the playbook declares no such param"):
        dry_run(home, CHANGE, device="x", colour="red")
    assert not (home / "journal.sqlite").exists()
