"""The run journal: append-only, hash-chained, durable SQLite record of every run."""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from otpatch.modules.contract.canonical import canonical_json, sha256_hex
from otpatch.modules.contract.errors import InputError, JournalError, clip
from otpatch.engine.journalfile import (  # noqa: F401 (Entry, FILENAME... are used by callers)
    BUSY_TIMEOUT_S, ENTRY_COLUMNS, FILENAME, GENESIS_HASH, HEAD_COLUMNS, INSERT_ENTRY, SCHEMA,
    SELECT_ENTRIES, SELECT_HEAD, SELECT_RUNS, UPDATE_HEAD, WAL_PAGES, Entry, RunSummary,
    VerifyReport, check_home, connect, content_text, this_host)

FAULT_ENV = "OTPATCH_FAULT_KILL"

LOG = logging.getLogger(__name__)

RUN_ID_RE = re.compile(r"r-\d{8}T\d{6}-[0-9a-f]{6}")


def default_home() -> Path:
    """Where the journal lives: $OTPATCH_HOME, else ./.otpatch; InputError for a path that
    cannot be one (not UTF-8, a name over 255 bytes, an existing file that is no folder)."""
    home = Path(os.environ.get("OTPATCH_HOME") or ".otpatch")
    check_home(home)
    return home


def new_run_id() -> str:
    """A fresh run id: UTC time to the second plus 6 random hex digits, r-20261126T012233-3fa9c2."""
    return datetime.now(timezone.utc).strftime("r-%Y%m%dT%H%M%S-") + secrets.token_hex(3)


def check_run_id(text: str) -> str:
    """Return text if it is a well-formed run id; raise InputError otherwise."""
    if not isinstance(text, str) or not RUN_ID_RE.fullmatch(text):
        raise InputError(f"bad run id {clip(repr(text))}: expected r-YYYYMMDDTHHMMSS-xxxxxx")
    return text


def _parse_fault(value: str | None, home: Path) -> tuple[str, int] | None:
    """The test hook's kill point for the journal under `home`: "before:N" / "after:N" for
    every journal the process opens, "...@HOME" for the one under HOME only (a fleet test
    kills a site's run, not the fleet journal's writer)."""
    if not value:
        return None
    point, _, only = value.partition("@")
    when, _, n = point.partition(":")
    if when not in ("before", "after") or not n.isdigit() or int(n) < 1:
        raise InputError(f"bad {FAULT_ENV} {value!r}: expected before:N or after:N, "
                         "optionally @HOME")
    if only and Path(only).resolve() != Path(home).resolve():
        return None
    return when, int(n)


class Journal:
    """The append-only, hash-chained journal at <home>/journal.sqlite (WAL, synchronous=FULL).

    One global chain across all runs: entry N carries the hash of entry N-1, and the `head`
    row, written in the same transaction as every commit, records the newest entry so that
    dropping entries from the end is detected too. Triggers refuse UPDATE and DELETE; a
    tamperer can drop them, so `verify` is what detects tampering.

    Test hook: if the environment variable OTPATCH_FAULT_KILL is "before:N" or "after:N"
    (optionally "@HOME": only the journal under HOME) when the journal is opened, the
    process sends itself SIGKILL right before, or right after, the N-th commit of entries
    this object performs (counted from 1). The crash tests use it to kill a real process
    at each journal boundary.
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
        self.operator: str | None = None  # who acts, named in every entry (acting_as)
        self.host = this_host()

    @classmethod
    def open(cls, home: Path, *, create: bool = True, read_only: bool = False) -> Journal:
        """Open the journal under home, creating it if create; with create=False, InputError
        if there is none. JournalError if the file is not an otpatch journal. read_only
        (implies create=False): for commands that only read; nothing in the file changes."""
        fault = _parse_fault(os.environ.get(FAULT_ENV), home)
        create = create and not read_only
        if create:
            try:
                home.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise JournalError(f"{home}: cannot make the journal directory: {e}") from e
        path = home / FILENAME
        return cls(connect(path, create=create, read_only=read_only), path, fault)

    def acting_as(self, operator: str | None, host: str | None = None) -> Journal:
        """Who acts through this journal from now on (IEC 62443-3-3 SR 2.8): the person by
        name (None: nobody was named) and where (default login@hostname of this process);
        every entry appended after it, checkpoints included, names both."""
        self.operator = operator
        if host is not None:
            self.host = host
        return self

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
        operator, host = self.operator, self.host
        content = content_text(seq, run_id, ts, source, category, event_type, result,
                                payload_text, prev_hash, operator, host)
        # The payload handed back is the caller's: callers build a fresh dict per entry.
        entry = Entry(seq, run_id, ts, source, category, event_type, result, payload,
                      prev_hash, sha256_hex(content), operator, host)
        try:
            self._conn.execute(INSERT_ENTRY, (seq, run_id, ts, source, category,
                                              event_type, result, payload_text,
                                              entry.prev_hash, entry.hash, operator, host))
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

    def entries(self, run_id: str | None = None, *,
                seqs: tuple[int, int] | None = None) -> list[Entry]:
        """Entries in seq order: all, one run's (InputError if the run has none), or those
        numbered first to last (`seqs`, both included: a span of the chain)."""
        if seqs is not None:
            rows = self._conn.execute(SELECT_ENTRIES + " WHERE seq BETWEEN ? AND ? ORDER BY "
                                      "seq", seqs).fetchall()
        elif run_id is None:
            rows = self._conn.execute(SELECT_ENTRIES + " ORDER BY seq").fetchall()
        else:
            check_run_id(run_id)
            rows = self._conn.execute(SELECT_ENTRIES + " WHERE run_id = ? ORDER BY seq",
                                      (run_id,)).fetchall()
            if not rows:
                raise InputError(f"no run {run_id!r} in {self.path}")
        return self._decoded(rows)

    def entry_hashed(self, entry_hash: str) -> Entry | None:
        """The entry whose hash is `entry_hash` (hex), or None: how a record is found."""
        rows = self._conn.execute(SELECT_ENTRIES + " WHERE hash = ? ORDER BY seq LIMIT 1",
                                  (entry_hash,)).fetchall()
        return self._decoded(rows)[0] if rows else None

    def _decoded(self, rows: list[tuple[Any, ...]]) -> list[Entry]:
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
