"""The run journal: chaining, durability, tamper detection, the crash hook."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otpatch.modules.contract.errors import InputError, JournalError
from otpatch.engine.journal import (FILENAME, GENESIS_HASH, Journal, check_run_id, default_home,
                                    new_run_id)

RUN_A = "r-20261126T012233-3fa9c2"
RUN_B = "r-20261126T020000-0b1c2d"


def append(journal: Journal, run_id: str, event_type: str, durable: bool = True, **payload):
    """An entry of free shape: a module's record (the one typed event that carries any
    payload, engine/events.py ModuleRecord), so these tests exercise the chain alone."""
    return journal.append(run_id, source="module:test", category="module",
                          event_type=event_type, result="info",
                          payload={**payload, "elapsed": 0.0}, durable=durable)


@pytest.fixture
def ten(tmp_path: Path) -> Path:
    """A journal of 10 entries over two interleaved runs; returns its home."""
    with Journal.open(tmp_path) as journal:
        for i in range(10):
            append(journal, RUN_A if i % 3 else RUN_B, f"event_{i + 1}", n=i + 1)
    return tmp_path


def raw(home: Path) -> sqlite3.Connection:
    """A tamperer's connection: triggers dropped, autocommit."""
    conn = sqlite3.connect(home / FILENAME, isolation_level=None)
    for trigger in ("entries_no_update", "entries_no_delete", "head_no_delete",
                    "head_forward_only"):
        conn.execute(f"DROP TRIGGER {trigger}")
    return conn


def test_appends_chain_across_reopen_and_summarise_runs(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        first = append(journal, RUN_A, "run_started", playbook="m580")
        append(journal, RUN_A, "state_entered", state="identify")
    with Journal.open(tmp_path, create=False) as journal:
        append(journal, RUN_B, "run_started", playbook="mguard")
        last = append(journal, RUN_A, "run_ended", outcome="completed")
        entries = journal.entries()
        assert [e.seq for e in entries] == [1, 2, 3, 4]
        assert entries[0] == first and entries[-1] == last
        assert first.prev_hash == GENESIS_HASH
        assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:]))
        assert [e.event_type for e in journal.entries(RUN_A)] == [
            "run_started", "state_entered", "run_ended"]
        runs = {r.run_id: r for r in journal.runs()}
        assert list(runs) == [RUN_A, RUN_B]
        assert (runs[RUN_A].entries, runs[RUN_A].last_event_type) == (3, "run_ended")
        assert runs[RUN_A].started == first.ts and runs[RUN_A].last_ts == last.ts
        assert journal.verify().ok


def test_staged_entries_commit_with_the_next_durable_append(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        append(journal, RUN_A, "run_started")
        append(journal, RUN_A, "step_intent", durable=False)
        append(journal, RUN_A, "step_intent", durable=False)
        other = sqlite3.connect(tmp_path / FILENAME)
        assert other.execute("SELECT COUNT(*) FROM entries").fetchone() == (1,)
        assert journal.verify().entries_checked == 1  # verify reads only what is committed
        append(journal, RUN_A, "step_result")
        assert other.execute("SELECT COUNT(*) FROM entries").fetchone() == (4,)
        assert other.execute("SELECT seq FROM head").fetchone() == (4,)
        other.close()
        assert journal.commits == 2
        assert journal.verify().ok


def test_close_commits_staged_entries(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        append(journal, RUN_A, "step_intent", durable=False)
    with Journal.open(tmp_path) as journal:
        assert [e.event_type for e in journal.entries()] == ["step_intent"]
        assert journal.verify().ok


TAMPER = [
    pytest.param(["UPDATE entries SET payload = '{\"n\":99}' WHERE seq = 4"],
                 "entry #4 (run", id="change-payload"),
    pytest.param(["UPDATE entries SET ts = '2020-01-01T00:00:00.000000+00:00' WHERE seq = 7"],
                 "entry #7 (run", id="change-ts"),
    pytest.param(["UPDATE entries SET result = 'success' WHERE seq = 2"],
                 "entry #2 (run", id="change-result"),
    pytest.param(["DELETE FROM entries WHERE seq = 5"], "entry #5 missing (seq gap)",
                 id="delete-middle"),
    pytest.param(["DELETE FROM entries WHERE seq = 10"], "entry #10 missing at the end",
                 id="delete-last"),
    pytest.param(["DELETE FROM entries WHERE seq >= 9"], "entries #9-#10 missing at the end",
                 id="delete-last-two"),
    pytest.param(["UPDATE entries SET seq = -seq WHERE seq IN (3, 4)",
                  "UPDATE entries SET seq = 7 + seq WHERE seq IN (-3, -4)"],
                 "entry #3: prev_hash does not match entry #2", id="swap-two-entries"),
    pytest.param(["DELETE FROM entries WHERE seq = 5",
                  "UPDATE entries SET seq = seq - 1 WHERE seq > 5"],
                 "entry #5 (run", id="renumber-after-delete"),
    pytest.param(["UPDATE head SET hash = '" + "f" * 64 + "'"],
                 "head row does not match entry #10", id="edit-head-hash"),
    pytest.param(["UPDATE head SET seq = 8"], "entries #9-#10 are not recorded in the head",
                 id="edit-head-seq"),
    pytest.param(["DELETE FROM head"], "head row missing", id="delete-head"),
]


@pytest.mark.parametrize("statements,named", TAMPER)
def test_verify_names_the_tampered_entry(ten: Path, statements: list[str], named: str) -> None:
    with Journal.open(ten) as journal:
        assert journal.verify() == journal.verify() and journal.verify().ok
        conn = raw(ten)
        for statement in statements:
            conn.execute(statement)
        conn.close()
        report = journal.verify()
    assert not report.ok
    assert any(named in problem for problem in report.problems), report.problems


def test_swapped_contents_are_caught_on_both_entries(ten: Path) -> None:
    conn = raw(ten)
    rows = {r[0]: r[1:] for r in conn.execute("SELECT * FROM entries WHERE seq IN (3, 4)")}
    columns = ("run_id, ts, source, category, event_type, result, payload, prev_hash, hash, "
               "operator, host")
    conn.execute("DELETE FROM entries WHERE seq IN (3, 4)")
    for seq, other in ((3, 4), (4, 3)):
        conn.execute(f"INSERT INTO entries (seq, {columns}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                     (seq, *rows[other]))
    conn.close()
    with Journal.open(ten) as journal:
        problems = journal.verify().problems
    assert any(p.startswith("entry #3 (run") and "edited" in p for p in problems), problems
    assert any(p.startswith("entry #4 (run") and "edited" in p for p in problems), problems


@pytest.mark.parametrize("statement", [
    "UPDATE entries SET result = 'success' WHERE seq = 2",
    "DELETE FROM entries WHERE seq = 10",
    "DELETE FROM head",
    "UPDATE head SET seq = 3",
], ids=["update-entry", "delete-entry", "delete-head", "move-head-back"])
def test_triggers_refuse_edits_through_sql(ten: Path, statement: str) -> None:
    conn = sqlite3.connect(ten / FILENAME, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(statement)
    conn.close()
    with Journal.open(ten) as journal:
        assert journal.verify().ok


def test_append_refuses_a_journal_without_head(ten: Path) -> None:
    raw(ten).execute("DELETE FROM head")
    with Journal.open(ten) as journal, pytest.raises(JournalError, match="head row is missing"):
        append(journal, RUN_A, "step_result")


@pytest.mark.parametrize("content", [b"this is not a database, just text\n" * 100,
                                     b"SQLite format 3\x00" + b"\xff" * 4000],
                         ids=["text", "corrupt-header"])
def test_a_file_that_is_not_sqlite_is_one_clear_line(tmp_path: Path, content: bytes) -> None:
    (tmp_path / FILENAME).write_bytes(content)
    with pytest.raises(JournalError) as caught:
        Journal.open(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / FILENAME) in message and "\n" not in message


def test_a_sqlite_file_with_another_schema_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / FILENAME)
    conn.execute("CREATE TABLE entries (id INTEGER, text TEXT)")
    conn.close()
    with pytest.raises(JournalError, match="wrong columns in 'entries'"):
        Journal.open(tmp_path)


def test_no_journal_without_create(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no journal at"):
        Journal.open(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("text", ["x", "r-20261126T012233-3FA9C2", "r-2026112T012233-3fa9c2",
                                  " r-20261126T012233-3fa9c2", "r-20261126T012233-3fa9c2\n"],
                         ids=["word", "upper-hex", "short-date", "leading-space", "newline"])
def test_bad_run_ids_are_input_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(InputError, match=r"^bad run id .*: expected r-YYYYMMDDTHHMMSS-xxxxxx$"):
        check_run_id(text)
    with Journal.open(tmp_path) as journal, pytest.raises(InputError):
        append(journal, text, "run_started")


def test_new_run_ids_are_well_formed_and_distinct() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50 and all(check_run_id(i) for i in ids)


def test_unknown_run_is_an_input_error(ten: Path) -> None:
    with Journal.open(ten) as journal, pytest.raises(InputError, match="no run 'r-2026"):
        journal.entries("r-20260101T000000-000000")


def test_payload_that_is_not_json_is_refused_before_writing(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        with pytest.raises(JournalError, match="bad payload"):
            append(journal, RUN_A, "step_result", blob=object())
        assert journal.entries() == [] and journal.verify().ok


def test_default_home_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTPATCH_HOME", raising=False)
    assert default_home() == Path(".otpatch")
    monkeypatch.setenv("OTPATCH_HOME", "/srv/otpatch")
    assert default_home() == Path("/srv/otpatch")


CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from otpatch.engine.journal import Journal
    journal = Journal.open(Path(sys.argv[1]))
    for i in range(5):
        journal.append("r-20261126T012233-3fa9c2", source="engine", category="module",
                       event_type="tick", result="info", payload={"i": i, "elapsed": 0.0})
""")


@pytest.mark.slow
@pytest.mark.parametrize("fault,kept", [("after:2", 2), ("before:2", 1), ("after:1", 1),
                                        ("before:1", 0)])
def test_fault_hook_kills_the_process_at_a_commit(tmp_path: Path, fault: str, kept: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTPATCH_FAULT_KILL", fault)
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], timeout=60)
    monkeypatch.delenv("OTPATCH_FAULT_KILL")
    assert child.returncode == -9
    with Journal.open(tmp_path, create=False) as journal:
        assert len(journal.entries()) == kept
        report = journal.verify()
    assert report.ok and report.entries_checked == kept, report.problems


@pytest.mark.slow
def test_two_processes_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    Journal.open(tmp_path).close()
    children = [subprocess.Popen([sys.executable, "-c", CHILD.replace("range(5)", "range(100)"),
                                  str(tmp_path)]) for _ in range(2)]
    assert [child.wait(timeout=60) for child in children] == [0, 0]
    with Journal.open(tmp_path, create=False) as journal:
        report = journal.verify()
    assert report.ok and report.entries_checked == 200, report.problems


def test_hash_covers_text_with_quotes_and_non_ascii(tmp_path):
    """append writes the hashed text directly; verify recomputes it from the fields."""
    with Journal.open(tmp_path) as journal:
        journal.append(RUN_A, source='operator:Zhang "Hua" 张华\\', category="module",
                       event_type="attestation", result="success",
                       payload={"statement": "RUN LED solid green ✓", "tab": "\t", "n": 1.5,
                                "elapsed": 0.0})
        assert journal.verify().ok
