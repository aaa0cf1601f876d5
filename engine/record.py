"""The run record: what a run has done so far, folded from its journal's typed events.

The conductor keeps one RunProgress while it runs; `resume` and `status` rebuild the same
object from the journal alone, so a run killed at any instant continues where the journal
says it stood. Folding is a table from event type to one small apply function."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from collections.abc import Mapping
from typing import Any, Iterable

from otpatch.engine import events as E
from otpatch.modules.contract.values import thaw

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
    # hash of the journal entry of its last successful step (of the transition into it while
    # it has none): what a sign-off over this state approves (engine/approvals.py)
    done_entry: str | None = None


@dataclass
class RunProgress:
    """Where a run stands: changed only by apply(), which returns a new one (the conductor
    holds the newest); rebuilt from the journal by fold()."""

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
    approvals: tuple[dict, ...] = ()  # signed approvals recorded for the run, in order
    revoked: frozenset[str] = frozenset()  # document ids of approvals withdrawn
    attestations: tuple[dict, ...] = ()  # signed attestation files for waiting steps
    emergencies: tuple[E.EmergencyOpened, ...] = ()  # sign-offs passed on the emergency path

    @property
    def state_started_at(self) -> float:
        return self.path[-1].entered_at if self.path else 0.0


def replace(obj: Any, **changes: Any) -> Any:
    """A copy of a RunProgress or Visit with `changes`: dataclasses.replace without its
    per-call field walk (these plain dataclasses have no __post_init__ to run); the
    original is left as it was."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new


def merge_facts(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    """Deep-merge a module's facts: nested mappings merge, anything else replaces."""
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge_facts(into[key], value)
        else:
            into[key] = thaw(value)


def merged(facts: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """merge_facts on a copy: the mappings along the merged paths are new, the rest shared."""
    out = dict(facts)
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = thaw(value)
    return out


# The run's status moves only along this table (resume makes an awaiting or interrupted run
# running again; INTERRUPTED itself is what `status` says of a dead running one, never
# journaled); an event that would move it elsewhere does not fit the run.
STATUS_MOVES = {
    RunStatus.RUNNING: frozenset({RunStatus.RUNNING, RunStatus.AWAITING, *FINAL}),
    RunStatus.AWAITING: frozenset({RunStatus.RUNNING}),
    RunStatus.INTERRUPTED: frozenset({RunStatus.RUNNING}),
}


class StatusMoveRefused(ValueError):
    """An event that would move a run's status off the table (a journal that does not fit)."""


def moved(progress: RunProgress, to: RunStatus) -> RunStatus:
    if to not in STATUS_MOVES.get(progress.status, frozenset()):
        raise StatusMoveRefused(f"run {progress.run_id} cannot go from "
                                f"{progress.status.value} to {to.value}")
    return to


def _result(p: RunProgress, event: E.StepResult, at: str) -> RunProgress:
    """A step result's effect on the run: facts, registered result, position."""
    facts, new = p.facts, event.result.facts or {}
    if event.facts_scope:
        facts = {**facts, event.facts_scope: merged(facts.get(event.facts_scope) or {}, new)}
    elif new:
        facts = merged(facts, new)
    results = {**p.results, event.register: thaw(event.result.to_dict())} \
        if event.register else p.results
    path = p.path
    if path and not event.failure:
        path = [*path[:-1], replace(path[-1], done_entry=at)]
    return replace(p, facts=facts, results=results, step_index=event.index + 1,
                   pending=None, failure=event.failure, path=path)


def _left(path: list[Visit], at: float, event: str | None, reason: str | None) -> list[Visit]:
    """The path with its last visit closed."""
    if not path:
        return []
    return [*path[:-1], replace(path[-1], left_at=at, event=event, reason=reason)]


def _transition(p: RunProgress, event: E.Transition, at: str) -> RunProgress:
    path = _left(p.path, event.elapsed, event.trigger, event.reason)
    return replace(p, state=event.to, step_index=0, failure=None,
                   active_rollback=event.rollback, rolling_back=event.rolling_back,
                   path=[*path, Visit(event.to, event.elapsed, done_entry=at)],
                   status=moved(p, RunStatus.RUNNING))


def _intent(p: RunProgress, event: E.StepIntent, at: str) -> RunProgress:
    return replace(p, pending=event)


def _read_back(p: RunProgress, event: E.ReadBackDone, at: str) -> RunProgress:
    """The device shows the action did not happen: the step may run again."""
    return replace(p, pending=None) if event.applied is False else p


def _checkpoint(p: RunProgress, event: E.Checkpoint, at: str) -> RunProgress:
    return replace(p, checkpoints={**p.checkpoints, event.name: event.facts})


def _paused(p: RunProgress, event: E.RunPaused, at: str) -> RunProgress:
    return replace(p, status=moved(p, RunStatus.AWAITING), message=event.message)


def _resumed(p: RunProgress, event: E.RunResumed, at: str) -> RunProgress:
    """Running again; evidence runs named on resuming join those the run started with."""
    if not event.evidence:
        return replace(p, status=moved(p, RunStatus.RUNNING))
    known = list(p.config.evidence or [])
    added = [r for r in event.evidence if r not in known]
    config = dataclasses.replace(p.config, evidence=known + added)
    return replace(p, status=moved(p, RunStatus.RUNNING), config=config)


def _ended(p: RunProgress, event: E.RunEnded, at: str) -> RunProgress:
    path = p.path
    if path and path[-1].left_at is None:
        path = [*path[:-1], replace(path[-1], left_at=event.elapsed)]
    return replace(p, status=moved(p, RunStatus(event.status)), message=event.message,
                   path=path)


def _approval(p: RunProgress, event: E.ApprovalAdded, at: str) -> RunProgress:
    return replace(p, approvals=(*p.approvals, event.approval))


def _attested(p: RunProgress, event: E.AttestationSigned, at: str) -> RunProgress:
    return replace(p, attestations=(*p.attestations, event.attestation))


def _emergency(p: RunProgress, event: E.EmergencyOpened, at: str) -> RunProgress:
    return replace(p, emergencies=(*p.emergencies, event))


def _revoked(p: RunProgress, event: E.ApprovalRevoked, at: str) -> RunProgress:
    from otpatch.engine.approvals import document_id, signature_ok

    # a revocation counts only when it verifies and its key signed the approval it names
    rev = event.revocation
    signer = {document_id(a): a.get("public_key") for a in p.approvals}.get(rev.get("approval"))
    if signer is None or signer != rev.get("public_key") or not signature_ok(rev):
        return p
    return replace(p, revoked=p.revoked | {rev["approval"]})


def _nothing(p: RunProgress, event: Any, at: str) -> RunProgress:
    """Recorded for the audit trail; the run's position does not depend on it."""
    return p


APPLY = {E.Transition: _transition, E.StepIntent: _intent, E.StepResult: _result,
         E.Checkpoint: _checkpoint, E.RunPaused: _paused, E.RunResumed: _resumed,
         E.RunEnded: _ended, E.Requirement: _nothing, E.ReadBackDone: _read_back,
         E.ModuleRecord: _nothing, E.ChainCheckpoint: _nothing,
         E.ApprovalAdded: _approval, E.ApprovalRevoked: _revoked,
         E.AttestationSigned: _attested, E.EmergencyOpened: _emergency}


def apply(progress: RunProgress, event: Any, at: str = "") -> RunProgress:
    """The progress after `event` (journaled as the entry whose hash is `at`): a new
    RunProgress, the old one unchanged. The live run and the fold of its journal both go
    through here, so a resumed run stands exactly where the live one stood.
    StatusMoveRefused for an event that would move the status off STATUS_MOVES."""
    new = APPLY.get(type(event), _nothing)(progress, event, at)
    if event.elapsed <= new.elapsed:
        return new
    if new is progress:
        return replace(progress, elapsed=event.elapsed)
    new.elapsed = event.elapsed  # a copy this call made: nobody else holds it yet
    return new


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
        try:
            progress = apply(progress, event, entry.hash)
        except StatusMoveRefused as e:
            from otpatch.modules.contract.errors import JournalError

            raise JournalError(f"entry #{entry.seq} (run {run_id}, {entry.event_type}) does "
                               f"not fit the run: {e}; run `otpatch journal verify`") from None
    if progress is None:
        from otpatch.modules.contract.errors import InputError

        raise InputError(f"run {run_id!r} has no run_started entry in the journal")
    return progress
