"""Typed journal events: one frozen dataclass per kind of entry, checked on write and on read.

The conductor writes events, never bare dicts; `decode` turns a journal entry back into its
event, so folding a run (record.py) and everything that reads the record (reports,
approvals) works on these types. The base class and the payload checks are in
engine/eventbase.py; the site record's kinds in engine/siteevents.py, imported here so every
journal read knows them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from otpatch.engine import siteevents as _siteevents  # noqa: F401 (registers its kinds)
from otpatch.engine import fleetevents as _fleetevents  # noqa: F401 (registers its kinds)
from otpatch.engine.eventbase import (KINDS, SCHEMA_VERSION, VERSION_KEY, Event,  # noqa: F401
                                      EventError)
from otpatch.modules.contract.module import Result


# -- the run --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunStarted(Event):
    """What a run is made of: files and their hashes, mode, params, resolved targets."""

    kind = "run_started"
    category = "run"
    playbook: str
    playbook_hash: str
    playbook_name: str
    playbook_version: str
    inventory: str | None
    inventory_hash: str
    mode: str  # dry_run | execute
    params: dict
    targets: dict  # target -> [host names]
    pid: int
    clock_start: float
    waivers: list = field(default_factory=list)  # [{rule, reason}] the playbook declares
    operator: str | None = None  # who started it, when the caller says (engine/api.py)
    clock: dict | None = None  # the host clock's synchronisation as the OS reports it
    stage: str | None = None  # a stage run (`--stage`): the only stage whose states it runs
    evidence: list | None = None  # record hashes of the evidence runs it was given
    assets: dict | None = None  # host -> {stage, serial, part_number, simulator} as targeted
    register: dict | None = None  # the site register it ran under (engine/siteregister.py)

    def payload(self) -> dict[str, Any]:
        return _unless_none(super().payload(), "operator", "clock", "stage", "evidence",
                            "assets", "register")


@dataclass(frozen=True)
class RunResumed(Event):
    kind = "run_resumed"
    category = "run"
    from_status: str
    pid: int
    operator: str | None = None  # who resumed it, when the caller says (engine/api.py)
    evidence: list | None = None  # record hashes of evidence runs added on resuming

    def payload(self) -> dict[str, Any]:
        return _unless_none(super().payload(), "operator", "evidence")


def _unless_none(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    """Optional fields added after entries were first written stay out of the payload
    while unset: entries without them read as before (no version change), and a run that
    names no operator writes exactly the entries older otpatch versions wrote."""
    for key in keys:
        if payload.get(key) is None:
            del payload[key]
    return payload


@dataclass(frozen=True)
class RunPaused(Event):
    """The run waits: a gate refused, or a step needs a person (`step` names it)."""

    kind = "run_paused"
    category = "run"
    state: str
    message: str
    step: dict | None = None

    def outcome(self) -> str:
        return "refused"


@dataclass(frozen=True)
class RunEnded(Event):
    kind = "run_ended"
    category = "run"
    status: str
    state: str
    message: str
    budgets: dict

    def outcome(self) -> str:
        return self.status


# -- states and gates -----------------------------------------------------------------------

@dataclass(frozen=True)
class Transition(Event):
    """An edge taken, its gates passed: the journal's record of the move is what counts
    (the Machine only holds the edge table and the state in memory)."""

    kind = "transition"
    category = "state"
    aliases = {"source": "from", "trigger": "event"}
    source: str
    trigger: str  # begin | succeed | fail | roll_back
    to: str
    rollback: str | None  # the rollback edge active after it
    rolling_back: bool
    reason: str | None = None  # why a failure or rollback edge was taken


@dataclass(frozen=True)
class Requirement(Event):
    """One gate requirement evaluated on an edge into `state`."""

    kind = "requirement"
    category = "gate"
    state: str
    requirement: str
    requirement_kind: str
    passed: bool
    detail: str
    simulated: bool
    aliases = {"requirement_kind": "kind"}

    def outcome(self) -> str:
        return "success" if self.passed else "refused"


@dataclass(frozen=True)
class Checkpoint(Event):
    """The as-found facts snapshotted on entering a state with `checkpoint:`."""

    kind = "checkpoint"
    category = "checkpoint"
    state: str
    name: str
    facts: dict


# -- steps ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class StepIntent(Event):
    """A device change about to be made: on disk before the action, so a resume reads the
    device back instead of acting blindly."""

    kind = "step_intent"
    category = "step"
    state: str
    index: int
    step: str
    module: str
    args: dict
    changes_device: bool = True
    changes: list | None = None  # what it changes on its target: firmware, mode, ...

    def outcome(self) -> str:
        return "intent"

    def payload(self) -> dict[str, Any]:
        return _unless_none(super().payload(), "changes")


@dataclass(frozen=True)
class StepResult(Event):
    """What a step answered, where its facts go, and the failure it means for its state."""

    kind = "step_result"
    category = "step"
    state: str
    index: int
    step: str
    module: str
    result: Result
    register: str | None
    facts_scope: str | None
    duration: float
    reverified: bool = False  # recorded from a read-back after a crash, not from the action
    failure: str | None = None
    verifies: list | None = None  # what the step reads back and checks: firmware, mode, ...

    def outcome(self) -> str:
        return "failure" if self.result.failed else "success"

    def payload(self) -> dict[str, Any]:
        out = super().payload()
        out["result"] = self.result.to_dict()
        if not self.reverified:
            del out["reverified"]
        if self.failure is None:
            del out["failure"]
        if not self.verifies:
            del out["verifies"]
        return out

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "StepResult":
        data = dict(payload)
        result = data.get("result")
        if not isinstance(result, dict):
            raise EventError(f"{cls.kind}: result must be an object")
        data["result"] = Result.from_dict(result)
        return super().from_payload(data)


@dataclass(frozen=True)
class ReadBackDone(Event):
    """A resume re-verified an interrupted device step: applied True / False / None."""

    kind = "read_back"
    category = "step"
    state: str
    index: int
    module: str
    applied: bool | None
    result: dict
    moving: str = ""  # what the device showed when the resume found it still mid-action
    waited: float = 0.0  # run-clock seconds the resume waited for it to settle

    def outcome(self) -> str:
        return {True: "success", False: "failure", None: "unknown"}[self.applied]


@dataclass(frozen=True)
class ChainCheckpoint(Event):
    """The journal's head, signed with the otpatch host's key (engine/anchor.py): `entries`
    entries ending in `head_hash`, at `signed_at`; kept beside the file and sent to the SIEM."""

    kind = "chain_checkpoint"
    category = "system"
    entries: int
    head_hash: str
    signed_at: str
    public_key: str
    signature: str
    why: str  # run_end | interval
    sent_to: str | None  # the SIEM receiver it was sent to, host:port


# -- approvals -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ApprovalAdded(Event):
    """A signed approval recorded for the run (engine/approvals.py): the document as signed;
    the gate judges it each time it is evaluated."""

    kind: ClassVar[str] = "approval_added"
    category: ClassVar[str] = "approval"
    approval: dict
    added_by: str | None = None  # who recorded it on this host, when named


@dataclass(frozen=True)
class AttestationSigned(Event):
    """A signed attestation file for a waiting core.attest step (`otpatch attest`)."""

    kind: ClassVar[str] = "attestation_signed"
    category: ClassVar[str] = "approval"
    attestation: dict


@dataclass(frozen=True)
class ApprovalRevoked(Event):
    """A signed withdrawal of an approval, by the key that signed it."""

    kind: ClassVar[str] = "approval_revoked"
    category: ClassVar[str] = "approval"
    revocation: dict


@dataclass(frozen=True)
class EmergencyOpened(Event):
    """A sign-off gate passed on its emergency path (engine/emergency.py): the effective
    score above the threshold, the roles signed (and by whom), the roles still due and by
    when (UTC ISO), and the binding the retrospective approvals must match."""

    kind: ClassVar[str] = "emergency_opened"
    category: ClassVar[str] = "approval"
    gate: str
    visit: int  # which entry into the gate state (1: the first)
    score: float
    threshold: float
    within: float  # seconds
    assessed: list  # [{target, effective, vector}] the risk assessments seen
    signed: list  # [{role, person, signed_at, approval}] who opened it
    due_roles: list
    opened_at: str
    due: str
    binding: dict


@dataclass(frozen=True)
class ModuleRecord:
    """What a module recorded while it ran (ctx.record): its own event type and data."""

    kind: str
    data: dict
    elapsed: float
    category: ClassVar[str] = "module"

    def outcome(self) -> str:
        return "info"

    def payload(self) -> dict[str, Any]:
        return {**self.data, "elapsed": self.elapsed}


def decode(event_type: str, category: str, payload: Mapping[str, Any]) -> Event | ModuleRecord:
    """The typed event of a journal entry; EventError if it does not fit its type."""
    if category == ModuleRecord.category:
        if not isinstance(payload.get("elapsed"), (int, float)):
            raise EventError(f"{event_type}: elapsed must be a number")
        data = {k: v for k, v in payload.items() if k != "elapsed"}
        return ModuleRecord(event_type, data, payload["elapsed"])
    cls = KINDS.get(event_type)
    if cls is None:
        raise EventError(f"unknown event type {event_type!r}")
    if category != cls.category:
        raise EventError(f"{event_type}: category {category!r}, expected {cls.category!r}")
    return cls.from_payload(payload)
