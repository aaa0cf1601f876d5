"""One site's status for the fleet (issue 17): what the otpatch.fleet collection's
`site_status` module returns, read-only, computed at the site from its own journal, site
record and inventory: the journal's head and whether it verifies, the site record's
verification, the sign-offs execute runs wait for, the maintenance windows open or closed
now, the firmware each host last read (engine/baseline.py, with where the value came from)
and, given a playbook, its SHA-256 (the fleet asserts it is the one it pinned)."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def site_status(inventory_path: str, home: Path, playbook: str | None = None,
                now: float | None = None) -> dict[str, Any]:
    """The site's status document (changed false: nothing is written)."""
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
        "firmware": firmware(home, inventory),
    }
    if playbook is not None:
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
    the roles it still needs; each execute run that has not ended (resumable_runs)."""
    from otpatch.engine.record import RunStatus

    pending, resumable = [], []
    for progress in _unended(home):
        cfg = progress.config
        resumable.append(_resumable(progress))
        waits = signoff_wait(progress, home) if progress.status is RunStatus.AWAITING else None
        if waits is not None:
            pending.append({"run_id": progress.run_id, "playbook": cfg.playbook_name,
                            "playbook_sha256": cfg.playbook_hash, "gate": waits[0],
                            "missing_roles": list(waits[1])})
    return pending, resumable


def resumable_runs(home: Path) -> list[dict[str, Any]]:
    """Each execute run at the site that has not ended (awaiting a gate or a person, or
    interrupted), newest last, with its playbook's hash: a rollout resumes the one of the
    procedure it pinned instead of starting another. [] with no journal yet."""
    return [_resumable(p) for p in _unended(home)]


def _unended(home: Path) -> list[Any]:
    from otpatch.engine import api
    from otpatch.engine.record import FINAL

    return [p for p in api.status(home)
            if p.config.mode == "execute" and p.status not in FINAL]


def _resumable(progress: Any) -> dict[str, Any]:
    cfg = progress.config
    return {"run_id": progress.run_id, "status": progress.status.value,
            "state": progress.state, "playbook": cfg.playbook_name,
            "playbook_sha256": cfg.playbook_hash}


def _windows(inventory: Any, now: float) -> dict[str, Any]:
    at = datetime.fromtimestamp(now, timezone.utc)
    return {name: {"start": w.start.isoformat(), "end": w.end.isoformat(),
                   "open": w.contains(at)} for name, w in sorted(inventory.windows.items())}


def firmware(home: Path, inventory: Any) -> dict[str, Any]:
    """Per host, the firmware as last read (engine/baseline.py: the value, where it came
    from, the run, whether a simulator answered), or None where nothing has read it."""
    from otpatch.engine.baseline import baseline

    return {host: _firmware(values) for host, values in baseline(home, inventory).hosts.items()}


def _firmware(values: Any) -> dict[str, Any] | None:
    found = values.get("firmware")
    if found is None:
        return None
    return {"firmware": found.value, "source": found.source, "run_id": found.run_id or None,
            "simulator": found.simulator, "provenance": found.provenance()}


def playbook_sha256(path: str) -> str:
    """The playbook's content hash, as the fleet pins it (engine/fleet.py validated it
    whole; the run here validates it again): its canonical YAML data's hash, read without
    the schema and lint a run applies, so a status read does not load the device modules
    its steps name. PlaybookError when it is not readable YAML."""
    from otpatch.modules.contract.yamlsrc import read_yaml

    return read_yaml(path).content_hash


def signoff_wait(progress: Any, home: Path) -> tuple[str, tuple[str, ...]] | None:
    """(gate, roles still missing) when the run waits at a sign-off gate; None otherwise."""
    from otpatch.engine import approvals, runs, stagerun
    from otpatch.engine.record import RunStatus

    cfg = progress.config
    if progress.status is not RunStatus.AWAITING:
        return None
    loaded = runs.load_files(cfg.playbook, cfg.inventory)
    action = stagerun.next_action(loaded, replace(progress, status=RunStatus.RUNNING))
    dest = getattr(action, "dest", None)
    req = approvals.signoff_of(loaded.playbook, dest) if dest else None
    if req is None:
        return None
    now = time.time()
    bound, _ = stagerun.gate_binding(progress, loaded, dest, home, now)
    judged = [approvals.judge(d, bound, loaded.inventory.approvers, cfg.operator,
                              datetime.fromtimestamp(now, timezone.utc), set(progress.revoked))
              for d in progress.approvals]
    chosen = approvals.counting(req.roles, judged)
    return dest, tuple(r for r in req.roles if r not in chosen)
