"""The change-control record as one JSON document (schemas/report.schema.json), built from
a run's typed journal events alone: no inventory, playbook or device is read. The same
entries always give the same document, so verify-bundle can rebuild it from a bundle's
journal slice and compare it byte for byte."""
from __future__ import annotations

from typing import Any, Iterable

from otpatch.engine import events as E
from otpatch.engine.report import devices as D
from otpatch.engine.report import parts

KIND = "otpatch-report/1"


def build(records: Iterable[Any], change: bool = False, missing: Iterable[str] = ()
          ) -> dict[str, Any]:
    """The report of these runs (RunRecords, engine/report/source.py, oldest first): one
    run, or with `change` the runs one approval chain ties together (the last is the run
    whose sign-offs name the others; `missing`: evidence named that no journal here holds;
    each device once, from the run that last changed it); without `change`, several runs
    stand each on its own, their devices listed run by run."""
    runs = [run_document(r) for r in records]
    devices = change_devices(runs) if change else [d for r in runs for d in r["devices"]]
    doc = {"kind": KIND, "change": None, "runs": runs, "devices": devices}
    if change:
        doc["change"] = {"id": runs[-1]["run_id"], "runs": [r["run_id"] for r in runs],
                         "status": runs[-1]["status"], "missing": sorted(missing)}
    return doc


def change_devices(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each device once: from the last run that changed it, else the last that read it."""
    chosen: dict[str, dict[str, Any]] = {}
    for run in runs:
        for device in run["devices"]:
            before = chosen.get(device["host"])
            if before is None or device["changed"] or not before["changed"] and (
                    device["as_left"] or not before["as_left"]):
                chosen[device["host"]] = device
    return [chosen[h] for h in sorted(chosen)]


def run_document(record: Any) -> dict[str, Any]:
    """One run of the report (#/$defs/run)."""
    from otpatch.engine.display import actor_line, actors
    from otpatch.engine.evidence_store import shown
    from otpatch.engine.record import FINAL, RunStatus, fold

    entries = record.entries
    events = [(e, e.event()) for e in entries]
    progress = fold(record.run_id, entries)
    cfg = progress.config
    typed = [ev for _, ev in events]
    ended = record.record
    completed = progress.status is RunStatus.COMPLETED
    run_devices = _devices(record.run_id, typed, cfg, completed)
    return {
        "run_id": record.run_id, "status": progress.status.value, "state": progress.state,
        "message": progress.message, "mode": cfg.mode, "stage": cfg.stage,
        "clock": "simulated" if cfg.mode == "dry_run" else "wall",
        "started_at": entries[0].ts, "ended_at": ended.ts if ended else None,
        "elapsed": progress.elapsed, "operator": cfg.operator,
        "by": [actor_line(span) for span in actors(entries)],
        "playbook": {"name": cfg.playbook_name, "version": cfg.playbook_version,
                     "hash": cfg.playbook_hash, "file": cfg.playbook},
        "inventory": {"file": cfg.inventory, "hash": cfg.inventory_hash,
                      "register": cfg.register},
        "params": cfg.params, "targets": cfg.targets,
        "evidence": [shown(r) if not r.startswith("sha256:") else r
                     for r in cfg.evidence or []],
        "firmware": parts.firmware(typed),
        "risk": parts.risk(typed, cfg.targets),
        "firewall": parts.firewall(typed),
        "post_change": parts.post_change(typed),
        "devices": run_devices,
        "states": visits(events, cfg, progress.status in FINAL),
        "approvals": parts.approvals(events, progress),
        "attestations": parts.attestations(typed),
        "deviations": parts.deviations(typed, cfg, progress),
        "budgets": next((ev.budgets for ev in typed if isinstance(ev, E.RunEnded)), {}),
        "journal": parts.journal(record),
    }


def ended_devices(run_id: str, entries: list[Any]) -> tuple[list[dict], dict[str, Any]]:
    """The devices of an ended run (its entries up to its record), as run_document gives
    them, and the run facts beside them (run_id, mode, ended_at), without the rest of the
    report: what the baseline folds (engine/baseline.py)."""
    from otpatch.engine.record import RunStatus, fold

    progress = fold(run_id, entries)
    cfg = progress.config
    devices = _devices(run_id, [e.event() for e in entries], cfg,
                       progress.status is RunStatus.COMPLETED)
    return devices, {"run_id": run_id, "mode": cfg.mode, "ended_at": entries[-1].ts}


def _devices(run_id: str, typed: list[Any], cfg: Any, completed: bool) -> list[dict]:
    assets = cfg.assets or {}
    trails = D.trails_of(typed, cfg.targets)
    return [D.device_document(trails[h], run_id, assets.get(h), completed)
            for h in sorted(trails)]


# -- states and steps --------------------------------------------------------------------

def visits(events: list[tuple[Any, Any]], cfg: Any, ended: bool) -> list[dict[str, Any]]:
    """Every state visit in order: its requirements, steps, timing and how it was left."""
    out: list[dict[str, Any]] = []
    gates: list[dict[str, Any]] = []  # requirements evaluated on the edge into a state
    intents: dict[tuple[str, int], tuple[Any, Any]] = {}
    count: dict[str, int] = {}
    for entry, ev in events:
        if isinstance(ev, E.Requirement):
            gates.append(parts.requirement(ev))
        elif isinstance(ev, E.Transition):
            if out:
                out[-1].update(left_at=ev.elapsed, left_by=ev.trigger, reason=ev.reason,
                               duration=ev.elapsed - out[-1]["entered_at"],
                               skipped=ev.trigger == "skip")
            count[ev.to] = count.get(ev.to, 0) + 1
            mine = [g for g in gates if g.pop("_state") == ev.to]
            gates = []
            out.append(_visit(ev, count[ev.to], mine))
        elif isinstance(ev, E.Checkpoint) and out:
            out[-1]["checkpoint"] = ev.name
        elif isinstance(ev, E.StepIntent) and out:
            intents[(ev.state, ev.index)] = (entry, ev)
            out[-1]["steps"].append(_step(entry, ev, None, cfg))
        elif isinstance(ev, E.StepResult) and out:
            _result_into(out[-1]["steps"], intents.pop((ev.state, ev.index), None),
                         entry, ev, cfg)
        elif isinstance(ev, E.ReadBackDone) and out:
            out[-1]["steps"].append(parts.read_back_step(entry, ev))
    if out and ended:
        out[-1]["terminal"] = True
    for visit in out:
        visit["stage"] = _stage(visit, cfg.assets or {})
    return out


def _visit(ev: E.Transition, n: int, gates: list[dict[str, Any]]) -> dict[str, Any]:
    return {"state": ev.to, "stage": None, "visit": n, "entered_at": ev.elapsed,
            "left_at": None, "duration": None, "left_by": None, "reason": None,
            "skipped": False, "rollback": ev.rolling_back or ev.trigger == "roll_back",
            "terminal": False, "checkpoint": None, "requirements": gates, "steps": []}


def _step(entry: Any, intent: E.StepIntent, result: E.StepResult | None, cfg: Any
          ) -> dict[str, Any]:
    """A step row; an intent alone is a change whose result is not recorded."""
    target = intent.args.get("target")
    return {"index": intent.index, "name": intent.step, "module": intent.module,
            "hosts": list(cfg.targets.get(target, [])) if isinstance(target, str) else [],
            "changes_device": True, "status": "interrupted", "changed": False,
            "msg": "started; no result recorded (the process stopped during the action)",
            "started_at": intent.elapsed, "duration": 0.0, "reverified": False,
            "entry": entry.seq}


def _result_into(steps: list[dict[str, Any]], intent: Any, entry: Any, ev: E.StepResult,
                 cfg: Any) -> None:
    """The step's result: it fills its intent's row, or makes a read-only step's row."""
    row = next((s for s in reversed(steps) if intent and s["entry"] == intent[0].seq), None)
    if row is None:
        row = {"index": ev.index, "name": ev.step, "module": ev.module,
               "changes_device": False, "entry": entry.seq}
        steps.append(row)
    row.update(hosts=list(cfg.targets.get(ev.facts_scope, [])) if ev.facts_scope
               else row.get("hosts", []),
               status="failed" if ev.result.failed else "ok",
               changed=bool(ev.result.changed), msg=ev.result.msg or "",
               started_at=ev.elapsed - ev.duration, duration=ev.duration,
               reverified=ev.reverified, entry=entry.seq, facts=ev.result.facts or {})


def _stage(visit: dict[str, Any], assets: dict[str, Any]) -> str | None:
    """The stage of the devices a visit's steps touched, when they share one."""
    stages = {(assets.get(h) or {}).get("stage") for s in visit["steps"] for h in s["hosts"]}
    stages.discard(None)
    return stages.pop() if len(stages) == 1 else None
