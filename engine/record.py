"""The run record: what a run has done so far, folded from its journal entries.

The conductor keeps one RunProgress while it runs; `resume` and `status` rebuild the same
object from the journal alone, so a run killed at any instant continues where the journal
says it stood."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from collections.abc import Mapping
from typing import Any, Iterable

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
    config: dict[str, Any]
    state: str = START
    step_index: int = 0
    facts: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    active_rollback: str | None = None
    rolling_back: bool = False
    pending: dict[str, Any] | None = None  # a step intent whose result is not recorded
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


def apply_result(progress: RunProgress, payload: Mapping[str, Any]) -> None:
    """A step result's effect on the run: facts, registered result, position, clock."""
    result = payload["result"]
    scope = payload.get("facts_scope")
    target = progress.facts.setdefault(scope, {}) if scope else progress.facts
    merge_facts(target, result.get("facts") or {})
    if payload.get("register"):
        progress.results[payload["register"]] = thaw(result)
    progress.step_index = payload["index"] + 1
    progress.pending = None
    progress.failure = payload.get("failure")


def apply_transition(progress: RunProgress, payload: Mapping[str, Any]) -> None:
    elapsed = payload["elapsed"]
    if progress.path:
        progress.path[-1].left_at = elapsed
        progress.path[-1].event = payload["event"]
        progress.path[-1].reason = payload.get("reason")
    progress.state = payload["to"]
    progress.step_index = 0
    progress.failure = None
    progress.active_rollback = payload.get("rollback")
    progress.rolling_back = bool(payload.get("rolling_back"))
    progress.path.append(Visit(payload["to"], elapsed))


def fold(run_id: str, entries: Iterable[Any]) -> RunProgress:
    """Rebuild a run's progress from its journal entries (in order)."""
    progress: RunProgress | None = None
    for entry in entries:
        p, kind = entry.payload, entry.event_type
        if kind == "run_started":
            progress = RunProgress(run_id=run_id, config=dict(p))
            continue
        if progress is None:
            continue
        if "elapsed" in p:
            progress.elapsed = max(progress.elapsed, p["elapsed"])
        _fold_one(progress, kind, p)
    if progress is None:
        from otpatch.engine.errors import InputError

        raise InputError(f"run {run_id!r} has no run_started entry in the journal")
    return progress


def _fold_one(progress: RunProgress, kind: str, p: Mapping[str, Any]) -> None:
    if kind == "transition":
        apply_transition(progress, p)
        progress.status = RunStatus.RUNNING
    elif kind == "step_intent":
        progress.pending = dict(p)
    elif kind == "step_result":
        apply_result(progress, p)
    elif kind == "checkpoint":
        progress.checkpoints[p["name"]] = p["facts"]
    elif kind == "run_paused":
        progress.status = RunStatus.AWAITING
        progress.message = p.get("message", "")
    elif kind == "run_resumed":
        progress.status = RunStatus.RUNNING
    elif kind == "run_ended":
        progress.status = RunStatus(p["status"])
        progress.message = p.get("message", "")
        if progress.path and progress.path[-1].left_at is None:
            progress.path[-1].left_at = p["elapsed"]
