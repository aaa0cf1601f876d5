"""What the run does next: a pure function of the playbook and the run's progress.

`next_action(playbook, progress, changes_device)` reads; it never acts, journals or
changes the progress. The conductor (engine/conductor.py) executes the action, journals the
events it produced, and folds each into the progress (engine/record.py `apply`), then asks
again. The same progress, from a live run or from the journal after a crash, gives the same
next action: that is what makes a resume continue exactly where the run stood."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

from otpatch.engine.model import TERMINALS, Playbook
from otpatch.engine.record import START, RunProgress, RunStatus

OUTCOME_STATUS = {"completed": RunStatus.COMPLETED, "rolled_back": RunStatus.ROLLED_BACK,
                  "aborted": RunStatus.ABORTED}


@dataclass(frozen=True)
class RunStep:
    """Run step `index` of `state` (its intent first when it changes a device)."""

    state: str
    index: int


@dataclass(frozen=True)
class ReadBack:
    """A device step's intent has no result: ask the device whether it took effect."""

    state: str
    index: int
    module: str


@dataclass(frozen=True)
class Move:
    """Take an edge: `trigger` (begin | succeed | fail | roll_back | skip) to `dest`, for
    `reason` (a failure's, or why a stage run skips a state). The destination's gates are
    evaluated before the edge is taken (not for a state the stage run skips)."""

    trigger: str
    dest: str
    reason: str = ""


@dataclass(frozen=True)
class End:
    """The run ends with `status` (a terminal state reached, or halted for a human)."""

    status: RunStatus
    message: str = ""


Action = Union[RunStep, ReadBack, Move, End]


def next_action(pb: Playbook, p: RunProgress, changes_device: Callable[[str], bool],
                out_of_stage: frozenset[str] = frozenset()) -> Action | None:
    """The next thing to do, or None when the run is not running (ended or awaiting).
    `changes_device(module)`: whether a module changes a device (the registry knows).
    `out_of_stage`: the states a stage run passes over (`skip` to their next edge)."""
    if p.status is not RunStatus.RUNNING:
        return None
    if p.pending is not None and changes_device(p.pending.module):
        return ReadBack(p.pending.state, p.pending.index, p.pending.module)
    if p.state == START:
        return _move(pb, p, "begin", pb.initial)
    if p.state in TERMINALS:  # the edge into it is taken (or a resume found it taken)
        return End(OUTCOME_STATUS[p.state], end_message(p))
    state = pb.states[p.state]
    if p.failure:  # a failed step's result is recorded; its edge is taken next
        return on_failure(pb, p, p.failure)
    if state.name in out_of_stage and p.step_index == 0 and state.next:
        return Move("skip", state.next)  # the display says why; no failure to carry
    if p.step_index < len(state.do):
        return RunStep(state.name, p.step_index)
    if not state.next:
        return on_failure(pb, p, f"state {state.name} has no next edge")
    return _move(pb, p, "succeed", state.next)


def on_failure(pb: Playbook, p: RunProgress, reason: str) -> Action:
    """The edge a failure takes: the active rollback, else the state's failure edge; a
    failure inside a rollback without its own failure edge halts for a human."""
    state = pb.states[p.state]
    if p.active_rollback and not p.rolling_back:
        return _move(pb, p, "roll_back", p.active_rollback, reason)
    if state.on_failure or not p.rolling_back:
        return _move(pb, p, "fail", state.on_failure or "aborted", reason)
    return End(RunStatus.HALTED, f"rollback step failed in {state.name}: {reason}; the "
                                 "device may be neither as found nor as left: a human must "
                                 "restore it")


def _move(pb: Playbook, p: RunProgress, trigger: str, dest: str, reason: str = "") -> Action:
    """The edge, unless it enters a state whose max_visits is spent: then that state fails
    instead (through the rollback path); a failure edge back into it halts for a human."""
    limit = pb.states[dest].max_visits if dest in pb.states else None
    if limit and sum(v.state == dest for v in p.path) >= limit:
        spent = f"state {dest} already entered {limit} time(s) (max_visits {limit})"
        if trigger == "succeed":
            return on_failure(pb, p, spent)
        return End(RunStatus.HALTED, f"{spent}, and the failure edge of {p.state} leads back "
                                     "into it: a human must decide")
    return Move(trigger, dest, reason)


def end_message(p: RunProgress) -> str:
    """Why the run ended where it did: the failure that took the edge into the terminal
    state, else what started the rollback."""
    into = p.path[-2] if len(p.path) >= 2 else None
    return (into.reason if into and into.reason else "") or rollback_reason(p)


def rollback_reason(p: RunProgress) -> str:
    """Why the run rolled back (what failed), for the message of its end."""
    started = [v for v in p.path if v.event == "roll_back" and v.reason]
    return f"rolled back after {started[-1].state} failed: {started[-1].reason}" \
        if started else ""
