"""The typed, frozen playbook model the engine sees after load; never raw dicts."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any

from otpatch.modules.contract.errors import Where


class Stage(str, Enum):
    """Where in the staged rollout a state runs (lab -> staging -> production)."""

    LAB = "lab"
    STAGING = "staging"
    PRODUCTION = "production"


class Outcome(str, Enum):
    """Terminal states of every playbook, named by outcome."""

    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


TERMINALS = frozenset(o.value for o in Outcome)
NO_ROLLBACK = "none"  # `rollback: none` ends an inherited rollback edge


@dataclass(frozen=True)
class FirmwareImage:
    """A firmware file and the hash its vendor published for it."""

    path: str
    algorithm: str  # sha256 | md5
    hash: str | None


@dataclass(frozen=True)
class ParamSpec:
    """A declared playbook parameter; `default` is already of the param's type."""

    name: str
    type: str  # string | int | duration | firmware
    default: Any = None
    required: bool = False
    description: str = ""
    where: Where = field(default_factory=lambda: Where(""))
    qualification: Any = None  # firmware: engine/qualify.py Qualification (None: none declared)


@dataclass(frozen=True)
class TargetSpec:
    """A named target: one inventory group, one host or (many: true) several."""

    name: str
    group: str
    many: bool = False
    where: Where = field(default_factory=lambda: Where(""))
    description: str = ""


@dataclass(frozen=True)
class Requirement:
    """A guard on entering a state. kind: hash_verified | signoff | window."""

    kind: str
    param: str | None = None  # hash_verified: the firmware param
    roles: tuple[str, ...] = ()  # signoff: the roles that must each sign
    over: tuple[str, ...] = ()  # signoff: the states whose evidence is approved
    evidence_age: float | None = None  # signoff: how old (s) an evidence run may be
    emergency: Emergency | None = None  # signoff: the emergency path it allows
    window: str | None = None  # window: the maintenance window's name
    where: Where = field(default_factory=lambda: Where(""))

    def describe(self) -> str:
        if self.kind == "hash_verified":
            return f"hash_verified: {self.param}"
        if self.kind == "signoff":
            over = f" over {', '.join(self.over)}" if self.over else ""
            return f"signoff: {' + '.join(self.roles)}{over}"
        return f"window: {self.window}"


DEFAULT_EVIDENCE_AGE = 30 * 86400.0  # a signoff's evidence runs: 30 days unless it says


@dataclass(frozen=True)
class Emergency:
    """A sign-off's emergency path: when the advisory's effective score is above
    `score_above`, one role's approval opens the gate now and the others must sign within
    `within` seconds afterwards (retrospective approval)."""

    within: float
    score_above: float = 9.0


@dataclass(frozen=True)
class Step:
    """One module call of a state's ordered `do` list."""

    module: str
    args: Mapping[str, Any]
    name: str = ""
    register: str | None = None
    where: Where = field(default_factory=lambda: Where(""))

    @property
    def label(self) -> str:
        return self.name or self.module


@dataclass(frozen=True)
class State:
    """A guarded state: requirements, an optional checkpoint, ordered steps and its edges."""

    name: str
    stage: Stage | None = None
    description: str = ""
    requires: tuple[Requirement, ...] = ()
    checkpoint: str | None = None
    do: tuple[Step, ...] = ()
    expect_duration: float | None = None  # seconds
    timeout: float | None = None  # seconds
    max_visits: int | None = None  # how often a run may enter it (bounds a cycle)
    next: str | None = None
    on_failure: str | None = None
    rollback: str | None = None  # a state, NO_ROLLBACK, or None (inherit)
    where: Where = field(default_factory=lambda: Where(""))
    # where each edge's destination is written: "next", "on_failure", "rollback" -> Where
    edge_where: Mapping[str, Where] = field(default_factory=lambda: MappingProxyType({}))

    def edges(self) -> list[tuple[str, str]]:
        """(kind, destination) for every edge leaving this state."""
        out = [(k, v) for k, v in (("next", self.next), ("on_failure", self.on_failure))
               if v]
        if self.rollback and self.rollback != NO_ROLLBACK:
            out.append(("rollback", self.rollback))
        return out


@dataclass(frozen=True)
class Waiver:
    """A lint rule the playbook's author set aside, and why (the run record shows it)."""

    rule: str
    reason: str
    where: Where = field(default_factory=lambda: Where(""))


@dataclass(frozen=True)
class Budget:
    """A time budget over some states, e.g. the 15-minute patch window."""

    name: str
    limit: float  # seconds
    states: tuple[str, ...]
    description: str = ""
    where: Where = field(default_factory=lambda: Where(""))
    downtime: bool = False  # the approved maximum downtime: checked before each device change


@dataclass(frozen=True)
class AppliesTo:
    """A device a procedure is written for."""

    vendor: str
    model: str = ""
    part_numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Metadata:
    name: str
    version: str
    description: str = ""
    standard: str = ""
    applies_to: tuple[AppliesTo, ...] = ()


@dataclass(frozen=True)
class Playbook:
    """A loaded, validated playbook. content_hash names exactly what ran."""

    path: str
    api_version: str
    metadata: Metadata
    params: Mapping[str, ParamSpec]
    targets: Mapping[str, TargetSpec]
    initial: str
    states: Mapping[str, State]
    budgets: Mapping[str, Budget]
    content_hash: str
    initial_where: Where = field(default_factory=lambda: Where(""))
    waivers: tuple[Waiver, ...] = ()

    def state(self, name: str) -> State:
        return self.states[name]
