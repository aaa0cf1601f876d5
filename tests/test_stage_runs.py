"""Stage runs (issue 11): `otpatch run --stage S` runs only the states of stage S (and those
that touch no device and name no stage); every other state is skipped along its next edge,
its gates unevaluated, so a change becomes a chain of separate lab, staging and production
runs. Dry runs here, against the simulator lab on ephemeral ports."""
from __future__ import annotations

from pathlib import Path

from conftest import FIXTURES, otpatch_child, run_json

CHAIN = str(FIXTURES / "engine" / "chain.yml")


def _progress(home: Path, run_id: str):
    from otpatch.engine.journal import Journal
    from otpatch.engine.record import fold

    with Journal.open(home, create=False) as journal:
        return fold(run_id, journal.entries(run_id)), [e.event() for e in journal.entries(run_id)]


def _run(home: Path, inventory: Path, *extra: str):
    return otpatch_child(home, "run", CHAIN, "-i", str(inventory), "--dry-run", *extra)


def test_a_lab_stage_run_skips_every_later_state_and_evaluates_none_of_their_gates(home, lab):
    done = _run(home, lab.inventory, "--stage", "lab", "--json")
    assert done.returncode == 0, done.stderr
    run_id = run_json(done)["run_id"]
    progress, events = _progress(home, run_id)
    assert progress.status.value == "completed" and progress.config.stage == "lab"
    assert [(v.state, v.event) for v in progress.path] == [
        ("lab_test", "succeed"), ("staging_test", "skip"), ("production_gate", "skip"),
        ("change", "skip"), ("completed", None)]
    assert progress.facts["lab_tested"] == "SIM-M580-0001"
    assert "staging_tested" not in progress.facts and "approved" not in progress.facts
    assert not [e for e in events if e.kind == "requirement"]  # the sign-off gate: skipped
    assets = progress.config.assets
    assert assets["lab-plc-1"] == {"stage": "lab", "serial": "SIM-M580-0001",
                                   "part_number": "BMEP581020", "simulator": True}
    shown = _run(home, lab.inventory, "--stage", "lab")
    assert "lab stage only" in shown.stdout
    assert "state production_gate [production]: skipped (a lab stage run)" in shown.stdout


def test_a_production_rehearsal_without_evidence_says_an_execute_run_would_refuse(home, lab):
    done = _run(home, lab.inventory, "--stage", "production")
    assert done.returncode == 0, done.stderr
    assert "state lab_test [lab]: skipped (a production stage run)" in done.stdout
    assert ("simulation sign-off for process_owner + ot_security_officer (not valid for "
            "production); an execute run would refuse it: evidence state lab_test (lab) was "
            "not completed in this run: name the run that completed it (--evidence RECORD)"
            ) in done.stdout


def test_a_rehearsed_chain_finds_its_evidence_by_record_hash(home, lab):
    from otpatch.engine.journal import Journal

    records = []
    for stage in ("lab", "staging"):
        done = _run(home, lab.inventory, "--stage", stage, "--json")
        assert done.returncode == 0, done.stderr
        with Journal.open(home, create=False) as journal:
            ended = [e for e in journal.entries(run_json(done)["run_id"])
                     if e.event_type == "run_ended"]
        records.append(ended[-1].hash)
    done = _run(home, lab.inventory, "--stage", "production", "--json",
                *[a for r in records for a in ("--evidence", r)])
    assert done.returncode == 0, done.stderr
    progress, events = _progress(home, run_json(done)["run_id"])
    (gate,) = [e for e in events if e.kind == "requirement"]
    assert gate.passed and "would refuse" not in gate.detail, gate.detail
    assert progress.facts["changed"] == "SIM-M580-0003"
    assert progress.config.evidence == [f"sha256:{r}" for r in records]


def test_stage_and_evidence_arguments_are_checked_before_anything_is_journaled(home, lab):
    cases = [(("--stage", "qa"), "invalid choice: 'qa'"),
             (("--evidence", "abc"), "--evidence 'abc': not a record hash (sha256:<64 hex "
                                     "digits>, as `otpatch status RUN_ID` shows it)")]
    for extra, message in cases:
        done = _run(home, lab.inventory, *extra)
        assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (home / "journal.sqlite").exists()


def test_a_stage_the_playbook_has_no_state_of_is_refused(home, tmp_path):
    done = otpatch_child(home, "run", str(FIXTURES / "engine" / "attest.yml"), "--dry-run",
                         "--stage", "staging")
    assert done.returncode == 2
    assert "--stage staging: " in done.stderr and "has no staging states" in done.stderr


def test_skipped_states_keep_no_checkpoint_and_arm_no_rollback(home, lab):
    """The shipped M580 procedure as a lab stage run: the staging and production states it
    passes over record no as-found checkpoint and leave the active rollback as it was."""
    from conftest import ROOT

    done = otpatch_child(home, "run", str(ROOT / "playbooks" / "m580-firmware-update.yml"),
                         "-i", str(lab.inventory), "--dry-run", "--stage", "lab", "--json")
    assert done.returncode == 0, done.stderr
    progress, events = _progress(home, run_json(done)["run_id"])
    assert set(progress.checkpoints) == {"lab_as_found"}
    skips = [e for e in events if e.kind == "transition" and e.trigger == "skip"]
    assert skips and all(e.rollback in (None, "lab_restore") for e in skips)
    assert progress.facts["lab_plc"]["revision"] == "v04.30"
    assert "staging_plc" not in progress.facts  # nothing was read from the other stages
    assert set(progress.facts["plc"]) == {"risk"}  # the production CPU: only its risk score
