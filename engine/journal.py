"""The run journal: append-only, hash-chained, durable SQLite record of every run."""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import stat
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from otpatch.engine.canonical import canonical_json, sha256_hex
from otpatch.engine.errors import InputError, JournalError, clip

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
    """Where the journal lives: $OTPATCH_HOME, else ./.otpatch; InputError for a path that
    cannot be one (not UTF-8, a name over 255 bytes, an existing file that is no folder)."""
    home = Path(os.environ.get("OTPATCH_HOME") or ".otpatch")
    _check_home(home)
    return home


NAME_MAX = 255  # bytes in one file name, on every file system otpatch runs on


def _check_home(home: Path) -> None:
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
        from otpatch.engine.files import kind_of

        what = "a regular file" if stat.S_ISREG(mode) else kind_of(mode)
        raise InputError(f"{shown}: not a directory ({what})")


def new_run_id() -> str:
    """A fresh run id: UTC time to the second plus 6 random hex digits, r-20261126T012233-3fa9c2."""
    return datetime.now(timezone.utc).strftime("r-%Y%m%dT%H%M%S-") + secrets.token_hex(3)


def check_run_id(text: str) -> str:
    """Return text if it is a well-formed run id; raise InputError otherwise."""
    if not isinstance(text, str) or not RUN_ID_RE.fullmatch(text):
        raise InputError(f"bad run id {clip(repr(text))}: expected r-YYYYMMDDTHHMMSS-xxxxxx")
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


def _parse_fault(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    when, _, n = value.partition(":")
    if when not in ("before", "after") or not n.isdigit() or int(n) < 1:
        raise InputError(f"bad {FAULT_ENV} {value!r}: expected before:N or after:N")
    return when, int(n)


def _connect(path: Path, *, create: bool, read_only: bool = False) -> sqlite3.Connection:
    """Open the journal file and check it is one, changing nothing in a file that is not
    (no schema written, no journal mode switched); one clear JournalError line if not.
    create: make a new journal if there is no file. read_only: a connection that cannot
    write (status, journal verify, journal checkpoints), so it sets no pragma either."""
    if not path.is_file():
        if not create or read_only:
            raise InputError(f"no journal at {path}")
        _create(path)
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


def _create(path: Path) -> None:
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

    _anchor: Any = None  # set by anchor_with: what signs the chain's head
    _anchored_at = 0  # seq of the newest chain checkpoint this object knows of

    def __init__(self, conn: sqlite3.Connection, path: Path, fault: tuple[str, int] | None):
        self.path = path
        self._conn = conn
        self._fault = fault
        self._head: tuple[int, str] = (0, GENESIS_HASH)  # valid only inside a transaction
        self._staged = 0
        self._run_ids: set[str] = set()  # run ids already checked
        self.commits = 0  # commits of entries performed by this object

    @classmethod
    def open(cls, home: Path, *, create: bool = True, read_only: bool = False) -> Journal:
        """Open the journal under home, creating it if create; with create=False, InputError
        if there is none. JournalError if the file is not an otpatch journal. read_only
        (implies create=False): for commands that only read; nothing in the file changes."""
        fault = _parse_fault(os.environ.get(FAULT_ENV))
        create = create and not read_only
        if create:
            try:
                home.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise JournalError(f"{home}: cannot make the journal directory: {e}") from e
        path = home / FILENAME
        return cls(_connect(path, create=create, read_only=read_only), path, fault)

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

    def record(self, run_id: str, event: Any, *, source: str = "engine",
               durable: bool = True) -> Entry:
        """Append a typed event (engine/events.py): its kind, category and outcome fill the
        entry's SR 2.8 fields, its payload is checked when the event is made."""
        return self.append(run_id, source=source, category=event.category,
                           event_type=event.kind, result=event.outcome(),
                           payload=event.payload(), durable=durable)

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

    def verify(self, *, trust: Any = None, against: Path | None = None) -> VerifyReport:
        """Re-read the file through a fresh read-only connection and check every entry's
        hash, every link to the entry before, seq contiguity and the head row, then every
        signed checkpoint (in the file, the copy beside it, and `against`, an exported
        list): its signature, its signer when there is a trust (engine/anchor.py Trust),
        and that the file still reaches it with the signed hash."""
        from otpatch.engine.journal_verify import verify

        return verify(self.path, trust=trust, against=against)

    def verify_quick(self, run_ids: Iterable[str] | None = ()) -> VerifyReport:
        """The check `resume`, `status` and `run` make before they act: from the newest
        signed checkpoint to the head, plus the content of the entries of `run_ids` (None:
        all) they are about to fold (engine/journal_verify.py)."""
        from otpatch.engine.journal_verify import verify_quick

        return verify_quick(self.path, run_ids)

    def last_committed(self) -> tuple[int, str, str]:
        """(seq, hash, event_type) of the newest committed entry; (0, genesis, "") if none."""
        row = self._conn.execute("SELECT seq, hash, event_type FROM entries "
                                 "ORDER BY seq DESC LIMIT 1").fetchone()
        return tuple(row) if row else (0, GENESIS_HASH, "")

    def anchor_with(self, anchor: Any) -> None:
        """Sign the chain's head through `anchor` (engine/anchor.py Anchor) whenever
        checkpoint_if_due finds CHECKPOINT_EVERY entries committed since the last one."""
        from otpatch.engine.anchor import CHECKPOINT_EVENT

        self._anchor = anchor
        row = self._conn.execute("SELECT seq FROM entries WHERE event_type = ? "
                                 "ORDER BY seq DESC LIMIT 1", (CHECKPOINT_EVENT,)).fetchone()
        self._anchored_at = row[0] if row else 0

    def checkpoint_if_due(self, run_id: str, elapsed: float = 0.0) -> Entry | None:
        """The interval checkpoint: called after each entry is written (the conductor's
        one place that writes); signs only between commits, never inside a transaction."""
        from otpatch.engine.anchor import CHECKPOINT_EVERY

        if getattr(self._anchor, "key", None) is None or self._conn.in_transaction:
            return None  # unanchored (said once, at the run's end), or between commits
        seq = self.last_committed()[0]
        if seq - self._anchored_at < CHECKPOINT_EVERY:
            return None
        entry = self._anchor.checkpoint(self, run_id, "interval", elapsed)
        self._anchored_at = entry.seq if entry is not None else seq
        return entry

    def checkpoint_run_end(self, run_id: str, elapsed: float = 0.0) -> Entry | None:
        """At a run's end (ended, paused, halted): sign the head, or say once that the
        journal is unanchored (no host key)."""
        return self._anchor.run_ended(self, run_id, elapsed) if self._anchor else None

    def require_intact(self, run_ids: Iterable[str] | None, doing: str) -> VerifyReport:
        """verify_quick, or JournalError (exit 1) naming the first problem: `resume`,
        `status` and `run` refuse a damaged journal before they fold or add to it."""
        report = self.verify_quick(run_ids)
        if not report.ok:
            more = len(report.problems) - 1
            raise JournalError(f"{doing}: refused: the journal {self.path} is damaged: "
                               f"{report.problems[0]}"
                               + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")
                               + "; run otpatch journal verify")
        return report

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
