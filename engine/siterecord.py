"""The site record: what otpatch learns and keeps outside a playbook run (baseline readings,
backups stored and verified, risk decisions accepted), in a journal of its own.

It is the runs' journal code (engine/journal.py: SQLite, WAL, synchronous=FULL, append-only,
every entry hash-chained to the one before, SR 2.8 fields) at <home>/site-record/, and each
record ends in a checkpoint signed with the host key (engine/anchor.py), as a run does. It
is a file of its own so that `status`, `report` and the evidence exports, which fold every
run id of the runs' journal as a playbook run, never meet an entry that is not one. A record
is one command's worth of entries under one id in the run-id form (r-YYYYMMDDTHHMMSS-xxxxxx).

Reading checks the chain first and refuses a damaged or untrusted file (JournalError), as
`status` does; a home with no site record yet reads as empty."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

FOLDER = "site-record"


def folder(home: Path) -> Path:
    return home / FOLDER


def append(home: Path, events: Iterable[Any], *, inventory: Any = None,
           operator: str | None = None, source: str = "otpatch") -> str:
    """Append the events (engine/siteevents.py) as one record, committed together, then sign the head with this
    host's key (none: unanchored, said once, as for runs). Returns the record id.
    JournalError when the site record is damaged (nothing is added to a damaged file);
    InputError for a host key the inventory does not trust."""
    from otpatch.engine.anchor import Anchor
    from otpatch.engine.journal import Journal, new_run_id
    from otpatch.engine.journalfile import FILENAME
    from otpatch.engine.keys import host_key_path

    events = list(events)
    if not events:
        raise ValueError("a site record needs at least one entry")
    where = folder(home)
    anchor = Anchor.for_run(host_key_path(home), inventory)
    anchor.key_home, anchor.what = home, "site record"
    if (where / FILENAME).exists():  # adding to a damaged file would bury the damage
        with Journal.open(where, read_only=True) as journal:
            journal.require_intact((), "site record")
    record_id = new_run_id()
    with Journal.open(where) as journal:
        journal.anchor_with(anchor)
        journal.acting_as(operator)
        for n, event in enumerate(events, 1):
            journal.record(record_id, event, source=source, durable=n == len(events))
        anchor.run_ended(journal, record_id, 0.0)
    return record_id


def entries(home: Path, event_types: Iterable[str] | None = None, *,
            inventory: Any = None, doing: str = "site record") -> list[Any]:
    """The site record's entries (oldest first), of the given event types (None: all),
    after checking the chain and that its checkpoints are signed by a trusted key (the
    inventory's journal hosts, else this host's key). [] when there is no site record."""
    from otpatch.engine.anchor import require_trusted, trust_root
    from otpatch.engine.journal import Journal
    from otpatch.engine.journalfile import FILENAME
    from otpatch.engine.keys import host_key_path

    where = folder(home)
    if not (where / FILENAME).is_file():
        return []
    wanted = set(event_types) if event_types is not None else None
    with Journal.open(where, read_only=True) as journal:
        checked = journal.require_intact(None, doing)
        require_trusted(checked.signed, trust_root(host_key_path(home), inventory), doing,
                        journal.path)
        found = journal.entries()
    return [e for e in found if wanted is None or e.event_type in wanted]


def verify(home: Path, inventory: Any = None) -> Any:
    """The full verify report of the site record (engine/journal.py verify), or None when
    there is none yet."""
    from otpatch.engine.anchor import trust_root
    from otpatch.engine.journal import Journal
    from otpatch.engine.journalfile import FILENAME
    from otpatch.engine.keys import host_key_path

    where = folder(home)
    if not (where / FILENAME).is_file():
        return None
    with Journal.open(where, read_only=True) as journal:
        return journal.verify(trust=trust_root(host_key_path(home), inventory))
