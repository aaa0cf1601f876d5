"""The `plan` command: the path, gates, time budgets and rollback paths of a playbook; no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from otpatch.engine.model import NO_ROLLBACK, Budget, Playbook, State, Step
from otpatch.engine.planwalk import Walk, walk_next
from otpatch.engine.planworst import Contingency, contingency
from otpatch.modules.contract.durations import format_duration


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
class RollbackPath:
    """What happens when a device-changing state fails: its rollback edge and walk."""

    state: str
    rollback: str | None  # None: no rollback edge is active there
    walk: Walk | None
    contingency: Contingency | None = None  # its worst case when rollback states fail too


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
    # the worst case when the rollback itself fails and its on_failure paths follow
    contingency_case: float = 0.0
    contingency_fails_in: str | None = None
    contingency: Contingency | None = None

    @property
    def within(self) -> bool:
        return self.expected <= self.limit

    @property
    def worst_within(self) -> bool:
        return self.worst_case <= self.limit

    @property
    def contingency_within(self) -> bool:
        return self.contingency_case <= self.limit

    @property
    def contingency_deeper(self) -> bool:
        """True when a failing rollback makes the worst case longer than the rollback's."""
        return self.contingency_case > self.worst_case


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
    guided: tuple[Any, ...] = ()  # lint_real.PersonStep: a person performs it, state order
    qualification: Any = None  # qualify_check.Qualified: prerequisites met, attestations due


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
              params: Mapping[str, Any], windows: Mapping[str, Any] | None = None,
              qualification: Any = None) -> Plan:
    """The plan of `playbook` for resolved `targets` (hosts with `.name`; None without an
    inventory), resolved `params` and the inventory's maintenance `windows`. Gates are
    listed, never evaluated; `qualification`: the firmware's prerequisites as judged
    against the baseline (engine/qualify_check.py), shown."""
    walk = walk_next(playbook, playbook.initial)
    path = _path(playbook, walk)
    walks = _rollback_walks(playbook, path)
    deep = _contingencies(playbook, path)
    meta = playbook.metadata
    return Plan(
        name=meta.name, version=meta.version, standard=meta.standard,
        content_hash=playbook.content_hash, path=path, walk=walk,
        gates=_gates(playbook, walk), rollbacks=_rollbacks(path, walks, deep),
        budgets=tuple(_budget(b, path, walks, deep) for b in playbook.budgets.values()),
        targets=tuple(TargetPlan(name, spec.group, _hosts(targets, name))
                      for name, spec in playbook.targets.items()),
        params=_params(playbook, params), windows=_window_fits(playbook, windows or {}),
        guided=_guided(playbook, targets, walk), qualification=qualification)


def _guided(playbook: Playbook, targets: Mapping[str, tuple[Any, ...]] | None, walk: Walk
            ) -> tuple[Any, ...]:
    """The guided steps on hosts that are no simulator (none without an inventory), the
    happy path's states first."""
    from otpatch.engine.lint_real import person_steps

    if targets is None:
        return ()
    found = person_steps(playbook, lambda name: targets.get(name, ()))
    order = list(walk.states) + [n for n in playbook.states if n not in walk.states]
    return tuple(step for name in order for step in found.get(name, ()))


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
    return _budget(budget, path, _rollback_walks(playbook, path),
                   _contingencies(playbook, path))


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
                   _rollback_walks(playbook, path), _contingencies(playbook, path))


def _rollback_walks(playbook: Playbook, path: tuple[PlannedState, ...]) -> dict[str, Walk]:
    return {t: walk_next(playbook, t) for t in sorted({p.rollback for p in path} - {None})}


def _contingencies(playbook: Playbook, path: tuple[PlannedState, ...]
                   ) -> dict[str, Contingency]:
    return {t: contingency(playbook, t) for t in sorted({p.rollback for p in path} - {None})
            if t in playbook.states}


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


def _rollbacks(path: tuple[PlannedState, ...], walks: Mapping[str, Walk],
               deep: Mapping[str, Contingency]) -> tuple[RollbackPath, ...]:
    return tuple(RollbackPath(p.name, p.rollback, walks.get(p.rollback or ""),
                              deep.get(p.rollback or ""))
                 for p in path if p.changes_device)


def _budget(budget: Budget, path: tuple[PlannedState, ...], walks: Mapping[str, Walk],
            deep: Mapping[str, Contingency]) -> BudgetCheck:
    """Expected: its states on the happy path. Worst case: the worst state to fail in, at
    the end of it, then the whole rollback path active there (not only the last state's).
    Contingency: the same when the rollback's own states may fail and their on_failure
    paths follow (what the window guard does not count, and `plan` reports)."""
    on = [p for p in path if p.name in budget.states]
    spent, worst, fails_in, via = 0.0, 0.0, None, None
    deepest, deep_in, deep_via = 0.0, None, None
    for planned in on:
        spent += planned.expect or 0.0
        rollback = walks[planned.rollback].expected if planned.rollback else 0.0
        if spent + rollback >= worst:
            worst, fails_in, via = spent + rollback, planned.name, planned.rollback
        chain = deep.get(planned.rollback or "")
        further = chain.seconds if chain else rollback
        if spent + further >= deepest:
            deepest, deep_in, deep_via = spent + further, planned.name, chain
    names = tuple(p.name for p in on)
    return BudgetCheck(
        name=budget.name, limit=budget.limit, states=names,
        off_path=tuple(s for s in budget.states if s not in names), expected=spent,
        unestimated=tuple(p.name for p in on if p.expect is None), worst_case=worst,
        worst_fails_in=fails_in, worst_rollback=via, contingency_case=deepest,
        contingency_fails_in=deep_in, contingency=deep_via)


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
        return f"{value.get('path')} ({value.get('algorithm')}:{short(digest)})"
    if kind == "duration" and isinstance(value, (int, float)):
        return format_duration(value)
    return str(value)


def short(digest: str, keep: int = 12) -> str:
    return digest if len(digest) <= keep else digest[:keep] + "…"
