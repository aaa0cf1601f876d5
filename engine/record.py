"""The run record: what a run has done so far, folded from its journal's typed events.

The conductor keeps one RunProgress while it runs; `resume` and `status` rebuild the same
object from the journal alone, so a run killed at any instant continues where the journal
says it stood. Folding is a table from event type to one small apply function."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from collections.abc import Mapping
from typing import Any, Iterable

from otpatch.engine import events as E
from otpatch.engine.model import thaw

START = "_start"  # the machine's state before the playbook's initial state is entered


class RunStatus(str, Enum):
    RUNNING = "running"
    INTERRUPTED = "interrupted"  # the process died; `otpatch resume` continues it
    AWAITING = "awaiting"  # stopped at a gate (sign-off, hash, window); resume retries it
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"
    HALTED = "halted"  # needs a human: a rollback failed or a device could not tell


FINAL = frozenset({RunStatus.COMPLETED, RunStatus.ROLLED_BACK, RunStatus.ABORTED,
                   RunStatus.HALTED})


@dataclass
class Visit:
    """One pass through a state: when it was entered and left, on the run's clock."""

    state: str
    entered_at: float
    left_at: float | None = None
    event: str | None = None  # the event that left it: succeed | fail | roll_back
    reason: str | None = None  # why it was left by fail or roll_back


@dataclass
class RunProgress:
    """Where a run stands. Mutable working memory of the conductor; rebuilt by fold()."""

    run_id: str
    config: E.RunStarted
    state: str = START
    step_index: int = 0
    facts: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    active_rollback: str | None = None
    rolling_back: bool = False
    pending: E.StepIntent | None = None  # a device step's intent whose result is not recorded
    status: RunStatus = RunStatus.RUNNING
    path: list[Visit] = field(default_factory=list)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    failure: str | None = None  # the current state failed (a step, a timeout): take its edge

    @property
    def state_started_at(self) -> float:
        return self.path[-1].entered_at if self.path else 0.0


def merge_facts(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """Deep-merge a module's facts: nested mappings merge, anything else replaces."""
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge_facts(into[key], value)
        else:
            into[key] = thaw(value)


def apply_result(progress: RunProgress, event: E.StepResult) -> None:
    """A step result's effect on the run: facts, registered result, position."""
    scope = event.facts_scope
    target = progress.facts.setdefault(scope, {}) if scope else progress.facts
    merge_facts(target, event.result.facts or {})
    if event.register:
        progress.results[event.register] = thaw(event.result.to_dict())
    progress.step_index = event.index + 1
    progress.pending = None
    progress.failure = event.failure


def apply_transition(progress: RunProgress, event: E.Transition) -> None:
    if progress.path:
        progress.path[-1].left_at = event.elapsed
        progress.path[-1].event = event.trigger
        progress.path[-1].reason = event.reason
    progress.state = event.to
    progress.step_index = 0
    progress.failure = None
    progress.active_rollback = event.rollback
    progress.rolling_back = event.rolling_back
    progress.path.append(Visit(event.to, event.elapsed))
    progress.status = RunStatus.RUNNING


def _intent(progress: RunProgress, event: E.StepIntent) -> None:
    progress.pending = event


def _checkpoint(progress: RunProgress, event: E.Checkpoint) -> None:
    progress.checkpoints[event.name] = event.facts


def _paused(progress: RunProgress, event: E.RunPaused) -> None:
    progress.status, progress.message = RunStatus.AWAITING, event.message


def _resumed(progress: RunProgress, event: E.RunResumed) -> None:
    progress.status = RunStatus.RUNNING


def _ended(progress: RunProgress, event: E.RunEnded) -> None:
    progress.status, progress.message = RunStatus(event.status), event.message
    if progress.path and progress.path[-1].left_at is None:
        progress.path[-1].left_at = event.elapsed


def _nothing(progress: RunProgress, event: Any) -> None:
    """Recorded for the audit trail; the run's position does not depend on it."""


APPLY = {E.Transition: apply_transition, E.StepIntent: _intent, E.StepResult: apply_result,
         E.Checkpoint: _checkpoint, E.RunPaused: _paused, E.RunResumed: _resumed,
         E.RunEnded: _ended, E.Requirement: _nothing, E.ReadBackDone: _nothing,
         E.ModuleRecord: _nothing, E.ChainCheckpoint: _nothing}


def fold(run_id: str, entries: Iterable[Any]) -> RunProgress:
    """Rebuild a run's progress from its journal entries (in order); JournalError (naming
    the entry) for one that does not fit its type, InputError for a run never started."""
    progress: RunProgress | None = None
    for entry in entries:
        event = entry.event()
        if isinstance(event, E.RunStarted):
            if progress is None:
                progress = RunProgress(run_id=run_id, config=event)
            continue
        if progress is None:
            continue
        progress.elapsed = max(progress.elapsed, event.elapsed)
        APPLY.get(type(event), _nothing)(progress, event)
    if progress is None:
        from otpatch.engine.errors import InputError

        raise InputError(f"run {run_id!r} has no run_started entry in the journal")
    return progress
