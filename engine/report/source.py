"""Where a report's runs come from: this host's journal, or an evidence record (an
`otpatch-evidence/1` export, imported here or carried in a bundle), each checked.

Both paths give the same RunRecord for the same run: a local run that a signed checkpoint
covers is read through the very span an export would carry and checked as an import would
check it, so a report built here and the one verify-bundle rebuilds from the bundle's slice
are the same document. A change is a run and the evidence runs its sign-offs named (the lab
run, the staging run), followed through their own evidence."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otpatch.engine import evidence_store as store
from otpatch.engine.anchor import SignedCheckpoint
from otpatch.engine.journalfile import Entry
from otpatch.modules.contract.errors import InputError

MAX_CHANGE_RUNS = 20  # runs one change may chain (lab, staging, production, re-runs)


@dataclass(frozen=True)
class RunRecord:
    """One run as a report reads it: its own entries up to its record (its run_ended
    entry; all of them while it has none), the chain slice from its first entry to the
    signed checkpoint covering the record (() when none covers it), that checkpoint, where
    it was read, and whether it verified (if not, the problems say why)."""

    run_id: str
    entries: tuple[Entry, ...]
    span: tuple[Entry, ...]
    checkpoint: SignedCheckpoint | None
    source: str
    verified: bool
    problems: tuple[str, ...]

    @property
    def record(self) -> Entry | None:
        return store.record_entry(self.entries)


def load_run(home: Path, run_id: str) -> RunRecord:
    """A run of this host's journal, checked: InputError for a run it does not hold,
    JournalError for a damaged journal (nothing is reported from one). A run a signed
    checkpoint covers is checked through the span an export carries, exactly as
    from_export checks an imported one (export_document refuses a span that fails)."""
    from otpatch.engine.evidence_cli import export_document
    from otpatch.engine.journal import Journal, check_run_id
    from otpatch.engine.journalfile import FILENAME

    check_run_id(run_id)
    if not (home / FILENAME).is_file():
        raise InputError(f"run {run_id}: no journal at {home / FILENAME} (OTPATCH_HOME)")
    with Journal.open(home, read_only=True) as journal:
        mine = journal.entries(run_id)
        if not mine:
            raise InputError(f"run {run_id}: not in the journal {journal.path}; `otpatch "
                             "status` lists the runs")
        journal.require_intact([run_id], f"report {run_id}")
        record = store.record_entry(mine)
        signed = covering(journal, record) if record else None
        span = journal.entries(seqs=(mine[0].seq, signed.entries)) if signed else []
    own = _own(mine, record)
    if signed is None:
        return RunRecord(run_id, own, (), None, store.LOCAL, True, ())
    export_document(run_id, span, signed)  # checks the span as an import would; refuses
    return RunRecord(run_id, own, tuple(span), signed, store.LOCAL, True, ())


def _own(entries: list[Entry] | tuple[Entry, ...], record: Entry | None) -> tuple[Entry, ...]:
    end = record.seq if record else float("inf")
    return tuple(e for e in entries if e.seq <= end)


def covering(journal: Any, record: Entry) -> SignedCheckpoint | None:
    """The oldest signed checkpoint that covers the record entry and still matches the
    file (the one an export carries), or None."""
    from otpatch.engine.journal_verify import list_checkpoints

    for signed in sorted(list_checkpoints(journal.path), key=lambda s: s.entries):
        if signed.entries < record.seq:
            continue
        at = journal.entries(seqs=(signed.entries, signed.entries))
        if at and at[0].hash == signed.head_hash and signed.signature_valid():
            return signed
    return None


def from_export(doc: Any, trust: Any, source: str) -> RunRecord:
    """An otpatch-evidence/1 document, checked as an import checks it (with `trust`, its
    signer too; without, its signature only)."""
    checked = store.check_document(doc, trust)
    entries = checked.run_entries()
    span = tuple(checked.entries)
    return RunRecord(checked.run_id, entries, span, checked.checkpoint, source,
                     not checked.problems, tuple(checked.problems))


def load_change(home: Path, run_id: str) -> tuple[list[RunRecord], list[str]]:
    """A change: the run and every evidence run its record names, followed through their
    own evidence, oldest first (by their first entry's time), and the record hashes named
    that neither this journal nor the imported records hold."""
    from otpatch.engine.record import fold

    last = load_run(home, run_id)
    found, missing, queue = {last.run_id: last}, [], [last]
    while queue:
        record = queue.pop()
        for named in fold(record.run_id, record.entries).config.evidence or []:
            run = _evidence_run(home, named)
            if run is None:
                missing.append(store.shown(store.plain(named)))
            elif run.run_id not in found:
                if len(found) >= MAX_CHANGE_RUNS:
                    raise InputError(f"change {run_id}: more than {MAX_CHANGE_RUNS} runs "
                                     "chained by evidence")
                found[run.run_id] = run
                queue.append(run)
    runs = sorted(found.values(), key=lambda r: (r.entries[0].ts, r.run_id))
    return runs, sorted(set(missing))


def _evidence_run(home: Path, record_hash: str) -> RunRecord | None:
    """The evidence run with that record hash: this journal's, else an imported record."""
    from otpatch.engine.journal import Journal
    from otpatch.engine.journalfile import FILENAME

    entry_hash = store.plain(record_hash)
    if (home / FILENAME).is_file():
        with Journal.open(home, read_only=True) as journal:
            hit = journal.entry_hashed(entry_hash)
        if hit is not None and hit.event_type == store.RUN_ENDED:
            return load_run(home, hit.run_id)
    path = store.stored_path(home, entry_hash)
    if not path.is_file():
        return None
    from otpatch.modules.contract.files import read_regular

    raw = read_regular(path, store.MAX_EXPORT_BYTES, "evidence file")
    return from_export(store.parse(raw, str(path)), None, f"imported ({path.name})")
