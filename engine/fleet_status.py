"""One site's status for the fleet (issue 17): what the otpatch.fleet collection's
`site_status` module returns, read-only, computed at the site from its own journal, site
record and inventory: the journal's head and whether it verifies, the site record's
verification, the sign-offs execute runs wait for, the maintenance windows open or closed
now, the firmware each host last read (engine/baseline.py, with where the value came from)
and, given a playbook, its SHA-256 (the fleet asserts it is the one it pinned)."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def site_status(inventory_path: str, home: Path, playbook: str | None = None,
                now: float | None = None) -> dict[str, Any]:
    """The site's status document (changed false: nothing is written)."""
    from otpatch.engine.baseline import baseline
    from otpatch.engine.inventory import load_inventory

    home = Path(home)
    now = time.time() if now is None else now
    inventory = load_inventory(inventory_path)
    journal = _journal(home, inventory)
    pending, resumable = _paused(home) if journal["head"] else ([], [])
    out: dict[str, Any] = {
        "changed": False, "journal": journal, "site_record": _verified(home, inventory),
        "pending_signoffs": pending, "resumable": resumable,
        "windows": _windows(inventory, now),
        "firmware": {host: _firmware(values) for host, values
                     in baseline(home, inventory).hosts.items()},
    }
    if playbook is not None:
        from otpatch.engine.fleet_site import playbook_sha256

        out["playbook_sha256"] = playbook_sha256(playbook)
    return out


def _journal(home: Path, inventory: Any) -> dict[str, Any]:
    """The runs' journal: its head {seq, hash} and its full verification (None: no journal
    yet)."""
    from otpatch.engine.anchor import trust_root
    from otpatch.engine.journal import FILENAME, Journal
    from otpatch.engine.keys import host_key_path

    if not (home / FILENAME).is_file():
        return {"head": None, "verified": None, "problems": []}
    with Journal.open(home, read_only=True) as journal:
        seq, head, _ = journal.last_committed()
        report = journal.verify(trust=trust_root(host_key_path(home), inventory))
    return {"head": {"seq": seq, "hash": head}, "verified": report.ok,
            "problems": list(report.problems)}


def _verified(home: Path, inventory: Any) -> dict[str, Any] | None:
    from otpatch.engine import siterecord

    report = siterecord.verify(home, inventory)
    if report is None:
        return None
    return {"verified": report.ok, "entries": report.entries_checked,
            "problems": list(report.problems)}


def _paused(home: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pending sign-offs, resumable runs): each execute run waiting at a sign-off gate with
    the roles it still needs; each execute run that has not ended (awaiting a gate or a
    person, or interrupted), newest last, with its playbook's hash (a rollout resumes the
    one of the procedure it pinned instead of starting another)."""
    from otpatch.engine import api
    from otpatch.engine.fleet_site import signoff_wait
    from otpatch.engine.record import FINAL, RunStatus

    pending, resumable = [], []
    for progress in api.status(home):
        cfg = progress.config
        if cfg.mode != "execute" or progress.status in FINAL:
            continue
        resumable.append({"run_id": progress.run_id, "status": progress.status.value,
                          "state": progress.state, "playbook": cfg.playbook_name,
                          "playbook_sha256": cfg.playbook_hash})
        waits = signoff_wait(progress, home) if progress.status is RunStatus.AWAITING else None
        if waits is not None:
            pending.append({"run_id": progress.run_id, "playbook": cfg.playbook_name,
                            "playbook_sha256": cfg.playbook_hash, "gate": waits[0],
                            "missing_roles": list(waits[1])})
    return pending, resumable


def _windows(inventory: Any, now: float) -> dict[str, Any]:
    at = datetime.fromtimestamp(now, timezone.utc)
    return {name: {"start": w.start.isoformat(), "end": w.end.isoformat(),
                   "open": w.contains(at)} for name, w in sorted(inventory.windows.items())}


def _firmware(values: Any) -> dict[str, Any] | None:
    found = values.get("firmware")
    if found is None:
        return None
    return {"firmware": found.value, "source": found.source, "run_id": found.run_id or None,
            "simulator": found.simulator, "provenance": found.provenance()}
