"""The typed, frozen playbook model the engine sees after load; never raw dicts."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any


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
class Where:
    """Where a node stands in its source file (1-based) and its YAML path."""

    file: str
    line: int = 1
    col: int = 1
    path: str = ""


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
    over: str | None = None  # signoff: the state whose evidence is approved
    window: str | None = None  # window: the maintenance window's name
    where: Where = field(default_factory=lambda: Where(""))

    def describe(self) -> str:
        if self.kind == "hash_verified":
            return f"hash_verified: {self.param}"
        if self.kind == "signoff":
            over = f" over {self.over}" if self.over else ""
            return f"signoff: {' + '.join(self.roles)}{over}"
        return f"window: {self.window}"


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


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*"
                       r"(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+(?:\.\d+)?)ms)?\s*$", re.ASCII)
MAX_DURATION = 30 * 86400.0  # seconds: no step, state, budget or wait of a procedure is longer
MAX_DURATION_TEXT = 40  # characters of a written duration (`1h30m` needs five)


class DurationTooLong(ValueError):
    """A well-formed duration past MAX_DURATION."""


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `90s`, `8m`, `4h`, `1h30m` or `250ms`, at most 30 days;
    ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value != value or value < 0:
            raise ValueError(f"not a duration: {_shown(value)} (negative or not a number)")
        return _bounded(value, _shown(value))
    text = str(value)
    m = _DURATION.match(text) if len(text) <= MAX_DURATION_TEXT else None
    if not text.strip() or not m or not any(m.groups()):
        raise ValueError(f"not a duration: {_shown(text)} (use e.g. 90s, 8m, 4h, 1h30m; "
                         f"at most {MAX_DURATION_TEXT} characters)")
    h, mins, s, ms = (float(g) if g else 0.0 for g in m.groups())
    return _bounded(h * 3600 + mins * 60 + s + ms / 1000, _shown(text))


def _bounded(seconds: int | float, shown: str) -> float:
    if seconds > MAX_DURATION:  # compared before float(): a 400-digit int overflows it
        raise DurationTooLong(f"duration {shown} is longer than the bound of 30 days")
    return float(seconds)


def _shown(value: Any) -> str:
    if isinstance(value, int) and abs(value) >= 10 ** MAX_DURATION_TEXT:
        return f"of about {int(value.bit_length() * 0.30103) + 1} digits"  # str() may refuse
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_DURATION_TEXT + 2 else text[:MAX_DURATION_TEXT] + "..."


def format_duration(seconds: float) -> str:
    """`8m`, `45s`, `4h`, `1h30m5s`: the inverse of parse_duration for whole seconds."""
    if seconds < 1 and seconds > 0:
        return f"{seconds * 1000:.0f}ms"
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v]
    return "".join(parts) or "0s"


def freeze(value: Any) -> Any:
    """A read-only deep copy: mappings become MappingProxyType, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (for JSON and for module arguments)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value
