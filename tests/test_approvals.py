"""Signed approvals at sign-off gates (issue 11): an execute run of tests/fixtures/engine/
gated.yml against inventory/lab.yml pauses at its sign-off gate (exit 3); approvals signed
with the lab approvers' real Ed25519 keys (inventory/lab-keys) let it pass; every way an
approval can be wrong is refused with its reason, and the run stays resumable."""
from __future__ import annotations

import json
import stat
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, SiteRegister, lab_keys, otpatch_child, run_json

GATED = str(FIXTURES / "engine" / "gated.yml")
LAB = str(ROOT / "inventory" / "lab.yml")
GATE = "production_gate"
OPERATOR = "Chen Wei"
PEOPLE = ("alice-chen", "bernd-maier", "chen-wei", "dana-okafor")


@pytest.fixture(autouse=True)
def lab_signed(signed_lab, monkeypatch):
    """Execute runs need the site register signed (engine/siteregister.py): LAB is a copy
    of inventory/lab.yml whose register the lab signers signed, their keys pinned."""
    monkeypatch.setattr(sys.modules[__name__], "LAB", str(signed_lab))


@pytest.fixture
def keys(tmp_path) -> dict[str, Path]:
    """The lab approvers' private keys, copied 0600 (git keeps no file modes)."""
    return lab_keys(tmp_path / "keys", PEOPLE)


def start(home: Path, *extra: str) -> str:
    done = otpatch_child(home, "run", GATED, "-i", LAB, "--execute", *extra)
    assert done.returncode == 3, done.stderr
    return run_json(otpatch_child(home, "status", "--json"))["runs"][-1]["run_id"]


def approve(home: Path, run_id: str, role: str, key: Path, *extra: str):
    return otpatch_child(home, "approve", run_id, "--role", role, "--key", str(key),
                         "--reason", f"{role} reviewed the lab evidence", *extra)


def resume(home: Path, run_id: str):
    return otpatch_child(home, "resume", run_id, "--operator", OPERATOR, "--json")


def requirement_entries(home: Path, run_id: str) -> list:
    from otpatch.engine.journal import Journal

    with Journal.open(home, create=False) as journal:
        events = [e.event() for e in journal.entries(run_id) if e.event_type == "requirement"]
    return [e for e in events if e.requirement_kind == "signoff"]


# -- end to end ------------------------------------------------------------------------------

def test_two_roles_signed_one_on_the_run_host_one_elsewhere_pass_the_gate(home, keys, tmp_path):
    run_id = start(home, "--operator", OPERATOR)
    listed = otpatch_child(home, "approvals", run_id)
    assert "process_owner missing (may sign: Alice Chen, Dana Okafor)" in listed.stdout
    assert "ot_security_officer missing (may sign: Bernd Maier)" in listed.stdout
    done = approve(home, run_id, "process_owner", keys["alice-chen"])
    assert done.returncode == 0, done.stderr
    request, signed = tmp_path / "request.json", tmp_path / "signed.json"
    done = otpatch_child(home, "approve", run_id, "--request-out", str(request))
    assert done.returncode == 0, done.stderr
    offline = otpatch_child(tmp_path / "approver-home", "approve", "--request", str(request),
                            "--role", "ot_security_officer", "--key",
                            str(keys["bernd-maier"]), "--reason", "rules reviewed",
                            "-o", str(signed))
    assert offline.returncode == 0, offline.stderr
    assert not (tmp_path / "approver-home").exists()  # signing needs no journal
    added = otpatch_child(home, "approvals", "add", str(signed))
    assert added.returncode == 0, added.stderr
    assert f"ready: otpatch resume {run_id}" in added.stdout
    resumed = resume(home, run_id)
    doc = run_json(resumed)
    assert resumed.returncode == 3 and doc["state"] == GATE  # now at the next gate (hash)
    verdicts = requirement_entries(home, run_id)
    assert [v.passed for v in verdicts] == [False, True]
    assert "process_owner by Alice Chen" in verdicts[-1].detail
    assert "ot_security_officer by Bernd Maier" in verdicts[-1].detail
    assert otpatch_child(home, "journal", "verify").returncode == 0


def test_an_execute_run_without_a_named_operator_waits_and_says_why(home):
    run_id = start(home)
    status = otpatch_child(home, "status", run_id)
    assert "the run's operator is not named" in status.stdout


def test_a_refused_approval_is_recorded_the_gate_says_why_and_the_run_resumes_later(
        home, keys):
    run_id = start(home, "--operator", OPERATOR)
    wrong = approve(home, run_id, "ot_security_officer", keys["alice-chen"])
    assert wrong.returncode == 2
    assert "does not count: Alice Chen does not hold the role ot_security_officer" in \
        wrong.stderr
    assert approve(home, run_id, "process_owner", keys["alice-chen"]).returncode == 0
    again = resume(home, run_id)
    assert again.returncode == 3
    message = run_json(again)["message"]
    assert "ot_security_officer missing (may sign: Bernd Maier)" in message
    assert "Alice Chen does not hold the role ot_security_officer" in message
    assert approve(home, run_id, "ot_security_officer", keys["bernd-maier"]).returncode == 0
    assert run_json(resume(home, run_id))["state"] == GATE  # passed the sign-off


def test_the_operator_cannot_approve_their_own_run(home, keys):
    run_id = start(home, "--operator", "Alice Chen")
    done = approve(home, run_id, "process_owner", keys["alice-chen"])
    assert done.returncode == 2
    assert "Alice Chen operates this run" in done.stderr


def test_a_revoked_approval_no_longer_counts(home, keys):
    run_id = start(home, "--operator", OPERATOR)
    assert approve(home, run_id, "process_owner", keys["alice-chen"]).returncode == 0
    assert approve(home, run_id, "ot_security_officer", keys["bernd-maier"]).returncode == 0
    revoked = otpatch_child(home, "approvals", "revoke", run_id, "--key",
                            str(keys["bernd-maier"]), "--reason", "a new advisory came in")
    assert revoked.returncode == 0, revoked.stderr
    again = resume(home, run_id)
    assert again.returncode == 3
    assert "revoked by Bernd Maier" in run_json(again)["message"]


def test_an_expired_approval_no_longer_counts(home, keys):
    run_id = start(home, "--operator", OPERATOR)
    assert approve(home, run_id, "process_owner", keys["alice-chen"]).returncode == 0
    assert approve(home, run_id, "ot_security_officer", keys["bernd-maier"],
                   "--expires", "1s").returncode == 0
    time.sleep(1.2)
    again = resume(home, run_id)
    assert again.returncode == 3
    assert "ot_security_officer missing" in run_json(again)["message"]
    assert "expired at" in run_json(again)["message"]


def test_keygen_for_a_person_writes_a_private_key_and_prints_the_inventory_line(home, tmp_path):
    from otpatch.engine.keys import load

    path = tmp_path / "erin.key"
    done = otpatch_child(home, "keygen", "--name", "Erin Novak", "-o", str(path))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    public = load(path, "key").public_key
    assert f'- {{name: "Erin Novak", roles: [ROLE], public_key: {public}}}' in done.stdout
    again = otpatch_child(home, "keygen", "--name", "Erin Novak", "-o", str(path))
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize("args,says", [
    (["approve"], "give RUN_ID"),
    (["approve", "--request", "missing.json", "-o", "x.json"], "cannot read"),
    (["approvals", "add"], "expected RUN_ID, add SIGNED, or revoke RUN_ID"),
    (["approve", "r-20261201T000000-abcdef", "--role", "x"], "no journal"),
], ids=["no run", "no request file", "add without file", "no journal"])
def test_bad_approval_commands_are_one_line_exit_2(home, tmp_path, args, says):
    done = otpatch_child(home, *args)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


# -- what the gate judges, case by case (engine/approvals.py, pure) -----------------------------

@pytest.fixture(scope="module")
def waiting(tmp_path_factory):
    """One real execute run waiting at the gate: its progress, files and binding."""
    from otpatch.engine import runs, stagerun
    from otpatch.engine.journal import Journal
    from otpatch.engine.record import fold

    home = tmp_path_factory.mktemp("waiting") / "home"
    site = SiteRegister(tmp_path_factory.mktemp("site"))
    lab = site.copy()
    site.sign(lab)
    with pytest.MonkeyPatch.context() as patch:  # module scope: the autouse fixture is later
        patch.setenv("OTPATCH_REGISTER_KEYS", str(site.pinned))
        patch.setattr(sys.modules[__name__], "LAB", str(lab))
        run_id = start(home, "--operator", OPERATOR)
    with Journal.open(home, create=False) as journal:
        progress = fold(run_id, journal.entries(run_id))
    loaded = runs.load_files(GATED, str(lab))
    bound, _ = stagerun.gate_binding(progress, loaded, GATE, home, time.time())
    return progress, loaded, bound


def signed(bound: dict, person: str, role: str, *, now=None, lasts=timedelta(hours=1),
           **changed) -> dict:
    from otpatch.engine import approvals

    path = ROOT / "inventory" / "lab-keys" / f"{person}.key"
    key = _key(path)
    now = now or datetime.now(timezone.utc)
    req = approvals.request({**bound, **changed})
    return approvals.sign_approval(req, key, role=role, reason="reviewed", expires=now + lasts,
                                   now=now)


def _key(path: Path):
    """A lab key as engine/keys.py loads it (the repository's copy is not 0600)."""
    from cryptography.hazmat.primitives import serialization

    from otpatch.engine.keys import SigningKey, _raw_public, public_text

    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return SigningKey(path, public_text(_raw_public(key)), key)


def judged(waiting, doc, operator=OPERATOR, revoked=frozenset(), approvers=None):
    from otpatch.engine import approvals

    _, loaded, bound = waiting
    return approvals.judge(doc, bound, approvers or loaded.inventory.approvers, operator,
                           datetime.now(timezone.utc), set(revoked)).refused


def test_a_valid_approval_counts(waiting):
    assert judged(waiting, signed(waiting[2], "alice-chen", "process_owner")) == ""


@pytest.mark.parametrize("field,value,says", [
    ("playbook", {"name": "gated", "version": "1.0.1", "hash": "sha256:" + "0" * 64},
     "signed over another playbook version"),
    ("params", {"firmware": {"path": "other.bin"}}, "signed over other params"),
    ("targets", {"plc": [{"asset": "prod-plc-1"}]}, "signed over other targets or assets"),
    ("firmware", {"firmware": {"algorithm": "sha256", "hash": "1" * 64}},
     "signed over another firmware hash"),
    ("evidence", {"state": "prepare", "entry": "2" * 64}, "signed over other evidence"),
    ("run_id", "r-20261201T000000-abcdef", "signed over another run"),
    ("mode", "dry_run", "signed over another mode (a dry run's request"),
    ("gate", "flash", "signed over another gate"),
    ("windows", {"production": {"start": "2030-01-01T00:00:00+00:00",
                                "end": "2030-01-01T04:00:00+00:00"}},
     "signed over another maintenance window"),
], ids=["playbook", "params", "targets", "firmware", "evidence", "run", "mode", "gate",
        "window"])
def test_an_approval_over_anything_else_does_not_count(waiting, field, value, says):
    doc = signed(waiting[2], "alice-chen", "process_owner", **{field: value})
    assert says in judged(waiting, doc)


def test_an_altered_approval_does_not_verify(waiting):
    doc = signed(waiting[2], "alice-chen", "process_owner")
    doc["reason"] = "someone else's words"
    assert "signature does not verify" in judged(waiting, doc)


def test_an_expired_approval_does_not_count(waiting):
    past = datetime.now(timezone.utc) - timedelta(hours=3)
    doc = signed(waiting[2], "alice-chen", "process_owner", now=past)
    assert "expired at" in judged(waiting, doc)


def test_a_key_no_person_in_the_inventory_has_does_not_count(waiting, tmp_path):
    from otpatch.engine import approvals, keys

    path = tmp_path / "stranger.key"
    keys.generate(path)
    req = approvals.request(waiting[2])
    now = datetime.now(timezone.utc)
    doc = approvals.sign_approval(req, keys.load(path, "key"), role="process_owner",
                                  reason="x", expires=now + timedelta(hours=1), now=now)
    assert "signed by a key no person in the inventory has" in judged(waiting, doc)


def test_revoked_and_operator_approvals_do_not_count(waiting):
    from otpatch.engine.approvals import document_id

    doc = signed(waiting[2], "alice-chen", "process_owner")
    assert "revoked by Alice Chen" in judged(waiting, doc, revoked={document_id(doc)})
    assert "Alice Chen operates this run" in judged(waiting, doc, operator="Alice Chen")


def test_one_person_cannot_sign_for_two_roles(waiting):
    from otpatch.engine import approvals

    _, loaded, bound = waiting
    people = tuple(replace(a, roles=(*a.roles, "ot_security_officer"))
                   if a.name == "Dana Okafor" else a for a in loaded.inventory.approvers)
    docs = [signed(bound, "dana-okafor", "process_owner"),
            signed(bound, "dana-okafor", "ot_security_officer")]
    passed, detail = approvals.evaluate(["process_owner", "ot_security_officer"], docs, bound,
                                        people, OPERATOR, datetime.now(timezone.utc), set())
    assert not passed
    assert "Dana Okafor already signed as process_owner: one person cannot sign for two " \
           "roles" in detail
    docs.append(signed(bound, "bernd-maier", "ot_security_officer"))
    assert approvals.evaluate(["process_owner", "ot_security_officer"], docs, bound, people,
                              OPERATOR, datetime.now(timezone.utc), set())[0]


def test_the_binding_names_what_is_approved(waiting):
    progress, loaded, bound = waiting
    assert bound["run_id"] == progress.run_id and bound["mode"] == "execute"
    assert bound["playbook"]["hash"] == loaded.playbook.content_hash
    assert bound["firmware"] == {"firmware": {"algorithm": "sha256", "hash": "9f86d081884c7d"
                                              "659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}
    (evidence,) = bound["evidence"]  # the gate's one `over` state, done in this run
    assert evidence["state"] == "prepare" and len(evidence["entry"]) == 64
    assert (evidence["stage"], evidence["run_id"], evidence["record"]) == (
        "lab", progress.run_id, None)
    assert bound["evidence_age"] == 30 * 86400  # the default: 30 days
    assert bound["roles"] == ["process_owner", "ot_security_officer"]
    assert json.loads(json.dumps(bound)) == bound  # plain JSON, what is signed


def test_a_dry_run_has_nothing_to_sign(home, keys, tmp_path):
    change = str(FIXTURES / "engine" / "change-and-verify.yml")
    done = otpatch_child(home, "run", change, "--dry-run", "--json",
                         "-e", f"device={tmp_path / 'd.json'}")
    run_id = run_json(done)["run_id"]
    refused = approve(home, run_id, "process_owner", keys["alice-chen"])
    assert refused.returncode == 2
    assert "is a dry run: its sign-offs are simulated" in refused.stderr


# -- signed attestation files (issue 11, item 9) ------------------------------------------------

ATTEST = str(FIXTURES / "engine" / "attest.yml")


def waiting_for_a_person(home: Path) -> str:
    done = otpatch_child(home, "run", ATTEST, "-i", LAB, "--execute")
    assert done.returncode == 3 and "needs a person at a terminal" in done.stdout
    return run_json(otpatch_child(home, "status", "--json"))["runs"][-1]["run_id"]


def test_a_signed_attestation_answers_the_waiting_step_and_the_record_says_so(home, keys):
    run_id = waiting_for_a_person(home)
    done = otpatch_child(home, "attest", run_id, "--role", "operator", "--key",
                         str(keys["chen-wei"]), "--statement", "All PID loops are stable")
    assert done.returncode == 0, done.stderr
    resumed = otpatch_child(home, "resume", run_id, "--json")
    doc = run_json(resumed)
    assert resumed.returncode == 0 and doc["status"] == "completed"
    record = doc["facts"]["attestation"]
    assert (record["person"], record["role"], record["confirmed"], record["simulated"]) == (
        "Chen Wei", "operator", True, False)
    assert record["signed_by_key"] == _key(ROOT / "inventory" / "lab-keys" /
                                           "chen-wei.key").public_key
    assert record["terminal"] is None


def test_a_signed_no_fails_the_step(home, keys):
    run_id = waiting_for_a_person(home)
    assert otpatch_child(home, "attest", run_id, "--role", "operator", "--key",
                         str(keys["dana-okafor"]), "--no").returncode == 0
    doc = run_json(otpatch_child(home, "resume", run_id, "--json"))
    assert doc["status"] == "aborted" and "Dana Okafor" in doc["message"]


@pytest.mark.parametrize("role,person,statement,says", [
    ("process_owner", "alice-chen", None, "the run asks operator to confirm"),
    ("operator", "alice-chen", None, "is no inventory person's who holds operator"),
    ("operator", "chen-wei", "Something else", "the run asks to confirm 'All PID loops"),
], ids=["other role", "key without the role", "other statement"])
def test_a_wrong_attestation_is_refused_and_the_run_still_waits(home, keys, role, person,
                                                                statement, says):
    run_id = waiting_for_a_person(home)
    extra = ["--statement", statement] if statement else []
    done = otpatch_child(home, "attest", run_id, "--role", role, "--key", str(keys[person]),
                         *extra)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    status = run_json(otpatch_child(home, "status", run_id, "--json"))
    assert status["status"] == "awaiting"


def test_a_signed_attestation_answers_one_visit_of_its_state_only():
    """A state entered again (a bounded cycle) asks again: the answer binds the visit."""
    from otpatch.engine import approvals
    from otpatch.engine.inventory import load_inventory

    key = _key(ROOT / "inventory" / "lab-keys" / "chen-wei.key")
    step = {"run_id": "r-20261201T000000-abcdef", "state": "confirm", "visit": 1, "index": 0,
            "statement": "All PID loops are stable", "role": "operator"}
    doc = approvals.sign_attestation(step, key, confirmed=True, now=datetime.now(timezone.utc))
    people = load_inventory(LAB).approvers
    ask = {k: v for k, v in step.items() if k != "visit"}
    found = approvals.attestation_for([doc], visit=1, approvers=people, **ask)
    assert found is not None and found[1].name == "Chen Wei"
    assert approvals.attestation_for([doc], visit=2, approvers=people, **ask) is None
    assert approvals.attestation_for([doc], visit=1, approvers=people,
                                     **{**ask, "statement": "Other"}) is None


def test_approvals_json_lists_each_approval_with_its_verdict(home, keys):
    run_id = start(home, "--operator", OPERATOR)
    assert approve(home, run_id, "process_owner", keys["alice-chen"]).returncode == 0
    assert approve(home, run_id, "ot_security_officer", keys["dana-okafor"]).returncode == 2
    listed = otpatch_child(home, "approvals", run_id, "--json")
    doc = run_json(listed)
    assert doc["gate"] == GATE and doc["roles"] == ["process_owner", "ot_security_officer"]
    verdicts = [(a["role"], a["person"], a["counts"]) for a in doc["approvals"]]
    assert verdicts == [("process_owner", "Alice Chen", True),
                        ("ot_security_officer", "Dana Okafor", False)]
    assert "does not hold the role ot_security_officer" in doc["approvals"][1]["refused"]


def test_the_pause_records_what_it_asks_so_attest_answers_any_guided_step(home, keys):
    """The pause names the statement and role asked (`asks`), whatever module asked: so a
    guided step (m580.firmware_transfer on a real CPU, mguard.check's tunnels) is answered
    with `otpatch attest` like core.attest. A step waiting for a file asks no one."""
    from otpatch.engine.attest_cli import _asked
    from otpatch.engine.journal import Journal

    run_id = waiting_for_a_person(home)
    with Journal.open(home, read_only=True) as journal:
        (paused,) = [e.event() for e in journal.entries(run_id)
                     if e.event_type == "run_paused"]
    assert paused.step["asks"] == {"statement": "All PID loops are stable", "role": "operator"}
    guided = {"state": "lab_transfer", "index": 0, "visit": 1,
              "module": "m580.firmware_transfer", "args": {"target": "lab_plc"},
              "asks": {"statement": "lab-plc-1: I updated it", "role": "operator"}}
    assert _asked(guided) == {"statement": "lab-plc-1: I updated it", "role": "operator"}
    waiting_for_a_file = {**guided, "module": "mguard.export_profile"}
    del waiting_for_a_file["asks"]
    assert _asked(waiting_for_a_file) is None
    older = {"module": "core.attest", "args": {"statement": "S", "role": "operator"}}
    assert _asked(older) == {"statement": "S", "role": "operator"}  # journals before `asks`
