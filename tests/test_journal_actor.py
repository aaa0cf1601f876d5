"""Every journal entry names who acted and where (issue 11 item 9, IEC 62443-3-3 SR 2.8):
the operator by name and the host as login@hostname, both covered by the entry's hash.

Real SQLite files and real child processes: runs name their operator in every entry,
checkpoints included; approvals, revocations and signed attestations name the approver;
editing either field breaks the chain; a journal an older otpatch wrote (no such columns)
still opens, verifies, is migrated when written to, and takes a new run."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from conftest import FIXTURES, lab_keys, otpatch_child, run_json
from otpatch.engine import keys as host_keys
from otpatch.engine.journal import FILENAME, GENESIS_HASH, Journal
from otpatch.engine.journalfile import this_host
from otpatch.modules.contract.canonical import canonical_hash

CHANGE = str(FIXTURES / "engine" / "change-and-verify.yml")
GATED = str(FIXTURES / "engine" / "gated.yml")
ATTEST = str(FIXTURES / "engine" / "attest.yml")
RUN = "r-20261126T012233-3fa9c2"
HOST = this_host()

# The schema of journals written before entries named operator and host (engine/journalfile.py
# as it was): what an older otpatch leaves on a plant's engineering workstation.
OLD_SCHEMA = f"""
CREATE TABLE entries (seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL,
  ts TEXT NOT NULL, source TEXT NOT NULL, category TEXT NOT NULL, event_type TEXT NOT NULL,
  result TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX entries_by_run ON entries (run_id, seq);
CREATE TABLE head (one INTEGER PRIMARY KEY CHECK (one = 1),
  seq INTEGER NOT NULL, hash TEXT NOT NULL);
INSERT INTO head (one, seq, hash) VALUES (1, 0, '{GENESIS_HASH}');
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
  BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
  BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER head_no_delete BEFORE DELETE ON head
  BEGIN SELECT RAISE(ABORT, 'the journal head cannot be deleted'); END;
CREATE TRIGGER head_forward_only BEFORE UPDATE ON head WHEN NEW.seq <= OLD.seq
  BEGIN SELECT RAISE(ABORT, 'the journal head only moves forward'); END;
"""
OLD_COLUMNS = ("seq", "run_id", "ts", "source", "category", "event_type", "result",
               "payload", "prev_hash", "hash")


def dry_run(home: Path, tmp_path: Path, *extra: str, **env: str) -> dict:
    done = otpatch_child(home, "run", CHANGE, "--dry-run", "--json", "-e",
                         f"device={tmp_path / 'device.json'}", *extra, **env)
    doc = run_json(done)
    assert doc["status"] == "completed", done.stderr
    return doc


def columns(path: Path) -> tuple[str, ...]:
    conn = sqlite3.connect(path)
    try:
        return tuple(r[1] for r in conn.execute("PRAGMA table_info(entries)"))
    finally:
        conn.close()


def tamperer(home: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(home / FILENAME, isolation_level=None)
    for trigger in ("entries_no_update", "entries_no_delete", "head_forward_only"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    return conn


# -- new entries name who and where -----------------------------------------------------------

def test_every_entry_of_a_run_names_its_operator_and_this_host(home, tmp_path):
    key = tmp_path / "host.key"
    host_keys.generate(key)
    run_id = dry_run(home, tmp_path, "--operator", "Chen Wei",
                     OTPATCH_HOST_KEY=str(key))["run_id"]
    with Journal.open(home, read_only=True) as journal:
        entries = journal.entries(run_id)
    assert "chain_checkpoint" in {e.event_type for e in entries}  # signed at the run's end
    assert {(e.operator, e.host) for e in entries} == {("Chen Wei", HOST)}
    assert "@" in HOST and HOST.split("@")[1]
    status = otpatch_child(home, "status", run_id, OTPATCH_HOST_KEY=str(key))
    assert status.returncode == 0, status.stderr
    assert (f"by:\n  Chen Wei at {HOST}: {len(entries)} entries, #1 run_started to "
            f"#{entries[-1].seq} chain_checkpoint") in status.stdout
    doc = run_json(otpatch_child(home, "status", run_id, "--json", OTPATCH_HOST_KEY=str(key)))
    assert doc["by"] == [{"operator": "Chen Wei", "host": HOST, "entries": len(entries),
                          "first_seq": 1, "first_event": "run_started",
                          "last_seq": entries[-1].seq, "last_event": "chain_checkpoint"}]


def test_a_run_without_an_operator_names_nobody_but_still_its_host(home, tmp_path):
    run_id = dry_run(home, tmp_path)["run_id"]
    with Journal.open(home, read_only=True) as journal:
        assert {(e.operator, e.host) for e in journal.entries(run_id)} == {(None, HOST)}
    assert f"nobody named at {HOST}: " in otpatch_child(home, "status", run_id).stdout
    assert otpatch_child(home, "journal", "verify").returncode == 0


def test_the_hash_covers_operator_and_host_and_an_entry_naming_neither_hashes_as_before(
        tmp_path):
    with Journal.open(tmp_path) as journal:
        journal.acting_as("Alice Chen", "alice@eng-ws-1")
        named = journal.append(RUN, source="module:test", category="module",
                               event_type="noted", result="info", payload={"elapsed": 0.0})
    assert (named.operator, named.host) == ("Alice Chen", "alice@eng-ws-1")
    assert named.hash == canonical_hash(named.content())
    assert {"operator", "host"} <= set(named.content())
    old = named.content()
    del old["operator"], old["host"]
    assert canonical_hash(old) != named.hash
    from dataclasses import replace

    older = replace(named, operator=None, host=None)
    assert older.content() == old  # what an older otpatch hashed
    with Journal.open(tmp_path) as journal:  # the fast path hashes as canonical JSON does
        for operator, host in ((None, "ops@eng-ws-1"), ("Zoë Ünal", "zoë@werk-β")):
            journal.acting_as(operator, host)
            entry = journal.append(RUN, source="module:test", category="module",
                                   event_type="noted", result="info", payload={"elapsed": 0.0})
            assert entry.hash == canonical_hash(entry.content())
        assert journal.verify().ok


@pytest.mark.parametrize("edit,value", [
    ("operator", "'Mallory'"), ("host", "'mallory@elsewhere'"), ("operator", "NULL"),
    ("host", "NULL"),
], ids=["operator changed", "host changed", "operator erased", "host erased"])
def test_an_edited_operator_or_host_breaks_the_chain(home, tmp_path, edit, value):
    run_id = dry_run(home, tmp_path, "--operator", "Chen Wei")["run_id"]
    conn = tamperer(home)
    conn.execute(f"UPDATE entries SET {edit} = {value} WHERE seq = 3")
    conn.close()
    done = otpatch_child(home, "journal", "verify")
    assert done.returncode == 1
    assert f"otpatch: journal: entry #3 (run {run_id}, " in done.stderr
    assert "hash does not match its content (edited)" in done.stderr
    status = otpatch_child(home, "status", run_id)
    assert status.returncode == 1 and "the journal" in status.stderr and "damaged" in status.stderr


# -- approvers name themselves ----------------------------------------------------------------

@pytest.fixture
def approver_keys(tmp_path) -> dict[str, Path]:
    return lab_keys(tmp_path / "keys", ("alice-chen", "bernd-maier", "chen-wei"))


def last_run(home: Path) -> str:
    return run_json(otpatch_child(home, "status", "--json"))["runs"][-1]["run_id"]


def test_approve_add_and_revoke_entries_name_the_approver(home, tmp_path, approver_keys,
                                                          signed_lab, site_register):
    # an execute run needs the site register signed: signed_lab (conftest.py) signs it and
    # site_register sets the pinned keys for the children
    done = otpatch_child(home, "run", GATED, "-i", str(signed_lab), "--execute",
                         "--operator", "Chen Wei")
    assert done.returncode == 3, done.stderr
    run_id = last_run(home)
    done = otpatch_child(home, "approve", run_id, "--role", "process_owner", "--key",
                         str(approver_keys["alice-chen"]), "--reason", "lab evidence read")
    assert done.returncode == 0, done.stderr
    request, signed = tmp_path / "request.json", tmp_path / "signed.json"
    assert otpatch_child(home, "approve", run_id, "--request-out", str(request)).returncode == 0
    assert otpatch_child(tmp_path / "elsewhere", "approve", "--request", str(request), "--role",
                         "ot_security_officer", "--key", str(approver_keys["bernd-maier"]),
                         "--reason", "rules read", "-o", str(signed)).returncode == 0
    assert otpatch_child(home, "approvals", "add", str(signed)).returncode == 0
    revoked = otpatch_child(home, "approvals", "revoke", run_id, "--key",
                            str(approver_keys["bernd-maier"]), "--reason", "new advisory")
    assert revoked.returncode == 0, revoked.stderr
    with Journal.open(home, read_only=True) as journal:
        entries = journal.entries(run_id)
    by_type = [(e.event_type, e.operator) for e in entries
               if e.event_type.startswith("approval")]
    assert by_type == [("approval_added", "Alice Chen"), ("approval_added", "Bernd Maier"),
                       ("approval_revoked", "Bernd Maier")]
    assert entries[0].operator == "Chen Wei"
    status = otpatch_child(home, "status", run_id).stdout
    assert f"Alice Chen at {HOST}: #{entries[-3].seq} approval_added" in status
    assert (f"Bernd Maier at {HOST}: 2 entries, #{entries[-2].seq} approval_added to "
            f"#{entries[-1].seq} approval_revoked") in status
    assert otpatch_child(home, "journal", "verify").returncode == 0


def test_a_signed_attestation_entry_names_the_attester_and_resume_the_runs_operator(
        home, approver_keys, signed_lab, site_register):
    done = otpatch_child(home, "run", ATTEST, "-i", str(signed_lab), "--execute",
                         "--operator", "Alice Chen")
    assert done.returncode == 3, done.stderr
    run_id = last_run(home)
    attested = otpatch_child(home, "attest", run_id, "--role", "operator", "--key",
                             str(approver_keys["chen-wei"]))
    assert attested.returncode == 0, attested.stderr
    resumed = otpatch_child(home, "resume", run_id, "--json")  # the run's own operator
    assert run_json(resumed)["status"] == "completed", resumed.stderr
    with Journal.open(home, read_only=True) as journal:
        entries = journal.entries(run_id)
    signed = [e for e in entries if e.event_type == "attestation_signed"]
    assert [e.operator for e in signed] == ["Chen Wei"]
    after = entries[entries.index(signed[0]) + 1:]
    assert after[0].event_type == "run_resumed"
    assert {e.operator for e in after} == {"Alice Chen"}


# -- a journal an older otpatch wrote ---------------------------------------------------------

def old_journal(source: Path, home: Path) -> None:
    """`source`'s entries written again as an older otpatch wrote them: no operator or host
    columns, each hash over the content without them, the chain re-linked."""
    home.mkdir(parents=True)
    old = sqlite3.connect(home / FILENAME, isolation_level=None)
    old.executescript(OLD_SCHEMA)
    new = sqlite3.connect(source / FILENAME)
    prev = GENESIS_HASH
    for row in new.execute(f"SELECT {', '.join(OLD_COLUMNS)} FROM entries ORDER BY seq"):
        content = dict(zip(OLD_COLUMNS[:7], row[:7]), payload=json.loads(row[7]),
                       prev_hash=prev)
        digest = canonical_hash(content)
        old.execute(f"INSERT INTO entries VALUES ({', '.join('?' * 10)})",
                    (*row[:8], prev, digest))
        prev = digest
    old.execute("UPDATE head SET seq = (SELECT max(seq) FROM entries), hash = ?", (prev,))
    new.close()
    old.close()


def test_an_older_journal_verifies_unchanged_then_is_migrated_by_a_new_run(home, tmp_path):
    first = dry_run(tmp_path / "then", tmp_path)["run_id"]
    old_journal(tmp_path / "then", home)
    before = hashlib.sha256((home / FILENAME).read_bytes()).hexdigest()
    done = otpatch_child(home, "journal", "verify")
    assert done.returncode == 0, done.stderr
    assert "journal ok: 13 entries, hash chain intact" in done.stdout
    status = otpatch_child(home, "status", first)
    assert status.returncode == 0, status.stderr
    assert "not recorded (written by an older otpatch): 13 entries" in status.stdout
    assert hashlib.sha256((home / FILENAME).read_bytes()).hexdigest() == before  # read-only
    assert columns(home / FILENAME) == OLD_COLUMNS

    second = dry_run(home, tmp_path, "--operator", "Dana Okafor")["run_id"]
    assert columns(home / FILENAME) == (*OLD_COLUMNS, "operator", "host")
    with Journal.open(home, read_only=True) as journal:
        assert {(e.operator, e.host) for e in journal.entries(first)} == {(None, None)}
        assert {(e.operator, e.host) for e in journal.entries(second)} == {
            ("Dana Okafor", HOST)}
        assert journal.verify().ok
    done = otpatch_child(home, "journal", "verify")
    assert done.returncode == 0 and "journal ok: 26 entries" in done.stdout, done.stderr


def test_an_older_journal_opened_for_writing_twice_is_migrated_once(home, tmp_path):
    dry_run(tmp_path / "then", tmp_path)
    old_journal(tmp_path / "then", home)
    with Journal.open(home, create=False) as one, Journal.open(home, create=False) as two:
        one.acting_as("Alice Chen").append(RUN, source="module:test", category="module",
                                           event_type="noted", result="info",
                                           payload={"elapsed": 0.0})
        two.append(RUN, source="module:test", category="module", event_type="noted",
                   result="info", payload={"elapsed": 0.0})
        assert one.verify().ok
    assert columns(home / FILENAME) == (*OLD_COLUMNS, "operator", "host")


def test_this_host_survives_a_login_without_a_name(monkeypatch):
    import getpass

    def nameless() -> str:
        raise KeyError("getpwuid(): uid not found: 4242")

    monkeypatch.setattr(getpass, "getuser", nameless)
    login, _, hostname = this_host().partition("@")
    assert login == "unknown" and hostname
