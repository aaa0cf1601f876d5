"""The fleet journal: `otpatch fleet run`'s record of a rollout, at $OTPATCH_HOME/fleet/.

It is the runs' journal code (SQLite WAL, hash chain, SR 2.8 fields, typed events from
engine/fleetevents.py) in a file of its own, as the site record is (engine/siterecord.py):
a fleet run id names a rollout, not a playbook run, so `status` and `report` must not fold
it. Entries are written as Ansible reports them, each committed at once (a rollout killed
half-way keeps what it saw); the head is signed with this host's key at the rollout's end,
as a run's is. Reads check the chain and the signatures first and refuse a damaged file."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

FOLDER = "fleet"


def folder(home: Path) -> Path:
    return home / FOLDER


class FleetRecorder:
    """One rollout's entries: `with FleetRecorder(home, operator) as rec: rec.add(event)`;
    the signed checkpoint is written when the block ends, however it ends."""

    def __init__(self, home: Path, operator: str | None = None, inventory: Any = None):
        from otpatch.engine.anchor import Anchor
        from otpatch.engine.journal import new_run_id
        from otpatch.engine.keys import host_key_path

        self.home, self.operator = home, operator
        self.anchor = Anchor.for_run(host_key_path(home), inventory)
        self.anchor.key_home, self.anchor.what = home, "fleet run"
        self.run_id = new_run_id()
        self.journal: Any = None

    def __enter__(self) -> "FleetRecorder":
        from otpatch.engine.journal import Journal
        from otpatch.engine.journalfile import FILENAME

        where = folder(self.home)
        if (where / FILENAME).exists():  # adding to a damaged file would bury the damage
            with Journal.open(where, read_only=True) as journal:
                journal.require_intact((), "fleet journal")
        self.journal = Journal.open(where)
        self.journal.anchor_with(self.anchor)
        self.journal.acting_as(self.operator)
        return self

    def add(self, event: Any) -> None:
        self.journal.record(self.run_id, event, source="otpatch fleet")

    def __exit__(self, *exc: object) -> None:
        try:
            self.anchor.run_ended(self.journal, self.run_id, 0.0)
        finally:
            self.journal.close()


def entries(home: Path, run_id: str | None = None, *, inventory: Any = None) -> list[Any]:
    """The fleet journal's entries (oldest first; of one fleet run), after checking the
    chain and that its checkpoints are signed by a trusted key. [] when there is none."""
    from otpatch.engine.anchor import require_trusted, trust_root
    from otpatch.engine.journal import Journal
    from otpatch.engine.journalfile import FILENAME
    from otpatch.engine.keys import host_key_path

    where = folder(home)
    if not (where / FILENAME).is_file():
        return []
    with Journal.open(where, read_only=True) as journal:
        checked = journal.require_intact(None, "fleet journal")
        require_trusted(checked.signed, trust_root(host_key_path(home), inventory),
                        "fleet journal", journal.path)
        return journal.entries(run_id)


def run_ids(found: Iterable[Any]) -> list[str]:
    """The fleet run ids of these entries, oldest first."""
    return list(dict.fromkeys(e.run_id for e in found))


def verify(home: Path, inventory: Any = None) -> Any:
    """The full verify report of the fleet journal, or None when there is none yet."""
    from otpatch.engine.anchor import trust_root
    from otpatch.engine.journal import Journal
    from otpatch.engine.journalfile import FILENAME
    from otpatch.engine.keys import host_key_path

    where = folder(home)
    if not (where / FILENAME).is_file():
        return None
    with Journal.open(where, read_only=True) as journal:
        return journal.verify(trust=trust_root(host_key_path(home), inventory))
