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
    # The step cannot finish until someone is there (a person at a terminal): why. Neither
    # success nor failure: the run pauses, awaiting, and resume runs the step again.
    awaiting: str = ""
    asks: Mapping[str, str] | None = None  # awaiting an attestation: its statement and role

    def to_dict(self) -> dict[str, Any]:
        out = {"changed": self.changed, "failed": self.failed, "msg": self.msg,
               "facts": dict(self.facts)}
        if self.diff is not None:
            out["diff"] = dict(self.diff)
        if self.unreachable:
            out["unreachable"] = True
        if self.awaiting:
            out["awaiting"] = self.awaiting
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Result":
        return cls(changed=bool(data.get("changed")), failed=bool(data.get("failed")),
                   msg=str(data.get("msg", "")), facts=dict(data.get("facts") or {}),
                   diff=data.get("diff"), unreachable=bool(data.get("unreachable")),
                   awaiting=str(data.get("awaiting") or ""))


@dataclass(frozen=True)
class ReadBack:
    """A re-verification after a crash left an action without its result.

    applied True: the action ran on the device and `result` stands for the lost one (a
      failed result when the device shows it ended badly, e.g. a transfer it aborted).
    applied False: the device shows the action did not take effect; it may run again.
    applied None, moving True: the device is still in the middle of it (a transfer, a
      reboot, a restore); `result.msg` says what it shows. The engine waits, up to
      `timeout` seconds (the module's own bound for that action) looking every `interval`,
      and asks again.
    applied None, moving False: the device cannot tell; a human must decide.
    """

    applied: bool | None
    result: Result
    moving: bool = False
    timeout: float = 0.0
    interval: float = 5.0

    def __post_init__(self) -> None:
        if self.moving and (self.applied is not None or self.timeout <= 0
                            or self.interval <= 0):
            raise ValueError("a read-back that is still moving has applied None and a "
                             "positive timeout and interval")

    @classmethod
    def still_moving(cls, result: Result, timeout: float, interval: float) -> "ReadBack":
        """The device is mid-action: look again every `interval` s, for up to `timeout` s."""
        return cls(None, result, moving=True, timeout=timeout, interval=interval)


@dataclass(frozen=True)
class Attestation:
    """A named human confirmation: who, holding which role, said what, when, where, and
    whether it was simulated, and whether it came as a signed attestation file (`otpatch
    attest`) rather than an answer at a terminal."""

    statement: str
    confirmed: bool
    person: str  # an inventory approver holding `role`; "simulation" in a dry run
    at: str  # ISO 8601
    simulated: bool
    role: str = ""
    host: str = ""  # the otpatch host's name
    terminal: str | None = None  # the terminal the person answered at, if known
    refused: tuple[str, ...] = ()  # names typed first that do not hold the role
    signed: str | None = None  # the signing key (base64) of a signed attestation file


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
    def attest(self, statement: str, role: str, simulated_answer: bool) -> Attestation: ...
    def record(self, event_type: str, payload: Mapping[str, Any]) -> None: ...
    def evaluate(self, expression: str) -> Any:
        """The value of an expression over `namespace` (the engine's sandboxed templating);
        ExpressionError (contract errors) when it cannot be evaluated."""


class Host(Protocol):
    """What the engine hands a package's CLI `register(subparsers, host)`: its loaders."""

    def load_inventory(self, path: Any) -> Any: ...
    def load_playbook(self, path: Any, inventory: Any = None) -> Any: ...
    def home(self) -> Any: ...  # OTPATCH_HOME as the engine resolves it (a Path)
    def baseline_firmware(self, inventory: Any) -> Any: ...  # host -> (firmware, why)
    # signing as approvals sign (risk accept): RFC 8785 bytes, a person's Ed25519 key
    # (.public_key, .sign(bytes)), a check, an inventory approver's key, the site record
    def canonical(self, value: Any) -> bytes: ...
    def signing_key(self, path: Any) -> Any: ...
    def signature_valid(self, public_key: str, signature: str, message: bytes) -> bool: ...
    def approver_key(self, approver: Any) -> str | None: ...
    def record_decision(self, document: dict, **facts: Any) -> str: ...  # site record id
    def record_cycle(self, report: dict, **facts: Any) -> str: ...  # site record id
    # the newest stored backup of a host's artifact, re-hashed: {path, sha256, at, record}
    def stored_backup(self, host: str, artifact: str, inventory: Any) -> Any: ...


ANY_ASPECT = "device"  # what a device-changing module that names nothing changes


class Module(ABC):
    """Base of every module. Subclasses declare data and implement run()."""

    name: ClassVar[str]
    doc: ClassVar[str]
    args_schema: ClassVar[Mapping[str, Any]]
    supports_dry_run: ClassVar[bool] = True
    changes_device: ClassVar[bool] = False
    reaches_device: ClassVar[bool] = True  # False: reads only the inventory about its target
    # True: the module acts on nothing outside the run (no device, file, network or person)
    # and answers at once, so a crash before its result is on disk costs nothing: the step
    # simply runs again. Its result is journaled without a commit of its own and joins the
    # next one (group commit), which every step that is not replayable forces before it runs.
    replayable: ClassVar[bool] = False
    # What a device-changing module changes on its target ("firmware", "mode",
    # "configuration"); empty means anything ("device"). And what a module verifies by
    # reading its target back: aspect -> the arguments any one of which makes the step
    # check it (empty: always). The lint proves each change is followed by its check.
    changes: ClassVar[tuple[str, ...]] = ()
    verifies: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    read_back_doc: ClassVar[str] = "nothing to re-verify: the step is run again"
    # What the module does on a host that is not an otpatch simulator (`validate -i` checks
    # every step against the inventory with it):
    #   "sourced"   only interfaces a public source documents, cited in `sources`;
    #   "guided"    a person performs the change in the vendor's tool (an attestation names
    #               them and binds what they did), then the module reads back through
    #               sourced interfaces (cited in `sources`);
    #   "site"      the site's own automation (an Ansible playbook): its interfaces are the
    #               site's to stand behind;
    #   "simulator" the otpatch simulator's own interface: refused on a real device.
    # A module that reaches no device (`reaches_device` False) is "none" whatever it says.
    real_device: ClassVar[str] = "simulator"
    sources: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def run(self, args: Mapping[str, Any], ctx: Context) -> Result:
        """Act (or, in a dry run against simulators, act on the simulator) and answer."""

    @classmethod
    def on_real_device(cls) -> str:
        """none, sourced, guided, site or simulator: see `real_device`."""
        return cls.real_device if cls.reaches_device else "none"

    @classmethod
    def changed_aspects(cls) -> tuple[str, ...]:
        """What a step of this module changes on its target (none for a reading module)."""
        if not cls.changes_device:
            return ()
        return cls.changes or (ANY_ASPECT,)

    @classmethod
    def verified_aspects(cls, args: Mapping[str, Any]) -> tuple[str, ...]:
        """What a step of this module, with these arguments, reads back and checks."""
        return tuple(aspect for aspect, needs in cls.verifies.items()
                     if not needs or any(args.get(name) is not None for name in needs))

    def read_back(self, args: Mapping[str, Any], ctx: Context) -> ReadBack:
        """Re-verify on the device whether an interrupted action took effect.

        Modules that change a device override this; others are simply run again."""
        return ReadBack(applied=False, result=Result(msg="no read-back: run again"))

    def advance_sim_clock(self, args: Mapping[str, Any], ctx: Context, seconds: float) -> None:
        """In a dry run, let the target's simulator pass `seconds` of simulated time while
        the engine waits on a read-back that answered still moving (what `advance=` does in
        the module's own waits). A module whose read-back can be moving overrides this."""


def ok(msg: str = "", *, changed: bool = False, **facts: Any) -> Result:
    return Result(changed=changed, msg=msg, facts=facts)


def failed(msg: str, **facts: Any) -> Result:
    return Result(failed=True, msg=msg, facts=facts)

