"""Typed journal events: every kind round-trips through its payload, and a payload that does
not fit its type is refused naming the field (and, in a journal, the entry)."""
from __future__ import annotations

import json
import sqlite3

import pytest

from otpatch.engine import events as E
from otpatch.modules.contract.canonical import canonical_hash, canonical_json
from otpatch.modules.contract.module import Result

from conftest import FIXTURES, otpatch_child, run_json

CHANGE = str(FIXTURES / "engine" / "change-and-verify.yml")

SAMPLES = [
    E.RunStarted(elapsed=0.0, playbook="/p.yml", playbook_hash="sha256:ab", playbook_name="p",
                 playbook_version="1.0.0", inventory=None, inventory_hash="sha256:cd",
                 mode="dry_run", params={"soak": 14400.0}, targets={"plc": ["plc-1"]},
                 pid=42, clock_start=1764547200.5,
                 waivers=[{"rule": "budget-over", "reason": "agreed with operations"}]),
    E.RunResumed(elapsed=3.0, from_status="interrupted", pid=43),
    E.RunPaused(elapsed=4.0, state="gate", message="needs a person", step={"index": 0}),
    E.RunEnded(elapsed=9.0, status="completed", state="completed", message="", budgets={}),
    E.Transition(elapsed=1.0, source="a", trigger="roll_back", to="undo", rollback=None,
                 rolling_back=True, reason="a: step failed"),
    E.Requirement(elapsed=1.0, state="gate", requirement="window: production",
                  requirement_kind="window", passed=False, detail="ended", simulated=False),
    E.Checkpoint(elapsed=1.0, state="a", name="as_found", facts={"plc": {"revision": "v03.20"}}),
    E.StepIntent(elapsed=2.0, state="a", index=0, step="flash", module="m580.firmware_transfer",
                 args={"port": "usb"}),
    E.StepResult(elapsed=2.5, state="a", index=0, step="flash", module="m580.firmware_transfer",
                 result=Result(changed=True, msg="ok", facts={"x": 1}), register=None,
                 facts_scope="plc", duration=0.5, reverified=True),
    E.ReadBackDone(elapsed=2.6, state="a", index=0, module="m580.firmware_transfer",
                   applied=None, result={"msg": "moving"}),
]


@pytest.mark.parametrize("event", SAMPLES, ids=[e.kind for e in SAMPLES])
def test_every_kind_round_trips_through_its_payload(event):
    payload = json.loads(canonical_json(event.payload()))
    assert payload["v"] == E.SCHEMA_VERSION
    assert E.decode(event.kind, event.category, payload) == event


def test_the_payload_keys_stay_what_the_journal_always_called_them():
    transition, requirement = SAMPLES[4].payload(), SAMPLES[5].payload()
    assert {"from", "event", "to"} <= set(transition) and "source" not in transition
    assert requirement["kind"] == "window"


def test_an_entry_written_before_versions_reads_as_version_1():
    payload = {k: v for k, v in SAMPLES[1].payload().items() if k != "v"}
    assert E.decode("run_resumed", "run", payload) == SAMPLES[1]


BAD = [
    ("a field of the wrong type", "transition", "state",
     {"from": "a", "event": "succeed", "to": 3, "rollback": None, "rolling_back": False,
      "elapsed": 1.0}, "to must be text, not int"),
    ("a bool where a number goes", "run_resumed", "run",
     {"from_status": "x", "pid": True, "elapsed": 1.0}, "pid must be an integer, not bool"),
    ("a field missing", "run_ended", "run",
     {"status": "completed", "state": "completed", "elapsed": 1.0}, "missing"),
    ("an unknown field", "checkpoint", "checkpoint",
     {"state": "a", "name": "n", "facts": {}, "elapsed": 1.0, "extra": 1}, "unknown field(s) extra"),
    ("a schema version from the future", "run_resumed", "run",
     {"from_status": "x", "pid": 1, "elapsed": 1.0, "v": 2}, "schema version 2"),
    ("an unknown kind", "run_teleported", "run", {"elapsed": 1.0}, "unknown event type"),
    ("a kind in the wrong category", "transition", "run",
     {"from": "a", "event": "succeed", "to": "b", "rollback": None, "rolling_back": False,
      "elapsed": 1.0}, "category 'run', expected 'state'"),
    ("a step result whose result is text", "step_result", "step",
     {"state": "a", "index": 0, "step": "s", "module": "m", "result": "ok", "register": None,
      "facts_scope": None, "duration": 0.0, "elapsed": 1.0}, "result must be an object"),
]


@pytest.mark.parametrize("kind, category, payload, said", [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_a_payload_that_does_not_fit_is_refused_naming_the_field(kind, category, payload, said):
    with pytest.raises(E.EventError) as caught:
        E.decode(kind, category, payload)
    assert said in str(caught.value)


def test_the_conductor_cannot_write_an_event_of_the_wrong_shape():
    with pytest.raises(E.EventError, match="index must be an integer"):
        E.StepIntent(elapsed=0.0, state="a", index="0", step="s", module="m", args={})


COLUMNS = ("seq", "run_id", "ts", "source", "category", "event_type", "result")
AUDIT = ("operator", "host")


def reseal(db: sqlite3.Connection, seq: int, payload: dict) -> None:
    """Replace entry `seq`'s payload and re-hash it and every later entry, head included:
    the chain links again (what an unkeyed chain cannot tell from the real one)."""
    db.executescript("DROP TRIGGER entries_no_update; DROP TRIGGER head_forward_only;")
    rows = db.execute("SELECT seq, run_id, ts, source, category, event_type, result, payload, "
                      "prev_hash, operator, host FROM entries WHERE seq >= ? ORDER BY seq",
                      (seq,)).fetchall()
    prev = rows[0][8]
    for row in rows:
        body = payload if row[0] == seq else json.loads(row[7])
        digest = canonical_hash(dict(zip(COLUMNS, row[:7]), payload=body, prev_hash=prev,
                                     **dict(zip(AUDIT, row[9:11]))))
        db.execute("UPDATE entries SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   (canonical_json(body), prev, digest, row[0]))
        prev = digest
    db.execute("UPDATE head SET hash = ? WHERE one = 1", (prev,))


def test_status_and_resume_name_an_entry_that_does_not_fit_its_type(home, tmp_path):
    """An entry edited and the chain re-sealed (no host key anchors this journal) but of the
    wrong shape: the fold refuses it by name, exit 1, no traceback."""
    doc = run_json(otpatch_child(home, "run", CHANGE, "--dry-run", "--json", "-e",
                                 f"device={tmp_path / 'd.json'}", "-e", "verify_ok=no"))
    run_id = doc["run_id"]
    db = sqlite3.connect(home / "journal.sqlite", isolation_level=None)
    seq, text = db.execute("SELECT seq, payload FROM entries WHERE event_type = 'transition' "
                           "ORDER BY seq LIMIT 1").fetchone()
    payload = json.loads(text)
    payload["to"] = 7
    reseal(db, seq, payload)
    db.close()
    for args in (("status", run_id), ("resume", run_id)):
        done = otpatch_child(home, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert f"entry #{seq} (run {run_id}, transition)" in done.stderr, done.stderr
        assert "to must be text, not int" in done.stderr
