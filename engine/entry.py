"""The proof before every production device change, declared or not (issue 11): now
inside the maintenance window passed on the way, the worst case of the path from the change
(a failure, then its rollback) ending before the window closes, and each downtime budget's
spent time plus its worst case within the approved limit. A rollback is never held back by
it: a failure inside the window always takes its rollback, whatever the clock says.

The arithmetic is guards.entry_proof (pure); this file gathers its figures from the
conductor's run and journals the verdict as a requirement of the state."""
from __future__ import annotations

from typing import Any

from otpatch.engine import events as E
from otpatch.engine import guards
from otpatch.engine.runvalues import time_in
from otpatch.modules import registry


class _EntryProof:
    """The requirement every production device change has, declared or not."""

    kind = "entry_proof"

    @staticmethod
    def describe() -> str:
        return "window and downtime before a production device change"


_ENTRY = _EntryProof()


def enters_production_change(c: Any, action: Any) -> bool:
    """A forward edge (never a rollback) into a production state with a step that changes
    a device. `c` is the conductor."""
    state = c.pb.states.get(action.dest)
    if state is None or action.trigger not in ("begin", "succeed"):
        return False
    if c.progress.rolling_back or not c.stages.is_production(state):
        return False
    return any(registry.get(step.module).changes_device for step in state.do)


def prove(c: Any, dest: str) -> list[str]:
    """The arithmetic before entering `dest`, journaled and shown as a requirement of the
    state; why it refuses, if it does (IEC 62443-2-3: production is patched only inside the
    agreed window and downtime)."""
    from otpatch.engine.plan import path_need

    need = path_need(c.pb, dest, "window", 0).worst_case
    uses = tuple(_downtime(c, dest, b) for b in c.pb.budgets.values() if b.downtime)
    verdict = guards.entry_proof(dest, c.gate_context(dest), _window_passed(c, dest), need,
                                 tuple(u for u in uses if u is not None))
    c.emit(E.Requirement, durable=False, state=dest, requirement=_ENTRY.describe(),
            requirement_kind=_ENTRY.kind, passed=verdict.passed, detail=verdict.detail,
            simulated=verdict.simulated)
    c.display.gate(dest, _ENTRY, verdict)
    return [] if verdict.passed else [f"{dest}: {verdict.detail}"]


def _downtime(c: Any, dest: str, budget: Any) -> guards.DowntimeUse | None:
    """A downtime budget's figures at `dest`: None when none of its states lies ahead."""
    from otpatch.engine.plan import path_need

    ahead = path_need(c.pb, dest, budget.name, budget.limit, within=budget.states)
    if not ahead.states:
        return None
    how = (f"{ahead.worst_fails_in} fails, then rollback -> {ahead.worst_rollback}"
           if ahead.worst_rollback else f"{ahead.worst_fails_in} runs its course")
    spent = time_in(c.progress.path, budget.states, c.ctx.clock.elapsed())
    return guards.DowntimeUse(budget.name, budget.limit, spent, ahead.worst_case, how)


def _window_passed(c: Any, dest: str) -> Any:
    """The maintenance window of the newest window gate on the way to `dest` (its own
    included); None when the run passed none."""
    for name in [dest, *(v.state for v in reversed(c.progress.path))]:
        state = c.pb.states.get(name)
        for req in state.requires if state else ():
            if req.kind == "window":
                return c.windows.get(req.window)
    return None
