"""The site record's typed events (engine/siterecord.py): what otpatch keeps outside a run.

Registered with the runs' events (engine/eventbase.py KINDS; engine/events.py imports this
module), so the journal code checks them on write and on read the same way. Each is one fact with its provenance:
a device read by `baseline check`, a backup stored or re-hashed, a risk decision signed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from otpatch.engine.eventbase import Event


@dataclass(frozen=True)
class BaselineReading(Event):
    """One host as `baseline check` read it: status same | drift | not_read | unreachable |
    failed, the values read (firmware, serial, product_version ...), the services that
    answered a TCP connect (None: not checked, and `services_why` says why)."""

    kind: ClassVar[str] = "baseline_reading"
    category: ClassVar[str] = "baseline"
    host: str
    status: str
    detail: str
    read: dict
    inventory: str  # the inventory file as given
    simulator: bool
    services: dict | None = None  # {"502": "open" | "closed" | "filtered" ...}
    services_why: str | None = None

    def outcome(self) -> str:
        return {"same": "success", "drift": "failure"}.get(self.status, "unknown")


@dataclass(frozen=True)
class BackupStored(Event):
    """A configuration backup (mGuard profile, PLC application archive) kept in the backup
    store (engine/backupstore.py) by its SHA-256, with where it came from (`otpatch
    backup`): `provenance` {how: module_read | handed_in, said: the sentence `backup list`
    shows, module / file ...}; `summary` what the artifact holds (rule count and digest,
    VLANs; application name and CRC), as the module or the file read showed it."""

    kind: ClassVar[str] = "backup_stored"
    category: ClassVar[str] = "backup"
    host: str
    artifact: str  # mguard_profile | m580_application
    sha256: str
    size: int
    provenance: dict  # how it was obtained: module read, file handed in by a person, ...
    summary: dict | None = None
    inventory: str | None = None  # the inventory file as given

    def outcome(self) -> str:
        return "success"


@dataclass(frozen=True)
class BackupVerified(Event):
    """A stored backup hashed again (`backup verify`: status ok | missing | differs |
    unreadable), or restore-tested by a run (run_id; `backup list` reads restore tests from
    the runs' journal itself: a run whose backup param names it)."""

    kind: ClassVar[str] = "backup_verified"
    category: ClassVar[str] = "backup"
    sha256: str
    ok: bool
    detail: str
    run_id: str | None = None  # the restore-test run, when this is a restore test
    status: str | None = None

    def outcome(self) -> str:
        return "success" if self.ok else "failure"


@dataclass(frozen=True)
class DecisionRecorded(Event):
    """A risk decision (defer, mitigate) as accepted by a person: the signed acceptance
    document itself (modules/risk/decisions.py acceptance_body plus its signature), which
    binds the entry; the register file and entry it was written into. `risk accept` records
    it; the register keeps the same signature, judged again whenever it is read."""

    kind: ClassVar[str] = "decision_recorded"
    category: ClassVar[str] = "risk"
    decision: dict
    register: str = ""  # the register file as given
    entry: int = 0  # its 1-based position in the register when accepted
    asset: str = ""
    advisory: str | None = None

    def outcome(self) -> str:
        return "success"


@dataclass(frozen=True)
class CycleEvaluated(Event):
    """A patch evaluation cycle as `risk cycle` reported it (NERC CIP-007 R2.2, IEC
    62443-2-3): the window, whether everything was decided and stands (`clean`), the counts,
    and the whole report (modules/risk/cycletext.py document) with its SHA-256 over RFC 8785
    bytes, so the auditor's "was every source evaluated in each cycle" is answered from the
    signed record, even for a cycle in which nothing applied."""

    kind: ClassVar[str] = "cycle_evaluated"
    category: ClassVar[str] = "risk"
    start: str
    end: str
    days: int
    clean: bool
    counts: dict
    sources: list  # [{id, evaluated_ok, evaluated: n, undecided: n}] one per patch source
    report: dict
    report_sha256: str

    def outcome(self) -> str:
        return "success" if self.clean else "failure"
