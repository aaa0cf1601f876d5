"""What each stored backup is, and what became of it: read back from the records, never
from a side file.

The index is the site record's BackupStored entries (host, artifact, SHA-256, size, when,
provenance), its BackupVerified entries (each `backup verify` re-hash), and the runs' journal
for restore tests: a run counts as a restore test of every backup one of its params names
(a `backup` param: engine/params.py resolves it to a PARAM_KIND value), passed when it ended
completed, failed when it ended otherwise (rolled_back, aborted); a run that has not ended
is not a test yet. Both journals are checked (chain, signed checkpoints) before they are
read, and a damaged one refuses (JournalError) rather than answer."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

PARAM_KIND = "otpatch-backup"  # the `kind` of a resolved backup param (engine/params.py)
RESTORE_TESTS = {  # artifact -> the shipped playbook that restore-tests it
    "mguard_profile": "playbooks/backup-restore-test.yml",
    "m580_application": "playbooks/backup-restore-test-m580.yml"}
NO_RESTORE_TEST: dict[str, str] = {}  # artifact -> why no shipped playbook restore-tests it


@dataclass(frozen=True)
class RestoreTest:
    """One run that put the backup into a device and checked it."""

    run_id: str
    status: str  # the run's end: completed | rolled_back | aborted
    mode: str  # dry_run | execute
    into: tuple[str, ...]  # the hosts it targeted
    simulator: bool  # every one of them a simulator
    ended: str

    @property
    def passed(self) -> bool:
        return self.status == "completed"

    def said(self) -> str:
        where = "simulator" if self.simulator else "lab device"
        verdict = "passed" if self.passed else f"failed ({self.status})"
        return f"{verdict}: run {self.run_id}, {self.mode} into {where} {', '.join(self.into)}"


@dataclass(frozen=True)
class StoredBackup:
    """One backup: a host's artifact with this content, newest store first seen."""

    sha256: str
    host: str
    artifact: str
    size: int
    at: str  # when it was stored (the newest time, if stored again unchanged)
    record: str  # the site record that stored it
    operator: str | None
    provenance: Mapping[str, Any]
    summary: Mapping[str, Any]
    times: int = 1
    last_verify: Mapping[str, Any] | None = None  # {at, ok, status, detail, record}
    restore_tests: tuple[RestoreTest, ...] = ()

    def to_json(self) -> dict[str, Any]:
        last = self.restore_tests[-1] if self.restore_tests else None
        return {"sha256": self.sha256, "host": self.host, "artifact": self.artifact,
                "size": self.size, "stored_at": self.at, "stored_times": self.times,
                "record": self.record, "operator": self.operator,
                "provenance": dict(self.provenance), "summary": dict(self.summary),
                "last_verify": dict(self.last_verify) if self.last_verify else None,
                "restore_tests": [{"run_id": t.run_id, "status": t.status, "mode": t.mode,
                                   "into": list(t.into), "simulator": t.simulator,
                                   "ended": t.ended, "passed": t.passed}
                                  for t in self.restore_tests],
                "last_restore_test": last.said() if last else None,
                "restore_test_playbook": RESTORE_TESTS.get(self.artifact),
                "restore_test_not_implemented": NO_RESTORE_TEST.get(self.artifact)}


def backups(home: Path, inventory: Any) -> list[StoredBackup]:
    """Every backup the site record holds, oldest first, with its last verification and
    its restore tests."""
    from otpatch.engine import siterecord

    found: dict[tuple[str, str, str], StoredBackup] = {}
    verified: dict[str, dict[str, Any]] = {}
    for e in siterecord.entries(home, ("backup_stored", "backup_verified"),
                                inventory=inventory, doing="backup"):
        p = e.payload
        if e.event_type == "backup_verified":
            verified[p["sha256"]] = {"at": e.ts, "ok": p["ok"], "status": p.get("status"),
                                     "detail": p["detail"], "record": e.run_id}
            continue
        key = (p["sha256"], p["host"], p["artifact"])
        times = found[key].times + 1 if key in found else 1
        found[key] = StoredBackup(p["sha256"], p["host"], p["artifact"], p["size"], e.ts,
                                  e.run_id, e.operator, p["provenance"],
                                  p.get("summary") or {}, times)
    tests = restore_tests(home)
    return [replace(b, last_verify=verified.get(b.sha256),
                    restore_tests=tuple(tests.get(b.sha256, ()))) for b in found.values()]


def restore_tests(home: Path) -> dict[str, list[RestoreTest]]:
    """sha256 -> the ended runs whose params name it, oldest first."""
    from otpatch.engine.evidence_store import record_entry
    from otpatch.engine.journal import Journal
    from otpatch.engine.journalfile import FILENAME

    if not (home / FILENAME).is_file():
        return {}
    out: dict[str, list[RestoreTest]] = {}
    with Journal.open(home, read_only=True) as journal:
        journal.require_intact(None, "backup list")
        for summary in journal.runs():
            entries = journal.entries(summary.run_id)
            named = _backups_named(entries[0].payload if entries else {})
            end = record_entry(entries) if named else None
            if end is None:
                continue
            test = _test(summary.run_id, entries[0].payload, end)
            for sha in named:
                out.setdefault(sha, []).append(test)
    return out


def _backups_named(started: Mapping[str, Any]) -> list[str]:
    params = started.get("params") or {}
    return [v["sha256"] for v in params.values()
            if isinstance(v, Mapping) and v.get("kind") == PARAM_KIND
            and isinstance(v.get("sha256"), str)]


def _test(run_id: str, started: Mapping[str, Any], end: Any) -> RestoreTest:
    assets = started.get("assets") or {}
    into = tuple(sorted({h for hosts in (started.get("targets") or {}).values()
                         for h in hosts}))
    return RestoreTest(run_id, str(end.payload.get("status")), str(started.get("mode")),
                       into, bool(into) and all((assets.get(h) or {}).get("simulator")
                                                for h in into), end.ts)


def param_value(home: Path, inventory: Any, text: str) -> dict[str, Any]:
    """A playbook's `backup` param from `-e NAME=<sha256 or a prefix>`: the stored object
    (hashed again now) and what the site record says it is. ValueError (the param's
    problem, engine/params.py) when it is unknown, ambiguous or damaged."""
    from otpatch.engine import backupstore
    from otpatch.modules.contract.errors import InputError

    try:
        wanted = backupstore.plain(text, prefix_ok=True)
    except InputError as e:
        raise ValueError(str(e)) from None
    known = [b for b in backups(home, inventory) if b.sha256.startswith(wanted)]
    shas = sorted({b.sha256 for b in known})
    if not shas:
        raise ValueError(f"no stored backup {wanted} in {backupstore.root(home)} (otpatch "
                         "backup list shows them)")
    if len(shas) > 1:
        raise ValueError(f"{wanted} names {len(shas)} stored backups: give more digits")
    found = max(known, key=lambda b: b.at)
    checked = backupstore.rehash(home, found.sha256)
    if not checked.ok:
        raise ValueError(f"backup {found.sha256[:12]} cannot be used ({checked.status}): "
                         f"{checked.detail}")
    return {"kind": PARAM_KIND, "sha256": found.sha256, "sha256_prefixed": "sha256:" +
            found.sha256, "path": str(backupstore.object_path(home, found.sha256).absolute()),
            "size": found.size, "host": found.host, "artifact": found.artifact,
            "summary": dict(found.summary)}
