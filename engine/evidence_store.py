"""A run's record as evidence that travels (issue 11): its span of the chain, anchored by a
signed checkpoint, exported from one host's journal, verified and stored on another's, and
found again by its record hash, the hash of its newest `run_ended` entry.

The lab, staging and production runs of one change happen days apart, possibly on
different hosts; the production gate names the evidence runs by record hash. `find_run`
looks in this journal, then among the imported records, and re-verifies an imported one on
every lookup: a stored file can be edited after it was imported. Nothing here prints or
reads the environment; engine/evidence_cli.py is the command line."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from otpatch.engine import keys
from otpatch.engine.anchor import SignedCheckpoint, Trust, check_signed
from otpatch.engine.journalfile import ENTRY_COLUMNS, FILENAME, GENESIS_HASH, Entry
from otpatch.modules.contract.canonical import canonical_json
from otpatch.modules.contract.errors import InputError, clip

KIND = "otpatch-evidence/1"  # what an export says it is
FOLDER = "evidence"  # under $OTPATCH_HOME: <record hash>.json, one per imported run
MAX_EXPORT_BYTES = 64 * 1024 * 1024  # a span of the chain: tens of thousands of entries
RUN_STARTED, RUN_ENDED = "run_started", "run_ended"  # engine/events.py RunStarted, RunEnded
LOCAL = "this journal"
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class FoundRun:
    """A run found by its record hash: its entries (that run's only, in order, up to and
    including the record entry: engine/record.py `fold` rebuilds its progress from them),
    where it was found, and whether its record verified (if not, the problems say why)."""

    run_id: str
    record_hash: str  # hex, as the journal stores entry hashes (shown() adds "sha256:")
    entries: tuple[Entry, ...]
    source: str  # "this journal" | "imported from <host name> (<file>)"
    verified: bool
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Checked:
    """An export read and re-checked: the run, its record entry, every entry, the signed
    checkpoint, and every problem found (none: it verifies)."""

    run_id: str
    record: Entry | None
    entries: tuple[Entry, ...]
    checkpoint: SignedCheckpoint | None
    problems: tuple[str, ...]

    def run_entries(self) -> tuple[Entry, ...]:
        """The run's own entries, up to and including its record entry (all of them in
        the file when it has none: a broken record still shows what it holds)."""
        end = self.record.seq if self.record else float("inf")
        return tuple(e for e in self.entries if e.run_id == self.run_id and e.seq <= end)


def plain(record_hash: str) -> str:
    """A record hash as the journal stores it (64 lower-case hex digits) from either form,
    `sha256:<hex>` or `<hex>`; InputError for text that is neither."""
    text = str(record_hash).strip().lower()
    text = text[len("sha256:"):] if text.startswith("sha256:") else text
    if not _HEX.fullmatch(text):
        raise InputError(f"record hash {clip(repr(record_hash))}: expected sha256:<64 hex "
                         "digits> (as `otpatch status RUN_ID` shows it)")
    return text


def shown(entry_hash: str) -> str:
    """The one form a record hash is shown in: sha256:<hex> (entries store the hex)."""
    return entry_hash if entry_hash.startswith("sha256:") else "sha256:" + entry_hash


def record_entry(entries: Iterable[Entry]) -> Entry | None:
    """A run's record: its newest run_ended entry (None: the run has not ended)."""
    return next((e for e in reversed(list(entries)) if e.event_type == RUN_ENDED), None)


def as_trust(trust: Trust | Mapping[str, str] | None) -> Trust | None:
    """A Trust from what a caller has: a Trust, or the inventory's trusted keys
    (engine/anchor.py trusted_keys: public key -> host name)."""
    if trust is None or isinstance(trust, Trust):
        return trust
    return Trust(dict(trust), "the inventory") if trust else None


# -- checking an export ------------------------------------------------------------------

def parse(raw: bytes, where: str) -> Any:
    """The JSON document of an export file; InputError (one line) if it is not JSON."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{where}: not UTF-8 text: not an otpatch evidence export") from None
    except (ValueError, RecursionError) as e:
        raise InputError(f"{where}: not JSON ({clip(str(e))}): not an otpatch evidence "
                         "export") from None


def check_document(doc: Any, trust: Trust | None) -> Checked:
    """Every check an imported record gets: each entry's hash recomputed from its content,
    each link to the entry before, the run's start and end in the span, and the signed
    checkpoint: its signature, that it signs exactly the span's last entry, and (with a
    trust) that its signer is a journal host the site trusts."""
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        return Checked("", None, (), None, (f"not an otpatch evidence export (no \"kind\": "
                                            f"\"{KIND}\")",))
    run_id, problems = doc.get("run_id"), []
    entries, trouble = _entries(doc.get("entries"))
    problems += trouble + _links(entries)
    run_id = run_id if isinstance(run_id, str) else ""
    record, trouble = _run_span(run_id, entries, doc.get("record_hash"))
    problems += trouble
    signed, trouble = _checkpoint(doc.get("checkpoint"), entries, trust)
    return Checked(run_id, record, entries, signed, tuple(problems + trouble))


def _entries(docs: Any) -> tuple[tuple[Entry, ...], list[str]]:
    from otpatch.engine.journal_verify import check_content

    if not isinstance(docs, list) or not docs:
        return (), ["its \"entries\" is not a list of journal entries"]
    entries, problems = [], []
    for n, doc in enumerate(docs):
        entry, why = _entry(doc)
        if entry is None:
            problems.append(f"entries[{n}]: not a journal entry ({why})")
            continue
        try:
            problems += check_content(_row(entry))
        except ValueError:  # NaN or Infinity, which json reads and no journal holds
            problems.append(f"entries[{n}]: not a journal entry (a number JSON cannot hold)")
            continue
        entries.append(entry)
    return tuple(entries), problems


def _entry(doc: Any) -> tuple[Entry | None, str]:
    if not isinstance(doc, dict):
        return None, f"a JSON {type(doc).__name__}, not an object"
    if set(doc) != set(ENTRY_COLUMNS):
        odd = sorted(set(doc) ^ set(ENTRY_COLUMNS))
        return None, f"fields {', '.join(map(str, odd))} missing or unknown"
    if type(doc["seq"]) is not int or doc["seq"] < 1 or not isinstance(doc["payload"], dict):
        return None, "seq is not a positive integer, or payload not an object"
    text = [k for k in ENTRY_COLUMNS if k not in ("seq", "payload", "operator", "host")]
    if not all(isinstance(doc[k], str) for k in text) or not all(
            doc[k] is None or isinstance(doc[k], str) for k in ("operator", "host")):
        return None, "a field that must be text is not"
    return Entry(**doc), ""


def _row(entry: Entry) -> tuple[Any, ...]:
    """The entry as SELECT_ENTRIES reads it (engine/journal_verify.py check_content)."""
    return (entry.seq, entry.run_id, entry.ts, entry.source, entry.category,
            entry.event_type, entry.result, canonical_json(entry.payload), entry.prev_hash,
            entry.hash, entry.operator, entry.host)


def _links(entries: tuple[Entry, ...]) -> list[str]:
    problems = []
    if entries and entries[0].seq == 1 and entries[0].prev_hash != GENESIS_HASH:
        problems.append("entry #1: prev_hash is not the start of the chain")
    for before, entry in zip(entries, entries[1:]):
        if entry.seq != before.seq + 1:
            problems.append(f"entry #{entry.seq} follows #{before.seq}: entries missing or "
                            "reordered")
        elif entry.prev_hash != before.hash:
            problems.append(f"entry #{entry.seq}: prev_hash does not match entry "
                            f"#{before.seq} (edited, reordered or replaced)")
    return problems


def _run_span(run_id: str, entries: tuple[Entry, ...], said: Any
              ) -> tuple[Entry | None, list[str]]:
    """The span must start at the run's run_started and hold its run_ended: the record."""
    if not run_id:
        return None, ["its \"run_id\" is not a run id"]
    mine = [e for e in entries if e.run_id == run_id]
    if not mine or mine[0].event_type != RUN_STARTED or mine[0] is not entries[0]:
        return None, [f"it does not start at run {run_id}'s run_started entry"]
    record = record_entry(mine)
    if record is None:
        return None, [f"it holds no run_ended entry of run {run_id}: not an ended run's record"]
    if said != shown(record.hash):
        return record, [f"it says its record is {clip(str(said))}, but run {run_id}'s "
                        f"run_ended entry #{record.seq} is {shown(record.hash)}"]
    return record, []


def _checkpoint(doc: Any, entries: tuple[Entry, ...], trust: Trust | None
                ) -> tuple[SignedCheckpoint | None, list[str]]:
    try:
        signed = SignedCheckpoint.from_dict(doc)
    except ValueError as e:
        return None, [f"the checkpoint: not a signed checkpoint ({e})"]
    if not entries:
        return signed, []
    last = entries[-1]
    if signed.entries != last.seq:
        return signed, [f"the checkpoint signs entry #{signed.entries}, but the export ends "
                        f"at #{last.seq}: it does not anchor this span"]
    hashes = {e.seq: e.hash for e in entries}
    return signed, check_signed("the checkpoint", signed, hashes.get, last.seq, trust)


# -- the store ------------------------------------------------------------------------------

def folder(home: Path) -> Path:
    return home / FOLDER


def stored_path(home: Path, record_hash: str) -> Path:
    return folder(home) / f"{plain(record_hash)}.json"


def import_record(home: Path, raw: bytes, where: str, trust: Trust) -> tuple[Path, Checked,
                                                                            bool]:
    """Verify an export (InputError naming the first problem, nothing stored) and store it
    as <home>/evidence/<record hash>.json: (its path, what was checked, whether it is new;
    importing the same file again changes nothing)."""
    from otpatch.modules.contract.files import write_atomic

    checked = check_document(parse(raw, where), trust)
    if checked.problems:
        more = len(checked.problems) - 1
        raise InputError(f"{where}: refused, nothing stored: {checked.problems[0]}"
                         + (f" (and {more} more problem{'s' * (more > 1)})" if more else ""))
    path = stored_path(home, checked.record.hash)
    try:
        if path.is_file() and path.read_bytes() == raw:
            return path, checked, False
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{path}: cannot store the record: {e.strerror or e}") from None
    write_atomic(path, raw, "evidence import")
    return path, checked, True


def read_stored(path: Path, trust: Trust | None) -> Checked:
    """A stored record, re-checked now; a file that cannot be read is a problem, not an
    error: the lookup reports it."""
    from otpatch.modules.contract.files import read_regular

    try:
        return check_document(parse(read_regular(path, MAX_EXPORT_BYTES, "evidence file"),
                                    str(path)), trust)
    except InputError as e:
        return Checked("", None, (), None, (str(e),))


def stored(home: Path) -> list[Path]:
    """The imported records' files, by name."""
    where = folder(home)
    return sorted(where.glob("*.json")) if where.is_dir() else []


def signer_name(checked: Checked, trust: Trust | None) -> str:
    """The journal host that signed the record: its name where the trust names it."""
    if checked.checkpoint is None:
        return "an unknown host"
    key = checked.checkpoint.public_key
    return (trust.keys.get(key) if trust else None) or keys.short(key)


# -- the lookup -----------------------------------------------------------------------------

def find_run(home: Path, record_hash: str,
             trust: Trust | Mapping[str, str] | None) -> FoundRun | None:
    """The run whose record hash is `record_hash` (`sha256:<hex>` or `<hex>`; InputError
    for neither): in this journal (under `home`), else among the imported records; None
    if neither has it. `trust`: the journal hosts whose signatures count (an imported
    record whose signer is not among them, or with no trust at all, does not verify)."""
    entry_hash, trust = plain(record_hash), as_trust(trust)
    local = _in_journal(home, entry_hash, trust)
    if local is not None:
        return local
    path = stored_path(home, entry_hash)
    return imported_run(path, trust)[0] if path.is_file() else None


def imported_run(path: Path, trust: Trust | None) -> tuple[FoundRun, str]:
    """A stored record re-checked now, and the name of the journal host that signed it."""
    checked, entry_hash = read_stored(path, trust), path.stem
    problems = list(checked.problems)
    if checked.record is not None and checked.record.hash != entry_hash:
        problems.append(f"{path.name} holds the record {shown(checked.record.hash)}, not "
                        f"{shown(entry_hash)}")
    if trust is None:
        problems.append("its signer is not checked: no journal hosts to trust (the "
                        "inventory's journal_hosts)")
    signer = signer_name(checked, trust)
    return FoundRun(checked.run_id, entry_hash, checked.run_entries(),
                    f"imported from {signer} ({path})", not problems, tuple(problems)), signer


def _in_journal(home: Path, entry_hash: str, trust: Trust | None) -> FoundRun | None:
    """A run_ended entry of this journal with that hash, its run verified: the quick check
    when it walked the run's links, else the full one."""
    from otpatch.engine.journal import Journal

    if not (home / FILENAME).is_file():
        return None
    with Journal.open(home, read_only=True) as journal:
        hit = journal.entry_hashed(entry_hash)
        if hit is None or hit.event_type != RUN_ENDED:
            return None
        entries = tuple(e for e in journal.entries(hit.run_id) if e.seq <= hit.seq)
        quick = journal.verify_quick([hit.run_id])
        problems = quick.problems + [
            f"the journal's checkpoint of {s.entries} entries is signed by a key {trust.root} "
            f"does not trust ({keys.short(s.public_key)})"
            for s in quick.signed if trust is not None and s.public_key not in trust.keys]
        # the quick walk ran from its anchor to the head (read after it: a later append
        # only moves this up, to a full check); the run's links before it are unchecked
        walked_from = journal.last_committed()[0] - quick.entries_checked + 1
        if not problems and entries[0].seq < walked_from:
            problems = journal.verify(trust=trust).problems
    return FoundRun(hit.run_id, entry_hash, entries, LOCAL, not problems, tuple(problems))
