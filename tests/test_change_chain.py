"""A change as a chain of separate execute runs (issue 11): a lab run, a staging run, then a
production run whose sign-off approves their states by record hash. The evidence rules
are tested on tests/fixtures/engine/chain.yml (its steps only record facts, so each run is
quick) against a copy of the lab inventory whose site register is signed; every refusal
pauses the production run at its gate (exit 3) with the reason, and the run stays
resumable: `resume --evidence` adds the right evidence and it goes on."""
from __future__ import annotations

import time
from pathlib import Path

from conftest import FIXTURES, otpatch_child, run_json

CHAIN = str(FIXTURES / "engine" / "chain.yml")
OPERATOR = "Chen Wei"


def run(home: Path, inventory: Path, stage: str, *extra: str, playbook: str = CHAIN,
        mode: str = "--execute"):
    return otpatch_child(home, "run", playbook, "-i", str(inventory), mode, "--stage", stage,
                         "--operator", OPERATOR, "--json", *extra)


def record_of(home: Path, run_id: str) -> str:
    shown = run_json(otpatch_child(home, "status", run_id, "--json"))
    assert shown["record_hash"], shown
    return shown["record_hash"]


def ended(home: Path, inventory: Path, stage: str, *extra: str, **kw) -> str:
    """A stage run that completes; its record hash."""
    done = run(home, inventory, stage, *extra, **kw)
    assert done.returncode == 0, done.stderr
    return record_of(home, run_json(done)["run_id"])


def paused(home: Path, inventory: Path, *evidence: str, playbook: str = CHAIN):
    done = run(home, inventory, "production",
               *[a for r in evidence for a in ("--evidence", r)], playbook=playbook)
    assert done.returncode == 3, done.stderr
    doc = run_json(done)
    assert doc["state"] == "staging_test"  # the gate refused: it waits before it
    return doc["run_id"], doc["message"]


def resume(home: Path, run_id: str, *evidence: str):
    return otpatch_child(home, "resume", run_id, "--operator", OPERATOR, "--json",
                         *[a for r in evidence for a in ("--evidence", r)])


NO_APPROVAL = "awaiting sign-off: process_owner missing"


def test_lab_and_staging_records_open_the_way_to_the_approval(home, signed_lab):
    lab = ended(home, signed_lab, "lab")
    staging = ended(home, signed_lab, "staging")
    run_id, message = paused(home, signed_lab, lab, staging)
    assert NO_APPROVAL in message, message  # only the signatures are missing now
    listed = otpatch_child(home, "approvals", run_id)
    assert listed.returncode == 0 and "process_owner missing" in listed.stdout


def test_a_production_run_without_evidence_waits_for_it_and_resume_adds_it(home, signed_lab):
    run_id, message = paused(home, signed_lab)
    assert ("evidence state lab_test (lab) was not completed in this run: name the run "
            "that completed it (--evidence RECORD)") in message
    assert "evidence state staging_test (staging)" in message
    lab, staging = ended(home, signed_lab, "lab"), ended(home, signed_lab, "staging")
    again = resume(home, run_id, lab, staging)
    assert again.returncode == 3 and NO_APPROVAL in run_json(again)["message"]


def test_a_dry_run_is_a_rehearsal_never_evidence(home, signed_lab, lab):
    rehearsed = run(home, lab.inventory, "lab", mode="--dry-run")
    assert rehearsed.returncode == 0, rehearsed.stderr
    record = record_of(home, run_json(rehearsed)["run_id"])
    staging = ended(home, signed_lab, "staging")
    _, message = paused(home, signed_lab, record, staging)
    assert "it was a dry run: a rehearsal against simulators, never evidence" in message


def test_evidence_from_a_device_the_register_does_not_list_is_refused(home, site_register):
    before = site_register.copy()
    site_register.sign(before)
    lab = ended(home, before, "lab")
    staging = ended(home, before, "staging")
    after = site_register.folder / "relabelled.yml"  # the lab PLC replaced: a new serial
    after.write_text(before.read_text().replace('"SIM-M580-0001"', '"SIM-M580-0099"'))
    site_register.sign(after)
    _, message = paused(home, after, lab, staging)
    assert ("device lab-plc-1 (serial SIM-M580-0001) is not in the site register"
            in message), message


def test_evidence_older_than_the_limit_is_refused(home, site_register, tmp_path):
    inventory = site_register.copy()
    site_register.sign(inventory)
    brief = tmp_path / "brief.yml"
    brief.write_text(Path(CHAIN).read_text().replace("evidence_age: 1h", "evidence_age: 1s"))
    lab = ended(home, inventory, "lab", playbook=str(brief))
    staging = ended(home, inventory, "staging", playbook=str(brief))
    time.sleep(1.2)
    _, message = paused(home, inventory, lab, staging, playbook=str(brief))
    assert "older than the 1s evidence age limit" in message, message


def test_a_run_that_did_not_complete_the_state_is_no_evidence(home, signed_lab):
    failed = run(home, signed_lab, "lab", "-e", "evidence_ok=no")
    assert failed.returncode != 0
    record = record_of(home, run_json(failed)["run_id"])
    staging = ended(home, signed_lab, "staging")
    _, message = paused(home, signed_lab, record, staging)
    assert f"evidence run {run_json(failed)['run_id']} did not complete lab_test" in message


def test_an_unknown_record_is_named(home, signed_lab):
    unknown = "sha256:" + "ab" * 32
    _, message = paused(home, signed_lab, unknown)
    assert (f"evidence run {unknown}: not found in this journal or among imported runs"
            in message), message


def test_evidence_of_another_playbook_is_refused(home, signed_lab, tmp_path):
    other = tmp_path / "other.yml"
    other.write_text(Path(CHAIN).read_text().replace("version: 1.0.0", "version: 1.0.1"))
    lab = ended(home, signed_lab, "lab", playbook=str(other))
    staging = ended(home, signed_lab, "staging")
    _, message = paused(home, signed_lab, lab, staging)
    assert "it ran chain 1.0.1 (" in message and "not this playbook (1.0.0" in message
