"""The journal's file: its tables, its entries, the check that a file is one, and how
it is made. engine/journal.py appends to it; engine/journal_verify.py re-checks it."""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otpatch.modules.contract.errors import InputError, JournalError

_json_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses

FILENAME = "journal.sqlite"
GENESIS_HASH = "0" * 64
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

    def event(self) -> Any:
        """The typed event this entry records (engine/events.py); JournalError naming the
        entry if its payload does not fit its type."""
        from otpatch.engine.events import EventError, decode

        try:
            return decode(self.event_type, self.category, self.payload)
        except EventError as e:
            raise JournalError(f"entry #{self.seq} (run {self.run_id}, {self.event_type}) "
                               f"does not fit its type: {e}; run `otpatch journal verify`"
                               ) from None

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
    """The outcome of re-checking hashes, links and signed checkpoints; each problem names
    the entry (or the checkpoint list line) it is about."""

    ok: bool
    entries_checked: int
    problems: list[str]
    checkpoints: int = 0  # signed checkpoints found valid (file, copy, exported list)
    anchored: int = 0  # entries covered by the newest valid signed checkpoint
    notes: tuple[str, ...] = ()  # what was not checked, and why (never a problem)
    signed: tuple[Any, ...] = ()  # the SignedCheckpoints the check relied on


def connect(path: Path, *, create: bool, read_only: bool = False) -> sqlite3.Connection:
    """Open the journal file and check it is one, changing nothing in a file that is not
    (no schema written, no journal mode switched); one clear JournalError line if not.
    create: make a new journal if there is no file. read_only: a connection that cannot
    write (status, journal verify, journal checkpoints), so it sets no pragma either."""
    if not path.is_file():
        if not create or read_only:
            raise InputError(f"no journal at {path}")
        create_file(path)
    elif path.stat().st_size == 0:  # otpatch never leaves one (see _create): truncated
        raise JournalError(f"{path}: an empty file (0 bytes), not an otpatch journal: "
                           "truncated, or not made by otpatch; left as it is")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rw'}",
                               uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as e:
        raise JournalError(f"{path}: cannot open the journal: {e}") from e
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table, columns in (("entries", ENTRY_COLUMNS), ("head", HEAD_COLUMNS)):
            found = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
            if found != columns:
                what = "has no table" if table not in tables else "has the wrong columns in"
                shown = ", ".join(sorted(tables)) or "none"
                raise JournalError(f"{path}: not an otpatch journal: it {what} {table!r} "
                                   f"(its tables: {shown}); left as it is")
        if not read_only:  # only once the file is known to be a journal
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            # Checkpoint every WAL_PAGES pages, so commits soon overwrite WAL pages already
            # on disk instead of growing the file: each fsync then has no file-size change
            # to write, and a durable commit costs about half (bench/engine_overhead.py).
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
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


def create_file(path: Path) -> None:
    """A new, empty journal at path, made whole beside it and linked into place, so no
    process ever sees a half-made journal (nor otpatch a zero-byte one); if another process
    made it meanwhile, theirs stands."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
            conn.execute("PRAGMA journal_mode=WAL")  # kept in the file's header
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: the next best, not atomic
            if not path.exists():
                os.replace(tmp, path)
    except FileExistsError:
        pass
    except (OSError, sqlite3.Error) as e:
        raise JournalError(f"{path}: cannot create the journal: {e}") from e
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            leftover.unlink(missing_ok=True)


def content_text(seq: int, run_id: str, ts: str, source: str, category: str,
                  event_type: str, result: str, payload_text: str, prev_hash: str) -> str:
    """canonical_json(entry.content()) (what the hash covers; verify() recomputes it that
    way), written out directly: sorted keys, no spaces, strings as json.dumps writes them
    with ensure_ascii=False, the payload's canonical text spliced in as serialised once."""
    q = _json_string
    return (f'{{"category":{q(category)},"event_type":{q(event_type)},'
            f'"payload":{payload_text},"prev_hash":{q(prev_hash)},"result":{q(result)},'
            f'"run_id":{q(run_id)},"seq":{int(seq)},"source":{q(source)},"ts":{q(ts)}}}')
