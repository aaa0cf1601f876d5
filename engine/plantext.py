"""`otpatch plan` as text and as JSON: one section per question the plan answers."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from otpatch.engine.plan import BudgetCheck, Plan, PlannedState, RollbackPath, WindowFit, short
from otpatch.modules.contract.durations import format_duration
from otpatch.modules.contract.values import thaw


def format_plan(plan: Plan) -> str:
    """The plan as plain text for an OT engineer: one section per question it answers."""
    lines = [_title(plan), _targets_line(plan), _params_line(plan),
             "path (following next edges; requirements listed, not evaluated):"]
    lines += _path_lines(plan)
    lines += _section("gates, in order (listed, not evaluated):", _gate_lines(plan))
    lines += _section("budgets:", [_budget_line(b) for b in plan.budgets])
    if plan.windows:
        lines += _section("maintenance windows (from the inventory):",
                          [_window_line(w) for w in plan.windows])
    lines += _section("rollback paths (from each state that changes a device):",
                      [_rollback_line(r) for r in plan.rollbacks])
    lines += _section("findings for the approvers (the worst case when a rollback fails too):",
                      findings(plan))
    if plan.guided:
        on_path = {p.name for p in plan.path}
        lines += _section("steps a person performs (guided, on hosts that are no simulator):",
                          [f"{g.state}{'' if g.state in on_path else ' (off the happy path)'}"
                           f": {g.describe()}" for g in plan.guided])
    q = plan.qualification
    if q is not None and (q.checks or q.attestations):
        lines += _section("firmware qualification (prerequisites against the baseline):",
                          [c.line() for c in q.checks] + [a.line() for a in q.attestations])
    short = "" if plan.walk.end else " (up to where the path stops)"
    lines.append(f"expected total: {format_duration(plan.walk.expected)}{short}"
                 + _unestimated(plan.walk.unestimated))
    return "\n".join(lines)


def _title(plan: Plan) -> str:
    standard = f"   [{plan.standard}]" if plan.standard else ""
    return f"plan: {plan.name} {plan.version} ({short(plan.content_hash, 19)}){standard}"


def _targets_line(plan: Plan) -> str:
    parts = [f"{t.name} -> " + (", ".join(t.hosts) or "(no hosts)" if t.hosts is not None
                                else f"group {t.group} (no inventory given)")
             for t in plan.targets]
    return "targets: " + ("; ".join(parts) or "none")


def _params_line(plan: Plan) -> str:
    return "params: " + ("; ".join(f"{p.name} = {p.text}" for p in plan.params) or "none")


def _path_lines(plan: Plan) -> list[str]:
    width = max([len(p.name) for p in plan.path] + [8])
    stage = max([len(p.stage or "") for p in plan.path] + [5])
    out = []
    for p in plan.path:
        est = f"est {format_duration(p.expect)}" if p.expect is not None else "no estimate"
        out.append(f"  {_clock(p.starts_at)}  {p.name:<{width}}  {p.stage or '-':<{stage}}  "
                   f"{est}")
        out += [" " * 13 + detail for detail in _details(p)]
    end = f"=> {plan.walk.end}" if plan.walk.end else f"stops: {plan.walk.stopped}"
    out.append(f"  {_clock(plan.walk.expected)}  {end}")
    return out


def _details(p: PlannedState) -> list[str]:
    out = [f"requires {r}" for r in p.requires]
    if p.checkpoint:
        out.append(f"checkpoint {p.checkpoint}")
    out += [f"do {step}" for step in p.steps]
    if p.rollback:
        out.append(f"rollback -> {p.rollback}" + (" (inherited)" if p.rollback_inherited
                                                   else ""))
    elif p.changes_device:
        out.append("changes a device with NO rollback edge")
    return out


def _clock(seconds: float) -> str:
    h, rest = divmod(int(round(seconds)), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def _section(heading: str, body: list[str]) -> list[str]:
    return [heading] + ["  " + line for line in body] if body else [heading + " none"]


def _gate_lines(plan: Plan) -> list[str]:
    out = []
    for i, gate in enumerate(plan.gates, 1):
        where = "" if gate.on_path else " (off the happy path)"
        line = f"{i}. {gate.state}{where}: " + "; ".join(gate.requires)
        if gate.roles:
            line += f"; must sign: {', '.join(gate.roles)}"
        out.append(line)
    return out


def _budget_line(b: BudgetCheck) -> str:
    verdict = lambda ok: "within" if ok else "OVER"  # noqa: E731
    line = (f"{b.name} {format_duration(b.limit)}: expected {format_duration(b.expected)} "
            f"({verdict(b.within)}); worst case with rollback "
            f"{format_duration(b.worst_case)} ({verdict(b.worst_within)})")
    if b.worst_fails_in:
        line += f": {b.worst_fails_in} fails, then " + (
            f"rollback -> {b.worst_rollback}" if b.worst_rollback else "no rollback")
    if b.off_path:
        line += f" (off the happy path: {', '.join(b.off_path)})"
    if b.contingency_deeper:
        line += (f"; if the rollback fails too {format_duration(b.contingency_case)} "
                 f"({verdict(b.contingency_within)})")
    return line + _unestimated(b.unestimated)


def _window_line(w: WindowFit) -> str:
    fits = "fits" if w.need.worst_within else "TOO SHORT"
    worst = (f"; worst case {format_duration(w.need.worst_case)}: {w.need.worst_fails_in} "
             f"fails, then " + (f"rollback -> {w.need.worst_rollback}" if w.need.worst_rollback
                                 else "no rollback")) if w.need.worst_fails_in else ""
    return (f"{w.window} {w.start} .. {w.end} ({format_duration(w.length)}) for the path from "
            f"{w.state}: expected {format_duration(w.need.expected)}{worst} ({fits})")


def _rollback_line(r: RollbackPath) -> str:
    if r.walk is None:
        return f"{r.state}: NO rollback edge"
    chain = " -> ".join((r.state, *r.walk.states))
    end = f" -> {r.walk.end}" if r.walk.end else f" (stops: {r.walk.stopped})"
    deeper = r.contingency
    worse = (f"; if it fails: {deeper.describe()}, {format_duration(deeper.seconds)}"
             if deeper and deeper.failing else "")
    return (f"{chain}{end}: est {format_duration(r.walk.expected)}"
            + _unestimated(r.walk.unestimated) + worse)


def findings(plan: Plan) -> list[str]:
    """Each budget and window that the worst case overruns once a rollback fails too (the
    restore refused, the downgrade failing, the spare fitted): a fact for the approvers to
    weigh before they sign, not an estimate to tune away."""
    out = [_finding(b.name, format_duration(b.limit), b) for b in plan.budgets
           if not b.contingency_within]
    out += [_finding(f"window {w.window}", f"{format_duration(w.length)} from {w.state}",
                     w.need) for w in plan.windows if not w.need.contingency_within]
    return out


def _finding(name: str, limit: str, b: BudgetCheck) -> str:
    via = b.contingency.describe() if b.contingency else "no rollback"
    return (f"{name} ({limit}) is overrun: {format_duration(b.contingency_case)} when "
            f"{b.contingency_fails_in} fails, then {via}")


def _unestimated(names: tuple[str, ...]) -> str:
    return f" (no estimate: {', '.join(names)})" if names else ""


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON values (lists, numbers in seconds), budget verdicts included."""
    doc = thaw(asdict(plan))
    for check, entry in zip(plan.budgets, doc["budgets"]):
        entry["within"], entry["worst_within"] = check.within, check.worst_within
        entry["contingency_within"] = check.contingency_within
    doc["findings"] = findings(plan)
    return doc

