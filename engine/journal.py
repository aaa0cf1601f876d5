"""The run journal: append-only, hash-chained, durable SQLite record of every run."""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otpatch.engine.canonical import canonical_hash, canonical_json, sha256_hex
from otpatch.engine.errors import InputError, JournalError

LOG = logging.getLogger(__name__)
_json_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses

FILENAME = "journal.sqlite"
GENESIS_HASH = "0" * 64
FAULT_ENV = "OTPATCH_FAULT_KILL"
WAL_PAGES = 100  # see _connect
BUSY_TIMEOUT_S = 30.0  # another process may hold the write lock across a staged step
ENTRY_COLUMNS = ("seq", "run_id", "ts", "source", "category", "event_type", "result",
                 "payload", "prev_hash", "hash")
HEAD_COLUMNS = ("one", "seq", "hash")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL,
  ts TEXT NOT NULL, source TEXT NOT NULL, category TEXT NOT NULL, event_type TEXT NOT NULL,
  result TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS entries_by_run ON entries (run_id, seq);
CREATE TABLE IF NOT EXISTS head (one INTEGER PRIMARY KEY CHECK (one = 1),
  seq INTEGER NOT NULL, hash TEXT NOT NULL);
INSERT OR IGNORE INTO head (one, seq, hash) VALUES (1, 0, '{GENESIS_HASH}');
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
  BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
  BEGIN SELECT RAISE(ABORT, 'journal entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS head_no_delete BEFORE DELETE ON head
  BEGIN SELECT RAISE(ABORT, 'the journal head cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS head_forward_only BEFORE UPDATE ON head WHEN NEW.seq <= OLD.seq
  BEGIN SELECT RAISE(ABORT, 'the journal head only moves forward'); END;
"""
SELECT_HEAD = "SELECT seq, hash FROM head"
INSERT_ENTRY = f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({', '.join('?' * 10)})"
UPDATE_HEAD = "UPDATE head SET seq = ?, hash = ? WHERE one = 1"
SELECT_ENTRIES = f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries"
SELECT_RUNS = """
SELECT g.run_id, f.ts, l.ts, g.n, l.event_type, l.result
FROM (SELECT run_id, MIN(seq) AS first, MAX(seq) AS last, COUNT(*) AS n
      FROM entries GROUP BY run_id) AS g
JOIN entries AS f ON f.seq = g.first JOIN entries AS l ON l.seq = g.last
ORDER BY g.first
"""
RUN_ID_RE = re.compile(r"r-\d{8}T\d{6}-[0-9a-f]{6}")


def default_home() -> Path:
    """Where the journal lives: $OTPATCH_HOME, else ./.otpatch."""
    return Path(os.environ.get("OTPATCH_HOME") or ".otpatch")


def new_run_id() -> str:
    """A fresh run id: UTC time to the second plus 6 random hex digits, r-20261126T012233-3fa9c2."""
    return datetime.now(timezone.utc).strftime("r-%Y%m%dT%H%M%S-") + secrets.token_hex(3)


def check_run_id(text: str) -> str:
    """Return text if it is a well-formed run id; raise InputError otherwise."""
    if not isinstance(text, str) or not RUN_ID_RE.fullmatch(text):
        raise InputError(f"bad run id {text!r}: expected r-YYYYMMDDTHHMMSS-xxxxxx")
    return text


@dataclass(frozen=True)
class Entry:
    """One journal entry: the IEC 62443-3-3 SR 2.8 audit fields (seq is the event id)."""

    seq: int
    run_id: str
    ts: str  # UTC ISO 8601 with microseconds, wall clock when recorded
    source: str  # "engine", "module:m580.identity", "operator:alice"
    category: str  # run | state | gate | step | checkpoint | attest | system
    event_type: str  # run_started, step_intent, step_result, transition, run_ended, ...
    result: str  # success | failure | intent | refused | info
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        """What the hash covers: every field but the hash itself."""
        return {"seq": self.seq, "run_id": self.run_id, "ts": self.ts, "source": self.source,
                "category": self.category, "event_type": self.event_type,
                "result": self.result, "payload": self.payload, "prev_hash": self.prev_hash}


@dataclass(frozen=True)
class RunSummary:
    """One line of a `status` listing."""

    run_id: str
    started: str  # ts of the first entry
    last_ts: str
    entries: int
    last_event_type: str
    last_result: str


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of re-checking every hash and link; each problem names its entry."""

    ok: bool
    entries_checked: int
    problems: list[str]


def _parse_fault(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    when, _, n = value.partition(":")
    if when not in ("before", "after") or not n.isdigit() or int(n) < 1:
        raise InputError(f"bad {FAULT_ENV} {value!r}: expected before:N or after:N")
    return when, int(n)


def _connect(path: Path, *, create: bool, read_only: bool = False) -> sqlite3.Connection:
    """Open the journal file and check it is one; one clear JournalError line if not."""
    if not create and not path.is_file():
        raise InputError(f"no journal at {path}")
    mode = "ro" if read_only else ("rwc" if create else "rw")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True,
                               timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as e:
        raise JournalError(f"{path}: cannot open the journal: {e}") from e
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not read_only:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            # Checkpoint every WAL_PAGES pages, so commits soon overwrite WAL pages already
            # on disk instead of growing the file: each fsync then has no file-size change
            # to write, and a durable commit costs about half (bench/engine_overhead.py).
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
            if not tables:
                conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
                tables = {"entries", "head"}
        for table, columns in (("entries", ENTRY_COLUMNS), ("head", HEAD_COLUMNS)):
            found = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
            if found != columns:
                what = "has no table" if table not in tables else "has the wrong columns in"
                raise JournalError(f"{path}: not an otpatch journal: it {what} {table!r}")
    except sqlite3.OperationalError as e:  # locked, read-only, disk full: a file we cannot use
        conn.close()
        raise JournalError(f"{path}: cannot use the journal: {e}") from e
    except sqlite3.DatabaseError as e:  # "file is not a database" and other corruption
        conn.close()
        raise JournalError(f"{path}: not an otpatch journal: {e}") from e
    except JournalError:
        conn.close()
        raise
    return conn


class Journal:
    """The append-only, hash-chained journal at <home>/journal.sqlite (WAL, synchronous=FULL).

    One global chain across all runs: entry N carries the hash of entry N-1, and the `head`
    row, written in the same transaction as every commit, records the newest entry so that
    dropping entries from the end is detected too. Triggers refuse UPDATE and DELETE; a
    tamperer can drop them, so `verify` is what detects tampering.

    Test hook: if the environment variable OTPATCH_FAULT_KILL is "before:N" or "after:N"
    when the journal is opened, the process sends itself SIGKILL right before, or right
    after, the N-th commit of entries this object performs (counted from 1). The crash
    tests use it to kill a real process at each journal boundary.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, fault: tuple[str, int] | None):
        self.path = path
        self._conn = conn
        self._fault = fault
        self._head: tuple[int, str] = (0, GENESIS_HASH)  # valid only inside a transaction
        self._staged = 0
        self._run_ids: set[str] = set()  # run ids already checked
        self.commits = 0  # commits of entries performed by this object

    @classmethod
    def open(cls, home: Path, *, create: bool = True) -> Journal:
        """Open the journal under home, creating it if create; with create=False, InputError
        if there is none. JournalError if the file is not an otpatch journal."""
        fault = _parse_fault(os.environ.get(FAULT_ENV))
        if create:
            try:
                home.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise JournalError(f"{home}: cannot make the journal directory: {e}") from e
        path = home / FILENAME
        return cls(_connect(path, create=create), path, fault)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, run_id: str, *, source: str, category: str, event_type: str,
               result: str, payload: dict[str, Any], durable: bool = True) -> Entry:
        """Record one entry. durable=False stages it in the open transaction; the next durable
        append (or flush) commits every staged entry and itself in one commit."""
        if run_id not in self._run_ids:
            self._run_ids.add(check_run_id(run_id))
        try:
            if not isinstance(payload, dict):
                raise TypeError(f"a {type(payload).__name__}, not a dict")
            payload_text = canonical_json(payload)
        except (TypeError, ValueError) as e:
            raise JournalError(f"{event_type} entry of run {run_id}: bad payload: {e}") from e
        if not self._conn.in_transaction:
            self._begin()
        seq, ts = self._head[0] + 1, datetime.now(timezone.utc).isoformat(timespec="microseconds")
        prev_hash = self._head[1]
        content = _content_text(seq, run_id, ts, source, category, event_type, result,
                                payload_text, prev_hash)
        # The payload handed back is the caller's: callers build a fresh dict per entry.
        entry = Entry(seq, run_id, ts, source, category, event_type, result, payload,
                      prev_hash, sha256_hex(content))
        try:
            self._conn.execute(INSERT_ENTRY, (seq, run_id, ts, source, category,
                                              event_type, result, payload_text,
                                              entry.prev_hash, entry.hash))
        except sqlite3.Error as e:
            self._abandon()
            raise JournalError(f"{self.path}: cannot append entry #{seq}: {e}") from e
        self._head = (seq, entry.hash)
        self._staged += 1
        if durable:
            self.flush()
        return entry

    def flush(self) -> None:
        """Commit staged entries, if any, together with the head row."""
        if not self._staged:
            return
        n = self.commits + 1
        try:
            self._conn.execute(UPDATE_HEAD, self._head)
            self._kill_if(("before", n))
            self._conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._abandon()
            raise JournalError(f"{self.path}: cannot commit entry #{self._head[0]}: {e}") from e
        self.commits, self._staged = n, 0
        self._kill_if(("after", n))

    def entries(self, run_id: str | None = None) -> list[Entry]:
        """Entries in seq order, all or one run's; InputError if the run has none."""
        if run_id is None:
            rows = self._conn.execute(SELECT_ENTRIES + " ORDER BY seq").fetchall()
        else:
            check_run_id(run_id)
            rows = self._conn.execute(SELECT_ENTRIES + " WHERE run_id = ? ORDER BY seq",
                                      (run_id,)).fetchall()
            if not rows:
                raise InputError(f"no run {run_id!r} in {self.path}")
        try:
            return [Entry(*r[:7], json.loads(r[7]), *r[8:]) for r in rows]
        except ValueError as e:
            raise JournalError(f"{self.path}: an entry payload is not JSON ({e}); "
                               "run `otpatch journal verify`") from e

    def runs(self) -> list[RunSummary]:
        """One summary per run, in the order the runs started."""
        return [RunSummary(*r) for r in self._conn.execute(SELECT_RUNS)]

    def verify(self) -> VerifyReport:
        """Re-read the file through a fresh read-only connection and check every entry's
        hash, every link to the entry before, seq contiguity and the head row."""
        conn = _connect(self.path, create=False, read_only=True)
        try:
            heads = conn.execute(SELECT_HEAD).fetchall()
            problems, last, checked = [], (0, GENESIS_HASH), 0
            for row in conn.execute(SELECT_ENTRIES + " ORDER BY seq"):
                problems += _check_entry(row, last)
                last, checked = (row[0], row[9]), checked + 1
        finally:
            conn.close()
        problems += _check_head(heads, last)
        return VerifyReport(not problems, checked, problems)

    def close(self) -> None:
        """Commit staged entries, then close the file."""
        try:
            self.flush()
        finally:
            self._conn.close()

    def _begin(self) -> None:
        """Take the write lock and re-read the head: another process may have appended."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            heads = self._conn.execute(SELECT_HEAD).fetchall()
        except sqlite3.Error as e:
            self._abandon()
            raise JournalError(f"{self.path}: cannot start a write: {e}") from e
        if len(heads) != 1:
            self._abandon()
            raise JournalError(f"{self.path}: the head row is missing; "
                               "run `otpatch journal verify` before appending")
        self._head = heads[0]

    def _abandon(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        if self._staged:
            LOG.error("journal %s: %d staged entries were not written", self.path, self._staged)
        self._staged = 0

    def _kill_if(self, point: tuple[str, int]) -> None:
        if self._fault == point:
            os.kill(os.getpid(), signal.SIGKILL)


def _content_text(seq: int, run_id: str, ts: str, source: str, category: str,
                  event_type: str, result: str, payload_text: str, prev_hash: str) -> str:
    """canonical_json(entry.content()) (what the hash covers; verify() recomputes it that
    way), written out directly: sorted keys, no spaces, strings as json.dumps writes them
    with ensure_ascii=False, the payload's canonical text spliced in as serialised once."""
    q = _json_string
    return (f'{{"category":{q(category)},"event_type":{q(event_type)},'
            f'"payload":{payload_text},"prev_hash":{q(prev_hash)},"result":{q(result)},'
            f'"run_id":{q(run_id)},"seq":{int(seq)},"source":{q(source)},"ts":{q(ts)}}}')


def _check_entry(row: tuple[Any, ...], last: tuple[int, str]) -> list[str]:
    """The problems of one stored row, given the seq and hash of the row before it."""
    seq, run_id, event_type, payload_text, prev_hash, stored = (
        row[0], row[1], row[5], row[7], row[8], row[9])
    name = f"entry #{seq} (run {run_id}, {event_type})"
    problems = []
    if seq > last[0] + 1:
        gap = f"#{last[0] + 1}" if seq == last[0] + 2 else f"#{last[0] + 1}-#{seq - 1}"
        problems.append(f"{'entry' if '-' not in gap else 'entries'} {gap} missing (seq gap)")
    try:
        payload = json.loads(payload_text)
        entry = Entry(*row[:7], payload, prev_hash, stored)
        if not isinstance(payload, dict) or canonical_json(payload) != payload_text:
            problems.append(f"{name}: payload is not a canonical JSON object (edited)")
        elif canonical_hash(entry.content()) != stored:
            problems.append(f"{name}: hash does not match its content (edited)")
    except (TypeError, ValueError):
        problems.append(f"{name}: payload is not JSON (edited)")
    if prev_hash != last[1]:
        before = f"entry #{last[0]}" if last[0] else "the start of the chain"
        problems.append(f"entry #{seq}: prev_hash does not match {before} "
                        "(reordered or entry removed before it)")
    return problems


def _check_head(heads: list[tuple[int, str]], last: tuple[int, str]) -> list[str]:
    """The head row must name the newest entry, by seq and hash."""
    if not heads:
        return ["head row missing"]
    if len(heads) > 1:
        return [f"{len(heads)} head rows, expected exactly one"]
    (head_seq, head_hash), (last_seq, last_hash) = heads[0], last
    if head_seq > last_seq:
        gap = f"entry #{head_seq}" if head_seq == last_seq + 1 else \
            f"entries #{last_seq + 1}-#{head_seq}"
        return [f"{gap} missing at the end: head records #{head_seq} ({head_hash[:12]}…), "
                f"the journal ends at #{last_seq} (entries deleted)"]
    if head_seq < last_seq:
        return [f"entries #{head_seq + 1}-#{last_seq} are not recorded in the head "
                f"(head records #{head_seq}: added outside otpatch or head edited)"]
    if head_hash != last_hash:
        return [f"head row does not match entry #{last_seq}: hash differs "
                "(head edited or last entry replaced)"]
    return []
