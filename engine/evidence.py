"""The evidence a sign-off approves: its `over:` states, each completed in this run or in an
evidence run, a separate run on the lab or staging devices the site register lists.

A change is a chain of separate runs (issue 11): the lab run, then the staging run, days
apart and possibly on other hosts, then the production run, whose gate names them by their
record hashes (`otpatch run --evidence RECORD`), found in this journal or imported
(engine/evidence_store.py). An evidence run counts only when it is verified, completed,
ran this very playbook (content hash) with the same firmware, touched at that stage only
devices the register lists there (matched by serial), is younger than the sign-off's
evidence age, and, for an execute run, was an execute run itself: a dry run against
simulators is a rehearsal, never evidence. Everything here but `load_runs` is pure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from otpatch.engine.evidence_store import plain, shown
from otpatch.engine.model import DEFAULT_EVIDENCE_AGE, Requirement


@dataclass(frozen=True)
class EvidenceRun:
    """One run given as evidence: its progress folded from its entries, where it was found,
    when it ended, and whether its record verified (and if not, why)."""

    record: str  # the hash of its run_ended entry
    progress: Any  # engine/record.py RunProgress
    source: str  # "this journal" | "imported from <host> (<file>)"
    ended_at: datetime | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Gathered:
    """The evidence of one sign-off: an item per `over` state found, and why any is not."""

    items: tuple[dict[str, Any], ...]
    problems: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.problems


def gather(run: Any, playbook: Any, req: Requirement | None, stage_of: Callable[[str], Any],
           runs: Mapping[str, EvidenceRun | str], inventory: Any, now: datetime) -> Gathered:
    """Each `over` state of `req`: done in this run, else in one of `runs` (the evidence
    runs the run was given: record -> EvidenceRun, or why it could not be loaded)."""
    from otpatch.engine.approvals import evidence as done_here

    items, problems = [], []
    for over in (req.over if req else ()):
        here = done_here(run, playbook, over)
        stage = _stage_name(stage_of(over))
        if here is not None:
            items.append({**here, "stage": stage, "run_id": run.run_id, "record": None})
            continue
        item, why = _from_runs(run, playbook, req, over, stage, runs, inventory, now)
        if item is not None:
            items.append(item)
        else:
            problems.append(why)
    return Gathered(tuple(items), tuple(problems))


def _from_runs(run: Any, playbook: Any, req: Requirement, over: str, stage: str | None,
               runs: Mapping[str, EvidenceRun | str], inventory: Any, now: datetime
               ) -> tuple[dict[str, Any] | None, str]:
    from otpatch.engine.approvals import evidence as done_in

    given = (run.config.evidence or []) if run.config else []
    if not given:
        return None, (f"evidence state {over} ({stage or 'no stage'}) was not completed in "
                      f"this run: name the run that completed it (--evidence RECORD)")
    reasons = []
    for record in given:
        found = runs.get(plain(record))
        if found is None or isinstance(found, str):
            why = found or "not found in this journal or among imported runs"
            reasons.append(f"evidence run {record}: {why}")
            continue
        if done_in(found.progress, playbook, over) is None:
            reasons.append(f"evidence run {found.progress.run_id} did not complete {over}")
            continue
        why = refusal(found, run, playbook, req, stage, inventory, now)
        if why:
            reasons.append(f"evidence run {found.progress.run_id}: {why}")
            continue
        return _item(found, playbook, over, stage, inventory), ""
    return None, f"evidence state {over}: " + "; ".join(reasons)


def refusal(found: EvidenceRun, run: Any, playbook: Any, req: Requirement,
            stage: str | None, inventory: Any, now: datetime) -> str:
    """Why an evidence run does not count for this run ("" when it does)."""
    cfg, theirs = run.config, found.progress.config
    if found.problems:
        return "its record does not verify: " + "; ".join(found.problems)
    if cfg.mode == "execute" and theirs.mode != "execute":
        return "it was a dry run: a rehearsal against simulators, never evidence"
    if found.progress.status.value != "completed":
        return f"it ended {found.progress.status.value}, not completed"
    if theirs.playbook_hash != cfg.playbook_hash:
        return (f"it ran {theirs.playbook_name} {theirs.playbook_version} "
                f"({theirs.playbook_hash[:16]}…), not this playbook "
                f"({cfg.playbook_version}, {cfg.playbook_hash[:16]}…)")
    if _firmware(theirs.params) != _firmware(cfg.params):
        return (f"it tested firmware {_firmware(theirs.params) or 'none'}, this run installs "
                f"{_firmware(cfg.params) or 'none'}")
    limit = req.evidence_age or DEFAULT_EVIDENCE_AGE
    if found.ended_at is None or (now - found.ended_at).total_seconds() > limit:
        return _too_old(found.ended_at, now, limit)
    return _device_refusal(theirs, stage, inventory)


def _device_refusal(theirs: Any, stage: str | None, inventory: Any) -> str:
    """Every device the evidence run targeted at `stage` is one the register lists there,
    matched by serial (the register is signed: engine/siteregister.py)."""
    assets = theirs.assets
    if assets is None:
        return "it records no device identities (a run of an older otpatch): run it again"
    at_stage = {name: a for name, a in sorted(assets.items()) if a.get("stage") == stage}
    if not at_stage:
        return f"it targeted no {stage} device"
    by_serial = {h.serial: h for h in inventory.hosts.values() if h.serial}
    for name, asset in at_stage.items():
        listed = by_serial.get(asset.get("serial") or "")
        if listed is None:
            return (f"device {name} (serial {asset.get('serial') or 'none'}) is not in the "
                    "site register")
        if listed.stage.value != stage:
            return (f"device {name} (serial {asset.get('serial')}) is registered as "
                    f"{listed.stage.value} ({listed.name}), not {stage}")
    return ""


def _item(found: EvidenceRun, playbook: Any, over: str, stage: str | None,
          inventory: Any) -> dict[str, Any]:
    from otpatch.engine.approvals import evidence as done_in

    assets = found.progress.config.assets or {}
    return {**done_in(found.progress, playbook, over), "stage": stage,
            "run_id": found.progress.run_id, "record": shown(found.record),
            "ended": found.ended_at.isoformat(timespec="seconds") if found.ended_at else None,
            "devices": [{"asset": n, "serial": a.get("serial")}
                        for n, a in sorted(assets.items()) if a.get("stage") == stage],
            "source": found.source}


def _firmware(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{v.get('algorithm')}:{v.get('hash')}" for _, v in sorted(params.items())
                     if isinstance(v, Mapping) and "hash" in v)


def _too_old(ended: datetime | None, now: datetime, limit: float) -> str:
    from otpatch.modules.contract.durations import format_duration

    if ended is None:
        return "its end time is not recorded"
    age = (now - ended).total_seconds()
    return (f"it ended {format_duration(age)} ago ({ended.isoformat(timespec='seconds')}): "
            f"older than the {format_duration(limit)} evidence age limit")


def _stage_name(stage: Any) -> str | None:
    return getattr(stage, "value", stage)


def load_runs(home: Path, records: list[str], trust: Any) -> dict[str, EvidenceRun | str]:
    """The evidence runs named by record hash, each folded from its entries (this journal's
    or an imported record's, engine/evidence_store.py), or why it could not be."""
    from otpatch.engine.evidence_store import find_run
    from otpatch.engine.record import fold

    out: dict[str, EvidenceRun | str] = {}
    for record in records:
        key = plain(record)
        found = find_run(home, key, trust)
        if found is None:
            out[key] = "not found in this journal or among imported runs"
            continue
        if not found.entries:  # a stored record that cannot be read: nothing to fold
            out[key] = "its record does not verify: " + "; ".join(found.problems)
            continue
        progress = fold(found.run_id, found.entries)
        ended = next((e.ts for e in reversed(found.entries) if e.event_type == "run_ended"),
                     None)
        out[key] = EvidenceRun(key, progress, found.source,
                               datetime.fromisoformat(ended) if ended else None,
                               tuple(found.problems) if not found.verified else ())
    return out


def utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, timezone.utc)
