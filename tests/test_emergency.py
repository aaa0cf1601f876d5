"""The emergency path of a sign-off gate (issue 11 item 7): above the effective score 9.0
(the 72-hour rule) one approver opens the gate now and the second role signs within the
stated time afterwards; the record says whether it was retrospectively approved. Real
execute runs of tests/fixtures/engine/emergency*.yml through the CLI in child processes,
signed with the lab approvers' keys; `standing` judged alone with constructed times."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, otpatch_child, run_json

ENGINE = FIXTURES / "engine"
EMERGENCY = str(ENGINE / "emergency.yml")  # emergency: {within: 24h, score_above: 9.0}
BRIEF = str(ENGINE / "emergency-brief.yml")  # the same, within 1s
UNASSESSED = str(ENGINE / "emergency-unassessed.yml")  # no risk.assess step
UNDECLARED = str(ENGINE / "assessed-no-emergency.yml")  # 9.8, but no emergency path
BELOW = "CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # effective 8.8
GATE = "production_gate"
OPERATOR = "Chen Wei"
BOTH_MISSING = ("awaiting sign-off: process_owner missing (may sign: Alice Chen, Dana Okafor); "
                "ot_security_officer missing (may sign: Bernd Maier)")
SECOND_MISSING = "awaiting sign-off: ot_security_officer missing (may sign: Bernd Maier)"
AVAILABLE = ("emergency path available (effective score 9.8 > 9.0): one valid approval "
             "(process_owner or ot_security_officer) passes the gate now, the other role(s) "
             "must sign within 24h")


@pytest.fixture
def lab(signed_lab) -> str:
    """Execute runs need the site register signed: a copy of inventory/lab.yml, signed."""
    return str(signed_lab)


@pytest.fixture
def keys(site_register) -> dict[str, Path]:
    """Alice Chen's and Bernd Maier's private keys, copied 0600 (git keeps no file modes)."""
    return site_register.keys


def start(home: Path, playbook: str, lab: str, *extra: str, operator: str = OPERATOR) -> str:
    done = otpatch_child(home, "run", playbook, "-i", lab, "--execute", "--operator", operator,
                         *extra)
    assert done.returncode == 3, done.stdout + done.stderr
    return run_json(otpatch_child(home, "status", "--json"))["runs"][-1]["run_id"]


def approve(home: Path, run_id: str, role: str, key: Path):
    return otpatch_child(home, "approve", run_id, "--role", role, "--key", str(key),
                         "--reason", f"{role} reviewed the advisory")


def resume(home: Path, run_id: str, operator: str = OPERATOR):
    return otpatch_child(home, "resume", run_id, "--operator", operator, "--json")


def journal_events(home: Path, run_id: str, kind: str) -> list:
    from otpatch.engine.journal import Journal

    with Journal.open(home, create=False) as journal:
        return [e.event() for e in journal.entries(run_id) if e.event_type == kind]


def opened(home: Path, run_id: str):
    (event,) = journal_events(home, run_id, "emergency_opened")
    return event


def emergency_block(home: Path, run_id: str, command: str = "status") -> list[str]:
    """The EMERGENCY block `status RUN_ID` (or `approvals RUN_ID`) prints: its first line
    and the indented lines under it."""
    shown = otpatch_child(home, command, run_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("EMERGENCY change"))
    block = [lines[first]]
    for line in lines[first + 1:]:
        if not line.startswith("  "):
            break
        block.append(line)
    return block


def opened_by_alice(home: Path, playbook: str, lab: str, keys: dict) -> str:
    """A run whose gate Alice Chen alone opened as an emergency; it ran to completion."""
    run_id = start(home, playbook, lab)
    assert approve(home, run_id, "process_owner", keys["alice-chen"]).returncode == 0
    done = resume(home, run_id)
    assert done.returncode == 0, done.stderr
    assert run_json(done)["status"] == "completed"
    return run_id


def wait_past(due: str) -> None:
    left = (datetime.fromisoformat(due) - datetime.now(timezone.utc)).total_seconds()
    time.sleep(max(0.0, left) + 1.1)  # due is whole seconds; signed_at too


# -- the gate opens on one signature -----------------------------------------------------------

def test_one_signature_above_the_threshold_opens_the_gate_and_the_record_awaits_the_second(
        home, lab, keys):
    run_id = start(home, EMERGENCY, lab)
    waiting = run_json(otpatch_child(home, "status", run_id, "--json"))
    assert waiting["message"] == f"{GATE}: {BOTH_MISSING}; {AVAILABLE}"
    signed = approve(home, run_id, "process_owner", keys["alice-chen"])
    assert signed.returncode == 0, signed.stderr
    assert (f"  ready on the emergency path (effective score 9.8 > 9.0: process_owner signed "
            f"by Alice Chen; ot_security_officer must then sign within 24h): otpatch resume "
            f"{run_id}") in signed.stdout.splitlines()
    done = resume(home, run_id)
    assert done.returncode == 0 and run_json(done)["status"] == "completed"
    event = opened(home, run_id)
    assert (event.score, event.threshold, event.within) == (9.8, 9.0, 86400.0)
    assert [(s["role"], s["person"]) for s in event.signed] == [("process_owner", "Alice Chen")]
    assert event.due_roles == ["ot_security_officer"]
    assert datetime.fromisoformat(event.due) - datetime.fromisoformat(event.opened_at) == \
        timedelta(hours=24)
    assert event.binding["gate"] == GATE and event.binding["evidence"] is not None
    verdict = [e for e in journal_events(home, run_id, "requirement") if e.passed][-1]
    assert verdict.detail == (f"EMERGENCY (effective score 9.8 > 9.0): process_owner signed by "
                              f"Alice Chen; ot_security_officer must sign by {event.due} "
                              "(within 24h)")
    assert emergency_block(home, run_id) == [
        f"EMERGENCY change at {GATE}: awaiting retrospective approval until {event.due}",
        f"  opened {event.opened_at} on effective score 9.8 > 9.0; the other role(s) due "
        f"within 24h, by {event.due}",
        f"  process_owner signed by Alice Chen ({event.signed[0]['signed_at']}): opened the gate"]
    doc = run_json(otpatch_child(home, "status", run_id, "--json"))
    assert doc["status"] == "completed"
    assert [(e["state"], e["approved"]) for e in doc["emergencies"]] == [
        (f"awaiting retrospective approval until {event.due}", None)]
    assert otpatch_child(home, "journal", "verify").returncode == 0


def test_the_second_signature_in_time_offline_approves_it_retrospectively(home, lab, keys,
                                                                          tmp_path):
    run_id = opened_by_alice(home, EMERGENCY, lab, keys)
    request, signed = tmp_path / "request.json", tmp_path / "signed.json"
    asked = otpatch_child(home, "approve", run_id, "--request-out", str(request))
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.startswith(f"{request}: the request for {GATE} of run {run_id} "
                                   "(roles ot_security_officer, retrospectively, for the "
                                   "emergency change); ")
    offline = otpatch_child(tmp_path / "bernd-home", "approve", "--request", str(request),
                            "--role", "ot_security_officer", "--key", str(keys["bernd-maier"]),
                            "--reason", "firewall rules reviewed afterwards", "-o", str(signed))
    assert offline.returncode == 0, offline.stderr
    added = otpatch_child(home, "approvals", "add", str(signed))
    assert added.returncode == 0, added.stderr
    assert f"EMERGENCY change at {GATE}: retrospectively approved" in added.stdout.splitlines()
    block = emergency_block(home, run_id)
    assert block[0] == f"EMERGENCY change at {GATE}: retrospectively approved"
    bernd = journal_events(home, run_id, "approval_added")[-1].approval
    assert f"  ot_security_officer signed by Bernd Maier ({bernd['signed_at']}): counts" in block
    listed = run_json(otpatch_child(home, "approvals", run_id, "--json"))
    (standing,) = listed["emergencies"]
    assert standing["approved"] is True and standing["state"] == "retrospectively approved"
    assert [r["person"] for r in standing["retrospective"]] == ["Bernd Maier"]
    again = approve(home, run_id, "ot_security_officer", keys["bernd-maier"])
    assert again.returncode == 2
    assert again.stderr == (f"otpatch: run {run_id} already ended (completed): nothing to "
                            "approve\n")


def test_approving_on_the_run_host_says_it_is_retrospective(home, lab, keys):
    run_id = opened_by_alice(home, EMERGENCY, lab, keys)
    done = approve(home, run_id, "ot_security_officer", keys["bernd-maier"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(
        f"approved: run {run_id} at {GATE} as ot_security_officer (retrospectively, for the "
        "emergency change), until ")
    assert emergency_block(home, run_id, "approvals")[0] == \
        f"EMERGENCY change at {GATE}: retrospectively approved"


# -- the second signature never came, or came late --------------------------------------------

def test_a_second_signature_that_never_came_is_recorded_as_not_approved(home, lab, keys):
    run_id = opened_by_alice(home, BRIEF, lab, keys)
    event = opened(home, run_id)
    wait_past(event.due)
    block = emergency_block(home, run_id)
    assert block[0] == (f"EMERGENCY change at {GATE}: NOT retrospectively approved: "
                        f"ot_security_officer did not sign by {event.due}")
    doc = run_json(otpatch_child(home, "status", run_id, "--json"))
    assert doc["status"] == "completed"  # the change happened: the record says it loudly
    assert doc["emergencies"][0]["approved"] is False


def test_a_late_second_signature_is_recorded_but_does_not_approve_it(home, lab, keys):
    run_id = opened_by_alice(home, BRIEF, lab, keys)
    event = opened(home, run_id)
    wait_past(event.due)
    late = approve(home, run_id, "ot_security_officer", keys["bernd-maier"])
    bernd = journal_events(home, run_id, "approval_added")[-1].approval
    assert late.returncode == 2
    assert late.stderr == (f"otpatch: approval for run {run_id} at {GATE} recorded, but it "
                           f"does not count: signed {bernd['signed_at']}, after the due time "
                           f"{event.due}: late\n")
    block = emergency_block(home, run_id)
    assert block[0] == (f"EMERGENCY change at {GATE}: NOT retrospectively approved: "
                        f"ot_security_officer did not sign by {event.due} (it came late: "
                        f"Bernd Maier signed {bernd['signed_at']})")
    assert f"  ot_security_officer signed by Bernd Maier ({bernd['signed_at']}): late, after " \
           f"{event.due}" in block


# -- refused as today ------------------------------------------------------------------------

@pytest.mark.parametrize("playbook,extra,why", [
    (EMERGENCY, ("-e", f"cvss_vector={BELOW}"),
     "emergency path not open: effective score 8.8 is not above 9.0"),
    (UNASSESSED, (), "emergency path not open: no risk.assess in this run"),
    (UNDECLARED, (), ""),
], ids=["score-not-above", "no-risk-assess", "not-declared"])
def test_one_signature_is_refused_when_the_emergency_path_is_not_open(home, lab, keys,
                                                                      playbook, extra, why):
    run_id = start(home, playbook, lab, *extra)
    assert approve(home, run_id, "process_owner", keys["alice-chen"]).returncode == 0
    refused = resume(home, run_id)
    assert refused.returncode == 3
    assert run_json(refused)["message"] == f"{GATE}: {SECOND_MISSING}" + (f"; {why}" if why
                                                                          else "")
    assert journal_events(home, run_id, "emergency_opened") == []
    assert approve(home, run_id, "ot_security_officer", keys["bernd-maier"]).returncode == 0
    done = resume(home, run_id)  # still resumable, nothing lost: dual approval passes it
    assert done.returncode == 0 and run_json(done)["emergencies"] == []
    assert "EMERGENCY" not in otpatch_child(home, "status", run_id).stdout


def test_one_person_cannot_open_the_gate_and_sign_retrospectively(home, site_register, keys):
    inventory = site_register.copy()  # Alice Chen holds both roles here
    text = inventory.read_text()
    inventory.write_text(text.replace("roles: [process_owner]\n",
                                      "roles: [process_owner, ot_security_officer]\n", 1))
    site_register.sign(inventory)
    run_id = opened_by_alice(home, EMERGENCY, str(inventory), keys)
    twice = approve(home, run_id, "ot_security_officer", keys["alice-chen"])
    says = ("Alice Chen opened the gate as an emergency: the retrospective approval needs "
            "another person")
    assert twice.returncode == 2
    assert twice.stderr == (f"otpatch: approval for run {run_id} at {GATE} recorded, but it "
                            f"does not count: {says}\n")
    event = opened(home, run_id)
    block = emergency_block(home, run_id)
    assert block[0] == f"EMERGENCY change at {GATE}: awaiting retrospective approval until " \
                       f"{event.due}"
    assert f"  does not count: Alice Chen as ot_security_officer: {says}" in block
    assert approve(home, run_id, "ot_security_officer", keys["bernd-maier"]).returncode == 0
    assert emergency_block(home, run_id)[0] == \
        f"EMERGENCY change at {GATE}: retrospectively approved"


def test_the_operator_can_neither_open_the_gate_nor_sign_retrospectively(home, lab, keys):
    own = start(home, EMERGENCY, lab, operator="Alice Chen")
    refused = approve(home, own, "process_owner", keys["alice-chen"])
    assert refused.returncode == 2
    operates = "Alice Chen operates this run: an operator cannot approve their own change"
    assert refused.stderr.endswith(f"does not count: {operates}\n")
    again = resume(home, own, operator="Alice Chen")
    assert again.returncode == 3
    assert run_json(again)["message"] == (
        f"{GATE}: awaiting sign-off: process_owner missing (may sign: Dana Okafor); refused: "
        f"Alice Chen: {operates}; ot_security_officer missing (may sign: Bernd Maier); "
        f"{AVAILABLE}")
    run_id = start(home, EMERGENCY, lab, operator="Bernd Maier")
    assert approve(home, run_id, "process_owner", keys["alice-chen"]).returncode == 0
    assert resume(home, run_id, operator="Bernd Maier").returncode == 0
    theirs = approve(home, run_id, "ot_security_officer", keys["bernd-maier"])
    assert theirs.returncode == 2
    assert theirs.stderr == (f"otpatch: approval for run {run_id} at {GATE} recorded, but it "
                             "does not count: Bernd Maier operates this run: an operator "
                             "cannot approve their own change\n")
    assert emergency_block(home, run_id)[0].startswith(
        f"EMERGENCY change at {GATE}: awaiting retrospective approval until ")


@pytest.mark.parametrize("extra,would", [
    ((), "it would apply (effective score 9.8 > 9.0)"),
    (("-e", f"cvss_vector={BELOW}"), "it would not apply: effective score 8.8 is not above 9.0"),
], ids=["above", "below"])
def test_a_dry_run_keeps_its_simulated_sign_off_and_says_whether_the_path_applies(
        home, extra, would):
    done = otpatch_child(home, "run", EMERGENCY, "-i", str(ROOT / "inventory" / "lab.yml"),
                         "--dry-run", *extra)
    assert done.returncode == 0, done.stderr
    run_id = run_json(otpatch_child(home, "status", "--json"))["runs"][-1]["run_id"]
    (verdict,) = [e for e in journal_events(home, run_id, "requirement")]
    assert verdict.simulated and verdict.detail == (
        "simulation sign-off for process_owner + ot_security_officer (not valid for "
        "production); an emergency path is declared (one role signs now, the others within "
        f"24h, when the effective score is above 9.0): {would}")
    assert journal_events(home, run_id, "emergency_opened") == []


# -- standing, judged alone ------------------------------------------------------------------

@pytest.fixture
def folded(home, lab, keys):
    """A run Alice Chen opened as an emergency, folded from its journal, and its approvers."""
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.journal import Journal
    from otpatch.engine.record import fold

    run_id = opened_by_alice(home, EMERGENCY, lab, keys)
    with Journal.open(home, create=False) as journal:
        progress = fold(run_id, journal.entries(run_id))
    return progress, load_inventory(lab).approvers


def signed_by(person: str, role: str, binding: dict, at: datetime) -> dict:
    from cryptography.hazmat.primitives import serialization

    from otpatch.engine import approvals
    from otpatch.engine.keys import SigningKey, _raw_public, public_text

    path = ROOT / "inventory" / "lab-keys" / f"{person}.key"
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = SigningKey(path, public_text(_raw_public(private)), private)
    return approvals.sign_approval(approvals.request(binding), key, role=role,
                                   reason="reviewed afterwards",
                                   expires=at + timedelta(hours=24), now=at)


def test_standing_before_and_after_the_due_time_with_no_second_signature(folded):
    from otpatch.engine.emergency_record import standing

    progress, approvers = folded
    (event,) = progress.emergencies
    due = datetime.fromisoformat(event.due)
    (before,) = standing(progress, approvers, due - timedelta(minutes=1))
    assert (before.state, before.approved) == (
        f"awaiting retrospective approval until {event.due}", None)
    (after,) = standing(progress, approvers, due + timedelta(seconds=1))
    assert (after.state, after.approved) == (
        f"NOT retrospectively approved: ot_security_officer did not sign by {event.due}", False)
    assert after.signed[0]["person"] == "Alice Chen" and after.still_due == \
        ("ot_security_officer",)


@pytest.mark.parametrize("offset,state", [
    (timedelta(hours=23), "retrospectively approved"),
    (timedelta(hours=24), "retrospectively approved"),  # at the due time: still in time
    (timedelta(hours=25), "NOT retrospectively approved: ot_security_officer did not sign by "
                          "{due} (it came late: Bernd Maier signed {signed})"),
], ids=["in-time", "at-due", "late"])
def test_standing_judges_the_second_signature_by_when_it_was_signed(folded, offset, state):
    from otpatch.engine.emergency_record import standing

    progress, approvers = folded
    (event,) = progress.emergencies
    at = datetime.fromisoformat(event.opened_at) + offset
    doc = signed_by("bernd-maier", "ot_security_officer", event.binding, at)
    later = replace(progress, approvals=(*progress.approvals, doc))
    (judged,) = standing(later, approvers, at + timedelta(days=3))
    assert judged.state == state.format(due=event.due, signed=doc["signed_at"])


def test_standing_refuses_another_binding_and_the_emergency_signer(folded):
    from otpatch.engine.emergency_record import standing

    progress, approvers = folded
    (event,) = progress.emergencies
    at = datetime.fromisoformat(event.opened_at) + timedelta(hours=1)
    other = signed_by("bernd-maier", "ot_security_officer",
                      {**event.binding, "params": {"cvss_vector": BELOW}}, at)
    people = tuple(replace(a, roles=(*a.roles, "ot_security_officer"))
                   if a.name == "Alice Chen" else a for a in approvers)
    own = signed_by("alice-chen", "ot_security_officer", event.binding, at)
    later = replace(progress, approvals=(*progress.approvals, other, own))
    (judged,) = standing(later, people, at)
    assert judged.approved is None
    assert judged.refused[0].startswith("Bernd Maier as ot_security_officer: signed over other "
                                        "params")
    assert judged.refused[1] == ("Alice Chen as ot_security_officer: Alice Chen opened the gate "
                                 "as an emergency: the retrospective approval needs another "
                                 "person")
