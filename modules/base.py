"""The module contract: declared argument schema, dry-run support, changes-device flag,
documentation and read-back, and a small result value. The runner enforces it."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol


@dataclass(frozen=True)
class Result:
    """What a module answers: it becomes an event for the conductor."""

    changed: bool = False
    failed: bool = False
    msg: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)
    diff: Mapping[str, Any] | None = None
    unreachable: bool = False  # the device did not answer: its own outcome, not a check failure

    def to_dict(self) -> dict[str, Any]:
        out = {"changed": self.changed, "failed": self.failed, "msg": self.msg,
               "facts": dict(self.facts)}
        if self.diff is not None:
            out["diff"] = dict(self.diff)
        if self.unreachable:
            out["unreachable"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Result":
        return cls(changed=bool(data.get("changed")), failed=bool(data.get("failed")),
                   msg=str(data.get("msg", "")), facts=dict(data.get("facts") or {}),
                   diff=data.get("diff"), unreachable=bool(data.get("unreachable")))


@dataclass(frozen=True)
class ReadBack:
    """A re-verification after a crash left an action without its result.

    applied True: the change is in effect and `result` stands for the lost one.
    applied False: the device shows the action did not take effect; it may run again.
    applied None: the device cannot tell; a human must decide.
    """

    applied: bool | None
    result: Result


@dataclass(frozen=True)
class Attestation:
    """A named human confirmation: who said what, when, and whether it was simulated."""

    statement: str
    confirmed: bool
    who: str
    at: str  # ISO 8601
    simulated: bool
    note: str = ""


class Clock(Protocol):
    simulated: bool

    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class Context(Protocol):
    """What a module may see and use while it runs (given by the conductor)."""

    mode: str  # "dry_run" | "execute"
    clock: Clock
    run_id: str
    run_dir: Any  # pathlib.Path: the run's change store (backups, artifacts)
    inventory: Any  # engine.inventory.Inventory
    facts: Mapping[str, Any]
    namespace: Mapping[str, Any]  # params, facts, targets and registered results, for templates

    @property
    def dry_run(self) -> bool: ...
    def hosts(self, target: str) -> tuple[Any, ...]: ...
    def attest(self, statement: str, role: str | None, simulated_answer: bool) -> Attestation: ...
    def record(self, event_type: str, payload: Mapping[str, Any]) -> None: ...


class Module(ABC):
    """Base of every module. Subclasses declare data and implement run()."""

    name: ClassVar[str]
    doc: ClassVar[str]
    args_schema: ClassVar[Mapping[str, Any]]
    supports_dry_run: ClassVar[bool] = True
    changes_device: ClassVar[bool] = False
    read_back_doc: ClassVar[str] = "nothing to re-verify: the step is run again"

    @abstractmethod
    def run(self, args: Mapping[str, Any], ctx: Context) -> Result:
        """Act (or, in a dry run against simulators, act on the simulator) and answer."""

    def read_back(self, args: Mapping[str, Any], ctx: Context) -> ReadBack:
        """Re-verify on the device whether an interrupted action took effect.

        Modules that change a device override this; others are simply run again."""
        return ReadBack(applied=False, result=Result(msg="no read-back: run again"))


def ok(msg: str = "", *, changed: bool = False, **facts: Any) -> Result:
    return Result(changed=changed, msg=msg, facts=facts)


def failed(msg: str, **facts: Any) -> Result:
    return Result(failed=True, msg=msg, facts=facts)

