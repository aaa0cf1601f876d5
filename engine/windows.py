"""Maintenance windows, checked before a run starts: declared, long enough, not over.

A `window` requirement names a window of the inventory. The path from the state that
requires it to the end of the procedure must fit in it even in the worst case (a failure
at the end of a state, then its whole rollback): plan.path_need does that arithmetic, the
same one `plan` prints for budgets."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

from otpatch.modules.contract.errors import Problem
from otpatch.engine.lintbase import at
from otpatch.engine.model import Playbook, Requirement, State
from otpatch.modules.contract.durations import format_duration

RULES = {
    "window-undeclared": "a `window` requirement names a window the inventory does not declare",
    "window-too-short": "a maintenance window shorter than the path it opens needs in the "
                        "worst case (failure, then rollback)",
    "window-ended": "a maintenance window that is over",
}
WHY = {
    "window-undeclared": "a run would otherwise find out hours in, at the gate",
    "window-too-short": "a rollback that does not fit in the window leaves the plant "
                        "changed after the agreed time",
    "window-ended": "a window that is over can open no gate, not even in a rehearsal",
}


def requirements(pb: Playbook) -> Iterator[tuple[State, Requirement]]:
    for state in pb.states.values():
        for req in state.requires:
            if req.kind == "window":
                yield state, req


def window_problems(pb: Playbook, inventory: Any) -> list[Problem]:
    """Undeclared windows and windows too short for their path (needs an inventory)."""
    out = []
    for state, req in requirements(pb):
        window = inventory.windows.get(req.window)
        if window is None:
            known = ", ".join(sorted(inventory.windows)) or "none"
            out.append(at(req.where, "window-undeclared", f"{state.name}: window "
                          f"{req.window!r} is not declared in {inventory.path} (declared: "
                          f"{known})"))
            continue
        trouble = too_short(pb, state, window)
        if trouble:
            out.append(at(req.where, "window-too-short", f"{state.name}: {trouble}"))
    return out


def too_short(pb: Playbook, state: State, window: Any) -> str:
    """Why `window` cannot hold the path from `state`, with the arithmetic; "" if it can."""
    from otpatch.engine.plan import path_need

    length = (window.end - window.start).total_seconds()
    need = path_need(pb, state.name, f"window {window.name}", length)
    if need.worst_case <= length:
        return ""
    back = _rollback(pb, need)
    how = (f"{need.worst_fails_in} fails at {format_duration(need.worst_case - back)}"
           + (f", then rollback {need.worst_rollback} {format_duration(back)}"
              if need.worst_rollback else ""))
    return (f"window {window.name} is {format_duration(length)} ({_span(window)}) but the path "
            f"from {state.name} expects {format_duration(need.expected)} and needs "
            f"{format_duration(need.worst_case)} in the worst case ({how})")


def _rollback(pb: Playbook, need: Any) -> float:
    from otpatch.engine.plan import walk_next

    return walk_next(pb, need.worst_rollback).expected if need.worst_rollback else 0.0


def ended_windows(pb: Playbook, inventory: Any, now: datetime) -> list[Problem]:
    """Windows the playbook requires that are over at `now` (plan and run, dry runs too)."""
    out = []
    for state, req in requirements(pb):
        window = inventory.windows.get(req.window)
        if window is not None and window.end <= now:
            out.append(at(req.where, "window-ended", f"{state.name}: window {window.name} "
                          f"({_span(window)}) ended before {now.isoformat(timespec='seconds')}: "
                          "declare the next one in the inventory"))
    return out


def _span(window: Any) -> str:
    return f"{window.start.isoformat()} .. {window.end.isoformat()}"
