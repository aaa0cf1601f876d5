"""What the checks said about a CSAF file, cached in SQLite by the SHA-256 of the file's bytes."""
from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otpatch.modules.advisories import conformance
from otpatch.modules.advisories.conformance import FailedTest, Verdict
from otpatch.modules.advisories.schema import SchemaProblem, schema_digest, schema_problems

LOG = logging.getLogger(__name__)
CACHE_FILE = Path("cache") / "csaf-verdicts.sqlite"  # under $OTPATCH_HOME
# Bump when what a verdict holds, or how it is worded (schema.py's messages, conformance.py's
# paths), changes: a verdict of an older format is recomputed, never read.
VERDICT_FORMAT = 1
BUSY_TIMEOUT = 10.0  # seconds another otpatch may hold the write lock
_SCHEMA = """CREATE TABLE IF NOT EXISTS verdicts (
    sha256 TEXT NOT NULL, version TEXT NOT NULL, verdict TEXT NOT NULL,
    PRIMARY KEY (sha256, version))"""


@dataclass(frozen=True)
class FileVerdict:
    """What the checks said about one file's bytes: its schema problems, and the CSAF tests
    it fails (None when the schema check failed and the tests were not run)."""

    schema: tuple[SchemaProblem, ...]
    conformance: Verdict | None


def judge(document: Any) -> FileVerdict:
    """Run the checks on a parsed document: our schema first, then the CSAF tests."""
    problems = tuple(schema_problems(document))
    return FileVerdict(problems, None if problems else conformance.check(document))


def version_key() -> str:
    """What a verdict depends on besides the bytes: our format, the csaf package, our schema."""
    return f"{VERDICT_FORMAT}/csaf-{conformance.csaf_version()}/schema-{schema_digest()[:16]}"


def encode(verdict: FileVerdict) -> str:
    failed = None if verdict.conformance is None else [
        [t.test_id, t.title, t.path, t.message, t.more] for t in verdict.conformance.failed]
    return json.dumps({"schema": [[p.path, p.reason] for p in verdict.schema],
                       "failed": failed}, ensure_ascii=False)


def decode(text: str) -> FileVerdict:
    """The verdict `encode` wrote; ValueError, TypeError or KeyError for anything else."""
    data = json.loads(text)
    schema = tuple(SchemaProblem(str(path), str(reason)) for path, reason in data["schema"])
    failed = data["failed"]
    if failed is None and not schema:
        raise ValueError("neither schema problems nor the CSAF tests' verdict")
    tests = None if failed is None else Verdict(tuple(
        FailedTest(str(i), str(title), str(path), str(message), int(more))
        for i, title, path, message, more in failed))
    return FileVerdict(schema, tests)


class VerdictCache:
    """The verdicts of files already checked, by SHA-256 and version key, in one SQLite file
    shared by every otpatch run of a home. Lookups read at once; new verdicts are written in
    one transaction when the run closes the cache. A cache that cannot be opened, read or
    written is warned about once, then left alone: the run validates without it."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self.hits = self.misses = 0
        self._db: sqlite3.Connection | None = None
        self._new: dict[str, str] = {}
        self._version = ""
        self._broken = self.path is None

    def __enter__(self) -> VerdictCache:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def verdict(self, digest: str, document: Any) -> FileVerdict:
        """The cached verdict of bytes with this SHA-256, else the checks' (then cached)."""
        found = self._lookup(digest)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        verdict = judge(document)
        if not self._broken:
            self._new[digest] = encode(verdict)
        return verdict

    def close(self) -> None:
        """Write the new verdicts (one transaction) and close the file."""
        if self._new and self._connection() is not None:
            self._guarded("write", self._write)
        if self._db is not None:
            self._db.close()
            self._db = None
        self._new.clear()

    def _lookup(self, digest: str) -> FileVerdict | None:
        db = self._connection()
        if db is None:
            return None
        row = self._guarded("read", lambda: db.execute(
            "SELECT verdict FROM verdicts WHERE sha256 = ? AND version = ?",
            (digest, self._version)).fetchone())
        if not row:
            return None
        try:
            return decode(row[0])
        except (ValueError, TypeError, KeyError):  # a damaged row: checked again, rewritten
            return None

    def _connection(self) -> sqlite3.Connection | None:
        if self._db is None and not self._broken:
            self._db = self._guarded("open", self._open)
        return self._db

    def _open(self) -> sqlite3.Connection:
        self._version = version_key()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _write(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM verdicts WHERE version <> ?", (self._version,))
            db.executemany("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)",
                           [(d, self._version, v) for d, v in self._new.items()])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _guarded(self, what: str, action: Any) -> Any:
        """`action()`, or None once the cache has failed: warned about once, then unused."""
        if self._broken:
            return None
        try:
            return action()
        except (sqlite3.Error, OSError) as e:
            self._broken = True
            LOG.warning("verdict cache %s: cannot %s it (%s); validating without the cache "
                        "(delete the file to start a new one)", self.path, what, e)
            if self._db is not None:
                self._db.close()
                self._db = None
            return None
