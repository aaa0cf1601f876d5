"""The journal's file: where it may live, its tables (and their migration from older
versions), its entries and who writes them, the check that a file is one, and how it is
made. engine/journal.py appends to it; engine/journal_verify.py re-checks it."""
from __future__ import annotations

import getpass
import json
import os
import secrets
import socket
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otpatch.modules.contract.errors import InputError, JournalError, clip

_json_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses

FILENAME = "journal.sqlite"
GENESIS_HASH = "0" * 64
WAL_PAGES = 100  # see _connect
BUSY_TIMEOUT_S = 30.0  # another process may hold the write lock across a staged step
ENTRY_COLUMNS = ("seq", "run_id", "ts", "source", "category", "event_type", "result",
                 "payload", "prev_hash", "hash", "operator", "host")
# Journals written before entries named operator and host have only the first ten; they are
# read through a view that adds both as NULL, and migrated when opened for writing.
OLD_ENTRY_COLUMNS = ENTRY_COLUMNS[:10]
AUDIT_COLUMNS = ENTRY_COLUMNS[10:]
HEAD_COLUMNS = ("one", "seq", "hash")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL,
  ts TEXT NOT NULL, source TEXT NOT NULL, category TEXT NOT NULL, event_type TEXT NOT NULL,
  result TEXT NOT NULL, payload TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
  operator TEXT, host TEXT);
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
INSERT_ENTRY = f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({', '.join('?' * 12)})"
UPDATE_HEAD = "UPDATE head SET seq = ?, hash = ? WHERE one = 1"
SELECT_ENTRIES = f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries"
SELECT_RUNS = """
SELECT g.run_id, f.ts, l.ts, g.n, l.event_type, l.result
FROM (SELECT run_id, MIN(seq) AS first, MAX(seq) AS last, COUNT(*) AS n
      FROM entries GROUP BY run_id) AS g
JOIN entries AS f ON f.seq = g.first JOIN entries AS l ON l.seq = g.last
ORDER BY g.first
"""


NAME_MAX = 255  # bytes in one file name, on every file system otpatch runs on


def check_home(home: Path) -> None:
    """InputError for a home that cannot hold the journal: not UTF-8, a name over 255
    bytes, an existing file that is no folder."""
    shown = f"OTPATCH_HOME={clip(os.fsencode(home).decode('utf-8', 'backslashreplace'))}"
    try:
        names = [part.encode("utf-8") for part in home.parts]
    except UnicodeEncodeError:
        raise InputError(f"{shown}: not UTF-8 text") from None
    if too_long := [n for n in names if len(n) > NAME_MAX]:
        raise InputError(f"{shown}: a name in it is {len(too_long[0])} bytes long, over "
                         f"the {NAME_MAX}-byte limit for a file name")
    try:
        mode = home.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise InputError(f"{shown}: cannot use it: {e.strerror or e}") from None
    if not stat.S_ISDIR(mode):
        from otpatch.modules.contract.files import kind_of

        what = "a regular file" if stat.S_ISREG(mode) else kind_of(mode)
        raise InputError(f"{shown}: not a directory ({what})")


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
    operator: str | None = None  # the person acting, by name; None: nobody was named
    host: str | None = None  # where it was written: login@hostname (None: an older otpatch)

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
        """What the hash covers: every field but the hash itself. An entry naming neither
        operator nor host (written before entries carried them) is covered as it was then,
        so its hash still verifies; any other entry's hash covers both."""
        content = {"seq": self.seq, "run_id": self.run_id, "ts": self.ts,
                   "source": self.source, "category": self.category,
                   "event_type": self.event_type, "result": self.result,
                   "payload": self.payload, "prev_hash": self.prev_hash}
        if self.operator is not None or self.host is not None:
            content.update(operator=self.operator, host=self.host)
        return content


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
        old_format = _check_tables(conn, path)
        if read_only and old_format:
            _read_as_new(conn)
        if not read_only:  # only once the file is known to be a journal
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            # Checkpoint every WAL_PAGES pages, so commits soon overwrite WAL pages already
            # on disk instead of growing the file: each fsync then has no file-size change
            # to write, and a durable commit costs about half (bench/engine_overhead.py).
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
            if old_format:
                _migrate(conn)
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


def _check_tables(conn: sqlite3.Connection, path: Path) -> bool:
    """JournalError unless the file has the journal's tables; True if its entries lack the
    audit columns (a journal of an older otpatch)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    old_format = False
    for table, columns in (("entries", ENTRY_COLUMNS), ("head", HEAD_COLUMNS)):
        found = tuple(r[1] for r in conn.execute(f"PRAGMA main.table_info({table})"))
        if table == "entries" and found == OLD_ENTRY_COLUMNS:
            old_format = True
        elif found != columns:
            what = "has no table" if table not in tables else "has the wrong columns in"
            shown = ", ".join(sorted(tables)) or "none"
            raise JournalError(f"{path}: not an otpatch journal: it {what} {table!r} "
                               f"(its tables: {shown}); left as it is")
    return old_format


def _read_as_new(conn: sqlite3.Connection) -> None:
    """A read-only look at an older journal must change nothing in it: a view in the
    connection's own temporary schema, which SQLite searches before the file's, shows its
    entries with operator and host NULL, so every reader sees one shape."""
    old = ", ".join(OLD_ENTRY_COLUMNS)
    conn.execute(f"CREATE TEMP VIEW entries AS SELECT {old}, NULL AS operator, NULL AS host "
                 "FROM main.entries")


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the audit columns to an older journal opened for writing (its entries keep
    NULL in both, and their hashes verify as before); under the write lock, columns
    re-read, so two processes opening it at once add them once."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = {r[1] for r in conn.execute("PRAGMA main.table_info(entries)")}
        for column in AUDIT_COLUMNS:
            if column not in found:
                conn.execute(f"ALTER TABLE entries ADD COLUMN {column} TEXT")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def this_host() -> str:
    """Where an entry is written: login@hostname. getpass raises when the login has no name
    (no user database entry and no LOGNAME/USER, as in some containers): "unknown" then,
    rather than no entry at all."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError, ImportError):
        login = ""
    return f"{login or 'unknown'}@{socket.gethostname() or 'unknown-host'}"


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
                  event_type: str, result: str, payload_text: str, prev_hash: str,
                  operator: str | None = None, host: str | None = None) -> str:
    """canonical_json(entry.content()) (what the hash covers; verify() recomputes it that
    way), written out directly: sorted keys, no spaces, strings as json.dumps writes them
    with ensure_ascii=False, the payload's canonical text spliced in as serialised once.
    Operator and host appear unless both are None (Entry.content says why)."""
    q = _json_string
    audit = "" if operator is None and host is None else (
        f'"host":{"null" if host is None else q(host)},'
        f'"operator":{"null" if operator is None else q(operator)},')
    return (f'{{"category":{q(category)},"event_type":{q(event_type)},{audit}'
            f'"payload":{payload_text},"prev_hash":{q(prev_hash)},"result":{q(result)},'
            f'"run_id":{q(run_id)},"seq":{int(seq)},"source":{q(source)},"ts":{q(ts)}}}')
