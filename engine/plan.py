"""The `plan` command: the path, gates, time budgets and rollback paths of a playbook; no I/O."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

from otpatch.engine.model import NO_ROLLBACK, TERMINALS, Budget, Playbook, State, Step
from otpatch.modules.contract.durations import format_duration
from otpatch.modules.contract.values import thaw


@dataclass(frozen=True)
class PlannedState:
    """A state on the happy path, with when it is expected to start (seconds from start)."""

    name: str
    stage: str | None
    requires: tuple[str, ...]  # described, not evaluated
    checkpoint: str | None
    steps: tuple[str, ...]  # `module (target=plc)`, `name: module` when the step is named
    expect: float | None  # None: no estimate (counts 0)
    starts_at: float
    rollback: str | None  # the rollback edge active here, declared or inherited
    rollback_inherited: bool  # True when the edge comes from a state before this one
    changes_device: bool


@dataclass(frozen=True)
class Walk:
    """The states met following `next` edges from one state, and where that leads."""

    states: tuple[str, ...]
    end: str | None  # the terminal reached; None when the walk stopped short
    stopped: str  # why it stopped short ("" when it reached a terminal)
    expected: float
    unestimated: tuple[str, ...]  # states without expect_duration (counted 0)


@dataclass(frozen=True)
class RollbackPath:
    """What happens when a device-changing state fails: its rollback edge and walk."""

    state: str
    rollback: str | None  # None: no rollback edge is active there
    walk: Walk | None


@dataclass(frozen=True)
class Gate:
    """A state with requirements, in path order; roles are the sign-offs it needs."""

    state: str
    requires: tuple[str, ...]
    roles: tuple[str, ...]
    on_path: bool


@dataclass(frozen=True)
class BudgetCheck:
    """A time budget against the expected time of its states on the happy path, and the
    worst case: a failure at the end of one of them, then its whole rollback path."""

    name: str
    limit: float
    states: tuple[str, ...]  # the budget's states on the happy path, in path order
    off_path: tuple[str, ...]  # the budget's states the happy path does not visit
    expected: float
    unestimated: tuple[str, ...]
    worst_case: float
    worst_fails_in: str | None
    worst_rollback: str | None

    @property
    def within(self) -> bool:
        return self.expected <= self.limit

    @property
    def worst_within(self) -> bool:
        return self.worst_case <= self.limit


@dataclass(frozen=True)
class TargetPlan:
    name: str
    group: str
    hosts: tuple[str, ...] | None  # None: no inventory given


@dataclass(frozen=True)
class ParamValue:
    name: str
    type: str
    value: Any  # a plain JSON value
    text: str


@dataclass(frozen=True)
class Plan:
    """Everything `otpatch plan` shows; computed from the playbook alone."""

    name: str
    version: str
    standard: str
    content_hash: str
    path: tuple[PlannedState, ...]
    walk: Walk  # how the happy path ended, and its expected total
    gates: tuple[Gate, ...]
    rollbacks: tuple[RollbackPath, ...]
    budgets: tuple[BudgetCheck, ...]
    targets: tuple[TargetPlan, ...]
    params: tuple[ParamValue, ...]
    windows: tuple["WindowFit", ...] = ()


@dataclass(frozen=True)
class WindowFit:
    """A maintenance window a state requires, against what the path from that state needs."""

    state: str
    window: str
    start: str  # ISO 8601, as the inventory gives it
    end: str
    length: float
    need: BudgetCheck


def make_plan(playbook: Playbook, targets: Mapping[str, tuple[Any, ...]] | None,
              params: Mapping[str, Any], windows: Mapping[str, Any] | None = None) -> Plan:
    """The plan of `playbook` for resolved `targets` (hosts with `.name`; None without an
    inventory), resolved `params` and the inventory's maintenance `windows`. Gates are
    listed, never evaluated."""
    walk = walk_next(playbook, playbook.initial)
    path = _path(playbook, walk)
    walks = _rollback_walks(playbook, path)
    meta = playbook.metadata
    return Plan(
        name=meta.name, version=meta.version, standard=meta.standard,
        content_hash=playbook.content_hash, path=path, walk=walk,
        gates=_gates(playbook, walk), rollbacks=_rollbacks(path, walks),
        budgets=tuple(_budget(b, path, walks) for b in playbook.budgets.values()),
        targets=tuple(TargetPlan(name, spec.group, _hosts(targets, name))
                      for name, spec in playbook.targets.items()),
        params=_params(playbook, params), windows=_window_fits(playbook, windows or {}))


def _window_fits(playbook: Playbook, windows: Mapping[str, Any]) -> tuple[WindowFit, ...]:
    out = []
    for state in playbook.states.values():
        for req in (r for r in state.requires if r.kind == "window"):
            w = windows.get(req.window)
            if w is not None:
                length = (w.end - w.start).total_seconds()
                out.append(WindowFit(state.name, w.name, w.start.isoformat(), w.end.isoformat(),
                                     length, path_need(playbook, state.name, w.name, length)))
    return tuple(out)


def budget_check(playbook: Playbook, budget: Budget) -> BudgetCheck:
    """One budget against the happy path: the one computation `plan` shows and the
    budget-over lint rule judges."""
    path = _path(playbook, walk_next(playbook, playbook.initial))
    return _budget(budget, path, _rollback_walks(playbook, path))


def path_need(playbook: Playbook, start: str, name: str, limit: float,
              within: Iterable[str] | None = None) -> BudgetCheck:
    """What the path from `start` (a window's gate) to its end needs: expected time, and the
    worst case of a failure at the end of one of its states followed by its rollback.
    `within`: count only these of its states (a downtime budget's)."""
    walk = walk_next(playbook, playbook.initial)
    if start not in walk.states:
        walk = walk_next(playbook, start)
    path = _path(playbook, walk)
    names = walk.states[walk.states.index(start):]
    if within is not None:
        names = tuple(n for n in names if n in set(within))
    return _budget(Budget(name=name, limit=limit, states=names), path,
                   _rollback_walks(playbook, path))


def _rollback_walks(playbook: Playbook, path: tuple[PlannedState, ...]) -> dict[str, Walk]:
    return {t: walk_next(playbook, t) for t in sorted({p.rollback for p in path} - {None})}


def walk_next(playbook: Playbook, start: str) -> Walk:
    """Follow `next` edges from `start` to a terminal; stop, saying why, at a state met
    twice (a loop), a state without a next edge, or a name that is not a state."""
    names: list[str] = []
    name: str | None = start
    stopped = ""
    while name not in TERMINALS:
        state = playbook.states.get(name) if name else None
        if name in names:
            stopped = f"loop: {names[-1]} leads back to {name}"
        elif state is None:
            stopped = f"unknown state {name!r} after {names[-1] if names else 'the start'}"
        elif not state.next:
            names.append(name)
            stopped = f"dead end: {name} has no next edge"
        if stopped:
            break
        names.append(name)
        name = state.next
    unestimated = tuple(n for n in names if playbook.states[n].expect_duration is None)
    expected = sum(playbook.states[n].expect_duration or 0.0 for n in names)
    return Walk(tuple(names), None if stopped else name, stopped, expected, unestimated)


def _path(playbook: Playbook, walk: Walk) -> tuple[PlannedState, ...]:
    out, clock, rollback = [], 0.0, None
    for name in walk.states:
        state = playbook.states[name]
        if state.rollback:
            rollback = None if state.rollback == NO_ROLLBACK else state.rollback
        inherited = bool(rollback) and not state.rollback
        out.append(PlannedState(
            name=name, stage=state.stage.value if state.stage else None,
            requires=tuple(r.describe() for r in state.requires),
            checkpoint=state.checkpoint, steps=tuple(_step(s) for s in state.do),
            expect=state.expect_duration, starts_at=clock, rollback=rollback,
            rollback_inherited=inherited,
            changes_device=any(_changes_device(s.module) for s in state.do)))
        clock += state.expect_duration or 0.0
    return tuple(out)


def _step(step: Step) -> str:
    names = [k for k in _target_args(step.module) if k in step.args]
    inside = ", ".join(f"{k}={step.args[k]}" for k in names)
    call = f"{step.module} ({inside})" if inside else step.module
    return f"{step.name}: {call}" if step.name else call


def _target_args(module: str) -> list[str]:
    from otpatch.modules import registry

    try:
        return registry.target_args(module)
    except registry.UnknownModule:
        return ["target"]


def _changes_device(module: str) -> bool:
    """From the module registry. A module the registry does not know (lint reports it) is
    taken to change a device: a plan must not hide a rollback question it cannot answer."""
    from otpatch.modules import registry

    try:
        return registry.get(module).changes_device
    except registry.UnknownModule:
        return True


def _gates(playbook: Playbook, walk: Walk) -> tuple[Gate, ...]:
    order = list(walk.states) + [n for n in playbook.states if n not in walk.states]
    return tuple(_gate(playbook.states[n], n in walk.states) for n in order
                 if playbook.states[n].requires)


def _gate(state: State, on_path: bool) -> Gate:
    roles = tuple(role for r in state.requires if r.kind == "signoff" for role in r.roles)
    return Gate(state.name, tuple(r.describe() for r in state.requires), roles, on_path)


def _rollbacks(path: tuple[PlannedState, ...], walks: Mapping[str, Walk]
               ) -> tuple[RollbackPath, ...]:
    return tuple(RollbackPath(p.name, p.rollback, walks.get(p.rollback or ""))
                 for p in path if p.changes_device)


def _budget(budget: Budget, path: tuple[PlannedState, ...],
            walks: Mapping[str, Walk]) -> BudgetCheck:
    """Expected: its states on the happy path. Worst case: the worst state to fail in, at
    the end of it, then the whole rollback path active there (not only the last state's)."""
    on = [p for p in path if p.name in budget.states]
    spent, worst, fails_in, via = 0.0, 0.0, None, None
    for planned in on:
        spent += planned.expect or 0.0
        rollback = walks[planned.rollback].expected if planned.rollback else 0.0
        if spent + rollback >= worst:
            worst, fails_in, via = spent + rollback, planned.name, planned.rollback
    names = tuple(p.name for p in on)
    return BudgetCheck(
        name=budget.name, limit=budget.limit, states=names,
        off_path=tuple(s for s in budget.states if s not in names), expected=spent,
        unestimated=tuple(p.name for p in on if p.expect is None), worst_case=worst,
        worst_fails_in=fails_in, worst_rollback=via)


def _hosts(targets: Mapping[str, tuple[Any, ...]] | None, name: str) -> tuple[str, ...] | None:
    if targets is None:
        return None
    return tuple(host.name for host in targets.get(name, ()))


def _params(playbook: Playbook, values: Mapping[str, Any]) -> tuple[ParamValue, ...]:
    names = list(playbook.params) + [n for n in values if n not in playbook.params]
    out = []
    for name in names:
        spec = playbook.params.get(name)
        kind = spec.type if spec else "string"
        value = values.get(name)
        out.append(ParamValue(name, kind, value, _param_text(kind, value)))
    return tuple(out)


def _param_text(kind: str, value: Any) -> str:
    if value is None:
        return "(not set)"
    if kind == "firmware" and isinstance(value, Mapping):
        digest = value.get("hash") or ""
        return f"{value.get('path')} ({value.get('algorithm')}:{_short(digest)})"
    if kind == "duration" and isinstance(value, (int, float)):
        return format_duration(value)
    return str(value)


def _short(digest: str, keep: int = 12) -> str:
    return digest if len(digest) <= keep else digest[:keep] + "…"


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
    short = "" if plan.walk.end else " (up to where the path stops)"
    lines.append(f"expected total: {format_duration(plan.walk.expected)}{short}"
                 + _unestimated(plan.walk.unestimated))
    return "\n".join(lines)


def _title(plan: Plan) -> str:
    standard = f"   [{plan.standard}]" if plan.standard else ""
    return f"plan: {plan.name} {plan.version} ({_short(plan.content_hash, 19)}){standard}"


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
    return (f"{chain}{end}: est {format_duration(r.walk.expected)}"
            + _unestimated(r.walk.unestimated))


def _unestimated(names: tuple[str, ...]) -> str:
    return f" (no estimate: {', '.join(names)})" if names else ""


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON values (lists, numbers in seconds), budget verdicts included."""
    doc = thaw(asdict(plan))
    for check, entry in zip(plan.budgets, doc["budgets"]):
        entry["within"], entry["worst_within"] = check.within, check.worst_within
    return doc

