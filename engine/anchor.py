"""The journal anchored outside its file: the head signed with the host key, kept elsewhere.

A hash chain stored in the file it protects proves nothing against whoever can rewrite the
file: they re-hash every entry after the one they edit, or cut the tail and move the head
back. So at each run's end and every CHECKPOINT_EVERY entries, the otpatch host signs
(Ed25519) the head it has committed: the entry count, that entry's hash and the time. The
signed checkpoint is written to the copy file beside the journal (before the entry, so no
copy is ever ahead of a healthy file), sent to the SIEM's syslog receiver when the
inventory names one, and then journaled as a `chain_checkpoint` entry.

`journal verify` then checks every signature, that the signer is one the inventory trusts,
that each signed entry still has the signed hash (an edited and re-hashed chain does not),
and that no checkpoint, in the file, the copy or an exported list, is ahead of the file (a
cut tail, or a damaged or deleted WAL, loses entries that were signed). The copy catches
accidents and careless tampering; what someone who also edits the copy cannot hide is
what has left the host: the SIEM's messages and exported lists (`--against`)."""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from otpatch.engine import keys
from otpatch.modules.contract.canonical import canonical_json
from otpatch.modules.contract.errors import InputError, JournalError
from otpatch.modules.contract.platform import fsync_directory, open_for_append

LOG = logging.getLogger(__name__)

CHECKPOINT_EVENT = "chain_checkpoint"  # not "checkpoint": that is the as-found facts snapshot
CHECKPOINT_CATEGORY = "system"
CHECKPOINT_EVERY = 100  # entries between interval checkpoints
COPY_NAME = "journal-checkpoints.jsonl"  # beside journal.sqlite: one signed checkpoint a line
STATEMENT = "otpatch-journal-checkpoint/1"  # what a signature is over, so it means one thing
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SignedCheckpoint:
    """The journal's first `entries` entries end in `head_hash`, signed at `signed_at`."""

    entries: int
    head_hash: str
    signed_at: str
    public_key: str  # base64 Ed25519, as the inventory's journal_hosts name it
    signature: str  # base64, over statement()

    def statement(self) -> bytes:
        return canonical_json({"statement": STATEMENT, "entries": self.entries,
                               "head_hash": self.head_hash,
                               "signed_at": self.signed_at}).encode("utf-8")

    def signature_valid(self) -> bool:
        return keys.signature_valid(self.public_key, self.signature, self.statement())

    def to_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "head_hash": self.head_hash,
                "signed_at": self.signed_at, "public_key": self.public_key,
                "signature": self.signature}

    @classmethod
    def from_dict(cls, doc: Any) -> "SignedCheckpoint":
        """ValueError saying what is wrong with a document that is not a checkpoint."""
        if not isinstance(doc, dict):
            raise ValueError(f"a JSON {type(doc).__name__}, not an object")
        missing = [k for k in ("entries", "head_hash", "signed_at", "public_key", "signature")
                   if k not in doc]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        if type(doc["entries"]) is not int or doc["entries"] < 1:
            raise ValueError(f"entries {doc['entries']!r} is not a count of entries")
        if not isinstance(doc["head_hash"], str) or not _HASH.fullmatch(doc["head_hash"]):
            raise ValueError("head_hash is not a SHA-256 hex digest")
        for k in ("signed_at", "public_key", "signature"):
            if not isinstance(doc[k], str):
                raise ValueError(f"{k} is not text")
        return cls(doc["entries"], doc["head_hash"], doc["signed_at"], doc["public_key"],
                   doc["signature"])


def sign(key: keys.SigningKey, entries: int, head_hash: str) -> SignedCheckpoint:
    signed_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    unsigned = SignedCheckpoint(entries, head_hash, signed_at, key.public_key, "")
    return SignedCheckpoint(entries, head_hash, signed_at, key.public_key,
                            key.sign(unsigned.statement()))


# -- making checkpoints ---------------------------------------------------------------------

class Anchor:
    """How this otpatch process anchors the journal: its host key (None: unanchored, said
    once per run), the SIEM to send checkpoints to, the copy file beside the journal."""

    key_home: Path | None = None  # where the host key belongs, when not beside the journal
    what = "run"  # what an id names, in the unanchored warning

    def __init__(self, key: keys.SigningKey | None, siem: tuple[str, int] | None = None):
        self.key, self.siem = key, siem
        self._said_unanchored = False

    @classmethod
    def for_run(cls, host_key: Path | None, inventory: Any) -> "Anchor":
        """The host key at `host_key` (None: unanchored) checked against the inventory's
        journal_hosts, and its SIEM; InputError before the run starts if the key cannot be
        used, or the inventory trusts named host keys and this one is not among them."""
        key = keys.load_host(host_key)
        trusted = trusted_keys(inventory)
        if key is not None and trusted and key.public_key not in trusted:
            raise InputError(
                f"host key {key.path} ({keys.short(key.public_key)}) is not among the journal "
                f"hosts {inventory.path} trusts ({', '.join(sorted(trusted.values()))}): its "
                "checkpoints would not verify; use the trusted key or add this one there")
        siem = getattr(inventory, "siem", None)
        return cls(key, (siem.host, siem.port) if siem else None)

    def run_ended(self, journal: Any, run_id: str, elapsed: float) -> Any:
        """At a run's end (ended, paused or halted): sign the head, or say plainly, once,
        that the journal is unanchored."""
        if self.key is None:
            if not self._said_unanchored:
                self._said_unanchored = True
                where = (self.key_home or journal.path.parent) / keys.HOST_KEY_FILE
                LOG.warning("journal unanchored: no host key (set $%s, or put one at %s with "
                            "`otpatch keygen --host -o %s`): %s %s's entries are chained "
                            "but not signed, so a rewritten or cut journal would still verify",
                            keys.HOST_KEY_ENV, where, where, self.what, run_id)
            return None
        return self.checkpoint(journal, run_id, "run_end", elapsed)

    def checkpoint(self, journal: Any, run_id: str, why: str, elapsed: float) -> Any:
        """Sign what the journal has committed, keep the copy, send it, journal it."""
        if self.key is None:
            return None
        journal.flush()
        seq, head_hash, event_type = journal.last_committed()
        if seq == 0 or event_type == CHECKPOINT_EVENT:
            return None  # nothing, or nothing new since the last checkpoint
        signed = sign(self.key, seq, head_hash)
        append_copy(copy_path(journal.path), signed)
        sent_to = self._send(signed)
        from otpatch.engine.events import ChainCheckpoint

        return journal.record(run_id, ChainCheckpoint(elapsed=elapsed, why=why,
                                                      sent_to=sent_to, **signed.to_dict()))

    def _send(self, signed: SignedCheckpoint) -> str | None:
        if self.siem is None:
            return None
        from otpatch.modules.registry import sender

        send = sender("siem")  # the syslog package's RFC 5424 sender over UDP
        if send is None:
            LOG.warning("journal checkpoint of %d entries not sent to the SIEM: no package "
                        "sends to one", signed.entries)
            return None
        host, port = self.siem
        try:
            send(host, port, "otpatch", CHECKPOINT_EVENT, {
                "entries": str(signed.entries), "head_hash": signed.head_hash,
                "signed_at": signed.signed_at, "public_key": signed.public_key,
                "signature": signed.signature}, canonical_json(signed.to_dict()))
        except OSError as e:
            LOG.warning("journal checkpoint of %d entries not sent to the SIEM: %s",
                        signed.entries, e)
            return None
        return f"{host}:{port}"


def copy_path(journal_path: Path) -> Path:
    return journal_path.with_name(COPY_NAME)


def append_copy(path: Path, signed: SignedCheckpoint) -> None:
    """One line appended and fsynced: the copy must be on disk before the entry is."""
    new = not path.exists()
    try:
        fd = open_for_append(path)
        try:
            os.write(fd, (canonical_json(signed.to_dict()) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_directory(path.parent)
    except OSError as e:
        raise JournalError(f"{path}: cannot write the checkpoint copy: "
                           f"{e.strerror or e}") from e


# -- reading lists of checkpoints ----------------------------------------------------------

MAX_LIST_BYTES = 256 * 1024 * 1024  # a checkpoint line per few entries: years of runs

def read_list(path: Path, label: str | None = None
              ) -> tuple[list[tuple[str, SignedCheckpoint]], list[str]]:
    """Checkpoints from a file of JSON lines (the copy, an export) or of syslog lines that
    carry one after their structured data (the SIEM's); each with its `FILE line N` label.
    A line that is neither is a problem; a file that cannot be read is an InputError."""
    from otpatch.modules.contract.files import read_regular

    try:
        text = read_regular(path, MAX_LIST_BYTES, "checkpoints file").decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: cannot read the checkpoints: "
                         f"{getattr(e, 'strerror', None) or e}") from e
    found, problems = [], []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        where = f"{label or path} line {n}"
        start = 0 if line.startswith("{") else line.find(" {") + 1
        try:
            if not start and not line.startswith("{"):
                raise ValueError("no JSON object on the line")
            found.append((where, SignedCheckpoint.from_dict(json.loads(line[start:]))))
        except ValueError as e:
            problems.append(f"{where}: not a signed checkpoint ({e})")
    return found, problems


def export_lines(checkpoints: list[SignedCheckpoint]) -> str:
    return "".join(canonical_json(c.to_dict()) + "\n" for c in checkpoints)


# -- checking checkpoints against the file ----------------------------------------------------

def trusted_keys(inventory: Any) -> dict[str, str]:
    """public key -> host name, for the host keys the inventory trusts (journal_hosts)."""
    return {h.public_key: h.name for h in getattr(inventory, "journal_hosts", ())}


@dataclass(frozen=True)
class Trust:
    """Whose signatures a checkpoint may carry (public key -> name), and who says so."""

    keys: Mapping[str, str]
    root: str  # "the inventory" | "this host"


def trust_root(host_key: Path | None, inventory: Any = None) -> Trust | None:
    """The journal hosts the inventory trusts; else this host's own key (the file at
    `host_key`), when it has one; else None: signatures are then checked, their signers
    are not."""
    named = trusted_keys(inventory) if inventory is not None else {}
    if named:
        return Trust(named, "the inventory")
    key = keys.load_host(host_key)
    return Trust({key.public_key: "this host's own key"}, "this host") if key else None


def check_signed(where: str, signed: SignedCheckpoint, hash_at: Callable[[int], str | None],
                 last_seq: int, trust: Trust | None, intact_to: int = 0) -> list[str]:
    """The problems of one signed checkpoint against the file: its signature, its signer
    (when there is a trust root), whether the file reaches it, and whether the entry it
    signed still has the signed hash (`intact_to`: the newest entry an earlier checkpoint
    found intact, to say where a rewrite began)."""
    if not signed.signature_valid():
        return [f"{where}: the signature does not verify ({keys.short(signed.public_key)}): "
                "forged, or the checkpoint was edited"]
    problems = []
    if trust is not None and signed.public_key not in trust.keys:
        problems.append(f"{where}: signed by a key {trust.root} does not trust "
                        f"({keys.short(signed.public_key)}; trusted: "
                        f"{', '.join(sorted(trust.keys.values()))})")
    n = signed.entries
    if n > last_seq:
        lost = f"entry #{n}" if n == last_seq + 1 else f"entries #{last_seq + 1}-#{n}"
        problems.append(f"{where}: signed {n} entries at {signed.signed_at}, but the journal "
                        f"ends at #{last_seq}: {lost} deleted or lost (a cut tail, or a "
                        "damaged or deleted WAL)")
        return problems
    found = hash_at(n)
    if found is None:
        problems.append(f"{where}: signed entry #{n}, which is missing from the file")
    elif found != signed.head_hash:
        span = f"#{intact_to + 1}-#{n}" if intact_to + 1 < n else f"#{n}"
        problems.append(f"{where}: signed entry #{n} as {signed.head_hash[:12]}…, the file's "
                        f"entry #{n} is {found[:12]}…: an entry in {span} was edited and the "
                        "chain re-hashed after it (re-sealed)")
    return problems


def signer(signed: SignedCheckpoint, trust: Trust | None) -> str:
    """Who signed, for a message: the journal host's name when the trust root names it."""
    name = trust.keys.get(signed.public_key) if trust else None
    return f"{name} ({keys.short(signed.public_key)})" if name else keys.short(signed.public_key)


def require_trusted(signed: tuple[SignedCheckpoint, ...], trust: Trust | None, doing: str,
                    journal_path: Path) -> None:
    """Before `resume` or `status` act: every checkpoint their quick check relied on is
    signed by a key the trust root trusts (the run's inventory, else this host's key)."""
    for s in signed:
        if trust is not None and s.public_key not in trust.keys:
            raise JournalError(
                f"{doing}: refused: the journal {journal_path} is not trusted: its checkpoint "
                f"of {s.entries} entries is signed by a key {trust.root} does not trust "
                f"({keys.short(s.public_key)}); run otpatch journal verify")
