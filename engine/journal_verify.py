"""Checking the journal: every hash, link and signed checkpoint (`journal verify`), or, fast,
what `resume`, `status` and `run` need before they read or add to it (`verify_quick`).

Both read through a fresh read-only connection inside one read transaction, so a writer
committing meanwhile is never mistaken for damage, and nothing in the file changes: a
damaged WAL is left as found for whoever investigates."""
from __future__ import annotations

import json
import sqlite3
import struct
from pathlib import Path
from typing import Any, Callable, Iterable

from otpatch.engine.events import EventError, decode
from otpatch.engine.anchor import (CHECKPOINT_EVENT, SignedCheckpoint, Trust, check_signed,
                                   copy_path, read_list)
from otpatch.modules.contract.canonical import canonical_hash, canonical_json
from otpatch.engine.journalfile import (GENESIS_HASH, SELECT_ENTRIES, SELECT_HEAD, Entry,
                                        VerifyReport, connect)

SELECT_LAST = "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1"
SELECT_LAST_MARK = SELECT_ENTRIES + " WHERE event_type = ? ORDER BY seq DESC LIMIT 1"
SELECT_MARKS = SELECT_ENTRIES + " WHERE event_type = ? ORDER BY seq"
SELECT_FROM = SELECT_ENTRIES + " WHERE seq >= ? ORDER BY seq"
SELECT_HASH = "SELECT hash FROM entries WHERE seq = ?"
WAL_ORDER = {0x377F0682: "<", 0x377F0683: ">"}  # WAL magic -> byte order of its checksums
Labelled = tuple[str, SignedCheckpoint]  # (where it was found, the checkpoint)


def verify(path: Path, *, trust: Trust | None = None,
           against: Path | None = None) -> VerifyReport:
    """Every entry's hash and link, seq contiguity, the head row; then every signed
    checkpoint in the file, in the copy beside it and in `against` (an exported list or the
    SIEM's lines): signature, signer (when there is a trust root), the file reaching it and
    still holding the signed hash."""
    lists, problems = _lists(path, against)
    problems += wal_problems(path)  # read before SQLite opens the WAL
    conn = connect(path, create=False, read_only=True)
    try:
        conn.execute("BEGIN")  # one snapshot, whatever a writer commits meanwhile
        heads = conn.execute(SELECT_HEAD).fetchall()
        walk = _Walk()
        for row in conn.execute(SELECT_ENTRIES + " ORDER BY seq"):
            walk.check(row)
        marks, trouble = _marks(walk.marks)
        found, bad = _check_all(marks + lists, _hash_at(conn), walk.last[0], trust)
        conn.execute("COMMIT")
    finally:
        conn.close()
    problems += walk.problems + _check_head(heads, walk.last) + trouble + bad
    anchored = max((s.entries for s in found), default=0)
    notes = _notes(path, walk, anchored, bool(marks), bool(marks or lists), trust)
    return VerifyReport(not problems, walk.checked, problems,
                        checkpoints=len({s.signature for s in found}), anchored=anchored,
                        notes=tuple(notes), signed=tuple(found))


def verify_quick(path: Path, run_ids: Iterable[str] | None = ()) -> VerifyReport:
    """Fast whatever the journal's size: the head row; the newest signed checkpoint in the
    file (signature, the entry it signed) and the chain from that entry to the head; the
    copy's checkpoints from there on (none ahead of the file); and the content of every
    entry of `run_ids` (None: of every run), which the caller is about to fold. Only an
    unanchored journal is walked from its start; `verify` checks everything."""
    copies, problems = _lists(path, None)
    problems += wal_problems(path)
    conn = connect(path, create=False, read_only=True)
    try:
        conn.execute("BEGIN")
        heads = conn.execute(SELECT_HEAD).fetchall()
        end = conn.execute(SELECT_LAST).fetchone() or (0, GENESIS_HASH)
        hash_at = _hash_at(conn)
        start, relied, trouble = _newest_anchor(conn, hash_at, end[0])
        walk = _Walk(start)
        for row in conn.execute(SELECT_FROM, (start,)):
            walk.check(row)
        later = [(w, s) for w, s in copies if s.entries >= start]
        found, bad = _check_all(later, hash_at, end[0], None)
        for row in _rows_before(conn, run_ids, start):
            trouble += check_content(row)
        conn.execute("COMMIT")
    finally:
        conn.close()
    problems += trouble + walk.problems + _check_head(heads, end) + bad
    return VerifyReport(not problems, walk.checked, problems, checkpoints=len(relied + found),
                        anchored=max((s.entries for s in relied + found), default=0),
                        signed=tuple(relied + found))


def list_checkpoints(path: Path) -> list[SignedCheckpoint]:
    """Every signed checkpoint the journal and its copy hold, oldest first, each once."""
    copies, _ = _lists(path, None)
    conn = connect(path, create=False, read_only=True)
    try:
        marks, _ = _marks(conn.execute(SELECT_MARKS, (CHECKPOINT_EVENT,)).fetchall())
    finally:
        conn.close()
    unique = {s.signature: s for _, s in marks + copies}
    return sorted(unique.values(), key=lambda s: (s.entries, s.signed_at))


def wal_problems(path: Path) -> list[str]:
    """A damaged frame in the journal's WAL with intact frames after it. SQLite reads the
    WAL only up to its first bad frame and silently drops the rest, so what the journal
    shows ends early; intact frames after a bad one mean those were committed (a crash
    while writing leaves a bad frame only at the very end)."""
    wal = path.with_name(path.name + "-wal")
    try:
        data = wal.read_bytes()
    except OSError:
        return []
    if len(data) < 32 or struct.unpack(">I", data[:4])[0] not in WAL_ORDER:
        return []
    order = WAL_ORDER[struct.unpack(">I", data[:4])[0]]
    page_size, salts = struct.unpack(">I", data[8:12])[0], data[16:24]
    size = 24 + page_size
    if _wal_checksum(data[:24], (0, 0), order) != struct.unpack(">2I", data[24:32]):
        frames = (len(data) - 32) // size if page_size >= 512 else 0
        return [f"{wal.name}: its header is damaged, so SQLite ignores all of it ({frames} "
                "frame(s)): entries committed there are lost from the journal"] if frames else []
    seed, bad, intact, commits = struct.unpack(">2I", data[24:32]), 0, 0, 0
    for n, at in enumerate(range(32, len(data) - size + 1, size), 1):
        if data[at + 8:at + 16] != salts:
            break  # a frame of an earlier WAL generation: SQLite stops here too
        stored = struct.unpack(">2I", data[at + 16:at + 24])
        ok = _wal_checksum(data[at:at + 8] + data[at + 24:at + size], seed, order) == stored
        seed = stored
        bad = bad or (0 if ok else n)
        if ok and bad:
            intact, commits = intact + 1, commits + (data[at + 4:at + 8] != b"\0" * 4)
    if not (bad and intact):
        return []
    return [f"{wal.name}: frame {bad} is damaged (its checksum fails) and {intact} intact "
            f"frame(s) follow it, {commits} of them commits: SQLite reads the WAL only up to "
            "the damaged frame, so entries committed after it are lost from the journal"]


def _wal_checksum(data: bytes, seed: tuple[int, int], order: str) -> tuple[int, int]:
    """SQLite's WAL checksum (fileformat.html, "Checksum Algorithm"), continued from seed."""
    s0, s1 = seed
    words = iter(struct.unpack(f"{order}{len(data) // 4}I", data))
    for a, b in zip(words, words):
        s0 = (s0 + a + s1) & 0xFFFFFFFF
        s1 = (s1 + b + s0) & 0xFFFFFFFF
    return s0, s1


class _Walk:
    """The chain walked in seq order from `start` (1: the genesis), problems collected."""

    def __init__(self, start: int = 1) -> None:
        self.start, self.checked = start, 0
        self.last: tuple[int, str] = (0, GENESIS_HASH)
        self.problems: list[str] = []
        self.marks: list[tuple[Any, ...]] = []
        self.last_plain = 0  # the newest entry that is not a chain checkpoint

    def check(self, row: tuple[Any, ...]) -> None:
        if not self.checked and self.start > 1:  # the signed entry: its own link is signed
            self.last = (self.start - 1, row[8])
        self.problems += _check_entry(row, self.last)
        if row[5] == CHECKPOINT_EVENT:
            self.marks.append(row)
        else:
            self.last_plain = row[0]
        self.last, self.checked = (row[0], row[9]), self.checked + 1


def _lists(path: Path, against: Path | None) -> tuple[list[Labelled], list[str]]:
    """The checkpoints kept outside the file: the copy beside it, and `against`."""
    found, problems = [], []
    copy = copy_path(path)
    for source, label in ((copy, copy.name), (against, None)):
        if source is not None and (source is against or source.exists()):
            more, trouble = read_list(source, label)
            found, problems = found + more, problems + trouble
    return found, problems


def _marks(rows: Iterable[tuple[Any, ...]]) -> tuple[list[Labelled], list[str]]:
    """The file's chain_checkpoint entries as signed checkpoints; a malformed one, or one
    signing itself or a later entry, is a problem naming the entry."""
    found, problems = [], []
    for row in rows:
        seq, where = row[0], f"entry #{row[0]} (run {row[1]}, {row[5]})"
        try:
            signed = SignedCheckpoint.from_dict(json.loads(row[7]))
        except ValueError as e:
            problems.append(f"{where}: not a signed checkpoint ({e})")
            continue
        if signed.entries >= seq:
            problems.append(f"{where}: signs entry #{signed.entries}, not one before it")
            continue
        found.append((where, signed))
    return found, problems


def _check_all(items: list[Labelled], hash_at: Callable[[int], str | None], last_seq: int,
               trust: Trust | None) -> tuple[list[SignedCheckpoint], list[str]]:
    """Oldest first, so a rewritten chain is located after the newest intact checkpoint."""
    good, problems, intact_to = [], [], 0
    for where, signed in sorted(items, key=lambda item: item[1].entries):
        trouble = check_signed(where, signed, hash_at, last_seq, trust, intact_to)
        problems += trouble
        if not trouble:
            good.append(signed)
            intact_to = max(intact_to, signed.entries)
    return good, problems


def _newest_anchor(conn: sqlite3.Connection, hash_at: Callable[[int], str | None],
                   last_seq: int) -> tuple[int, list[SignedCheckpoint], list[str]]:
    """Where the quick walk starts: the entry the file's newest checkpoint signed (1 if
    there is none), that checkpoint, and its problems."""
    row = conn.execute(SELECT_LAST_MARK, (CHECKPOINT_EVENT,)).fetchone()
    marks, problems = _marks([row] if row else [])
    if not marks:
        return 1, [], problems
    where, signed = marks[0]
    trouble = check_signed(where, signed, hash_at, last_seq, None)
    return (1, [], trouble) if trouble else (signed.entries, [signed], [])


def _rows_before(conn: sqlite3.Connection, run_ids: Iterable[str] | None,
                 start: int) -> Iterable[tuple[Any, ...]]:
    if run_ids is None:
        yield from conn.execute(SELECT_ENTRIES + " WHERE seq < ? ORDER BY seq", (start,))
        return
    for run_id in dict.fromkeys(run_ids):
        yield from conn.execute(SELECT_ENTRIES + " WHERE run_id = ? AND seq < ? ORDER BY seq",
                                (run_id, start))


def _hash_at(conn: sqlite3.Connection) -> Callable[[int], str | None]:
    def hash_at(seq: int) -> str | None:
        row = conn.execute(SELECT_HASH, (seq,)).fetchone()
        return row[0] if row else None
    return hash_at


def _notes(path: Path, walk: _Walk, anchored: int, in_file: bool, any_signed: bool,
           trust: Trust | None) -> list[str]:
    """What the report could not vouch for, said plainly (none of it is a problem)."""
    notes = []
    if not any_signed and walk.checked:
        notes.append("unanchored: no signed checkpoint, so a re-sealed chain, a cut tail or "
                     "a lost WAL would not show (`otpatch keygen --host`)")
    elif anchored and walk.last_plain > anchored:
        notes.append(f"the newest signed checkpoint covers #1-#{anchored}; the entries after "
                     f"it, to #{walk.last[0]}, are chained but not signed yet")
    if any_signed and trust is None:
        notes.append("signers not checked: no journal_hosts from an inventory (-i INVENTORY) "
                     "and no host key here")
    elif any_signed and trust.root == "this host":
        notes.append("signers checked against this host's own key only (-i INVENTORY checks "
                     "them against the journal hosts the site trusts)")
    if in_file and not copy_path(path).exists():
        notes.append(f"no checkpoint copy at {copy_path(path)}: only the file's own "
                     "checkpoints were checked")
    return notes


def _check_entry(row: tuple[Any, ...], last: tuple[int, str]) -> list[str]:
    """The problems of one stored row, given the seq and hash of the row before it."""
    seq, prev_hash = row[0], row[8]
    problems = []
    if seq > last[0] + 1:
        gap = f"#{last[0] + 1}" if seq == last[0] + 2 else f"#{last[0] + 1}-#{seq - 1}"
        problems.append(f"{'entry' if '-' not in gap else 'entries'} {gap} missing (seq gap)")
    problems += check_content(row)
    if prev_hash != last[1]:
        before = f"entry #{last[0]}" if last[0] else "the start of the chain"
        problems.append(f"entry #{seq}: prev_hash does not match {before} "
                        "(reordered or entry removed before it)")
    return problems


def check_content(row: tuple[Any, ...]) -> list[str]:
    """Whether a stored row's hash is the hash of its content (payload canonical JSON,
    operator and host included: engine/journalfile.py Entry.content), and whether the
    entry fits its type; `row` as SELECT_ENTRIES reads it (an exported entry too,
    engine/evidence_store.py)."""
    payload_text, stored = row[7], row[9]
    name = f"entry #{row[0]} (run {row[1]}, {row[5]})"
    try:
        payload = json.loads(payload_text)
        entry = Entry(*row[:7], payload, row[8], stored, *row[10:12])
        if not isinstance(payload, dict) or canonical_json(payload) != payload_text:
            return [f"{name}: payload is not a canonical JSON object (edited)"]
        if canonical_hash(entry.content()) != stored:
            return [f"{name}: hash does not match its content (edited)"]
    except (TypeError, ValueError):
        return [f"{name}: payload is not JSON (edited)"]
    try:
        decode(row[5], row[4], payload)
    except EventError as e:
        return [f"{name}: does not fit its type: {e}"]
    return []


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
