"""A run as its user sees it: one JSON document (run, resume and status --json), the
`status RUN_ID` text, who wrote its entries, its record hash and its emergencies."""
from __future__ import annotations

from pathlib import Path
from typing import Any

def record_hash(progress, home: Path) -> str | None:
    """An ended run's record hash (its run_ended entry's), as --evidence takes it."""
    from otpatch.engine.evidence_store import record_entry, shown
    from otpatch.engine.journal import Journal
    from otpatch.engine.record import FINAL

    if progress.status not in FINAL:
        return None
    with Journal.open(home, read_only=True) as journal:
        entry = record_entry(journal.entries(progress.run_id))
    return shown(entry.hash) if entry else None


def device_outcomes(progress, entries) -> list[dict[str, Any]]:
    """Each targeted device's outcome (engine/report/devices.py): changed and verified,
    restored and verified, left changed, not changed or unknown, with a statement."""
    from otpatch.engine.record import RunStatus
    from otpatch.engine.report.devices import trails_of, outcome

    trails = trails_of((e.event() for e in entries), progress.config.targets)
    done = progress.status is RunStatus.COMPLETED
    return [dict(zip(("outcome", "verified", "statement"), outcome(trails[h], done)), host=h)
            for h in sorted(trails)]


def device_lines(progress, entries) -> list[str]:
    """The `devices:` block of status RUN_ID and of a run's end."""
    rows = device_outcomes(progress, entries)
    return ["devices:", *[f"  {r['statement']}" for r in rows]] if rows else []


def run_document(progress, entries=None) -> dict[str, Any]:
    """A run as one JSON document (run, resume and status --json); with its journal
    entries, each device's outcome too."""
    cfg = progress.config
    return {
        "run_id": progress.run_id, "status": progress.status.value, "state": progress.state,
        "message": progress.message, "mode": cfg.mode, "playbook": cfg.playbook,
        "playbook_name": cfg.playbook_name, "playbook_version": cfg.playbook_version,
        "playbook_hash": cfg.playbook_hash, "params": cfg.params,
        "targets": cfg.targets, "elapsed": progress.elapsed,
        "simulated_clock": cfg.mode == "dry_run",
        "path": [{"state": v.state, "entered_at": v.entered_at, "left_at": v.left_at,
                  "event": v.event, "reason": v.reason} for v in progress.path],
        "waivers": cfg.waivers, "stage": cfg.stage, "evidence": cfg.evidence or [],
        "facts": progress.facts,
        **_emergency_document(progress),
        **({"devices": device_outcomes(progress, entries)} if entries is not None else {}),
    }


def _emergency_document(progress) -> dict[str, Any]:
    """Each sign-off the run passed on its emergency path, judged now (engine/emergency.py):
    retrospectively approved, awaiting, or NOT approved; or why it cannot be judged."""
    from datetime import datetime, timezone

    from otpatch.engine.emergency_record import run_record

    standings, why = run_record(progress, datetime.now(timezone.utc))
    if why:
        return {"emergencies": [{"gate": e.gate, "opened_at": e.opened_at, "due": e.due,
                                 "due_roles": e.due_roles, "approved": None,
                                 "state": f"cannot be judged: {why}"}
                                for e in progress.emergencies]}
    return {"emergencies": [s.to_json() for s in standings]}


def entries_of(home: Path, run_id: str) -> list:
    from otpatch.engine.journal import Journal

    with Journal.open(home, read_only=True) as journal:
        return journal.entries(run_id)


def who_document(entries) -> dict[str, Any]:
    """status RUN_ID --json: the run's record hash (None until it ends) and who wrote it."""
    from otpatch.engine.display import actors
    from otpatch.engine.evidence_store import record_entry, shown

    record = record_entry(entries)
    return {"record_hash": shown(record.hash) if record else None, "by": actors(entries)}


def format_status(progress, entries=()) -> str:
    from otpatch.engine.display import actor_line, clock_label

    who = who_document(entries)
    cfg = progress.config
    clock = "simulated" if cfg.mode == "dry_run" else "wall"
    lines = [f"run {progress.run_id}: {progress.status.value}"
             + (f": {progress.message}" if progress.message else ""),
             f"playbook: {cfg.playbook_name} {cfg.playbook_version} "
             f"({cfg.playbook_hash}) {cfg.mode}",
             "targets: " + ("; ".join(f"{t} -> {', '.join(h)}" for t, h in cfg.targets.items())
                             or "none"),
             *[f"waived: {w['rule']}: {w['reason']}" for w in cfg.waivers],
             f"path ({clock} clock):"]
    for v in progress.path:
        left = clock_label(v.left_at) if v.left_at is not None else "  …     "
        lines.append(f"  {clock_label(v.entered_at)} - {left}  {v.state}"
                     + (f"  ({v.event})" if v.event else ""))
    lines += _emergency_lines(progress)
    lines += device_lines(progress, entries)
    lines += ["by:", *[f"  {actor_line(span)}" for span in who["by"]]] if who["by"] else []
    if who["record_hash"]:
        lines.append(f"record {who['record_hash']} (otpatch evidence export "
                     f"{progress.run_id} -o FILE carries it)")
    return "\n".join(lines)


def _emergency_lines(progress) -> list[str]:
    """The emergency block of `status RUN_ID` (engine/emergency.py)."""
    from datetime import datetime, timezone

    from otpatch.engine.emergency_record import describe, run_record, unjudged

    standings, why = run_record(progress, datetime.now(timezone.utc))
    return unjudged(progress, why) if why else describe(standings)
