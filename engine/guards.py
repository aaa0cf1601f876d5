"""Gate guards: small, named, side-effect-free predicates over what the run knows.

Each answers a Verdict; the conductor records every verdict in the journal."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from otpatch.engine.model import Requirement


@dataclass(frozen=True)
class Verdict:
    passed: bool
    detail: str
    simulated: bool = False


@dataclass(frozen=True)
class RunPolicy:
    """What a run mode accepts at a gate. A dry run rehearses: a sign-off is simulated and
    a window that has not ended is assumed open, each verdict marked simulated (never
    evidence). An execute run accepts only what is true now."""

    mode: str
    simulated_signoffs: bool
    window_assumed_open: bool


POLICIES = {"dry_run": RunPolicy("dry_run", simulated_signoffs=True, window_assumed_open=True),
            "execute": RunPolicy("execute", simulated_signoffs=False,
                                 window_assumed_open=False)}


@dataclass(frozen=True)
class GateContext:
    """Everything a gate may look at, built once before the edge is taken: what the run
    knows now, and what a signed approval must bind (the playbook's content hash, the
    params, the resolved target assets, the firmware hashes verified in this run, and the
    journal entries that close each stage already done: the evidence)."""

    policy: RunPolicy
    now: float
    params: Mapping[str, Any]
    facts: Mapping[str, Any]
    windows: Mapping[str, Any]  # name -> MaintenanceWindow (inventory)
    state: str = ""  # the state whose edge is guarded
    needs: Mapping[str, float] = field(default_factory=dict)  # state -> worst-case seconds
    playbook_hash: str = ""
    targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # target -> asset ids
    verified_firmware: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    evidence: Mapping[str, str] = field(default_factory=dict)  # stage -> entry hash
    journal_head: str = ""  # hash of the newest entry when the gate was evaluated
    # sign-off gates: what an approval must bind here (engine/approvals.py binding), the
    # signed approvals and withdrawals the journal holds for the run, the inventory's
    # people, and who operates the run (None: not named)
    binding: Mapping[str, Any] | None = None
    evidence_problems: tuple[str, ...] = ()  # why an `over` state has no evidence yet
    approvals: tuple[Mapping[str, Any], ...] = ()
    revoked: frozenset[str] = frozenset()
    approvers: tuple[Any, ...] = ()
    operator: str | None = None
    # the site's time policy (inventory all.vars.time_sync) and what the OS reports of the
    # host clock now (modules/contract/platform.py clock_sync); None: no policy / not read
    time_policy: Any = None
    clock: Any = None


def hash_verified(req: Requirement, gate: GateContext) -> Verdict:
    """The firmware param's file was hashed in this run and matched the pinned hash."""
    pinned = gate.params.get(req.param) or {}
    seen = gate.verified_firmware.get(req.param)
    if not seen:
        return Verdict(False, f"{req.param}: no verified hash recorded in this run "
                              "(run firmware.verify first)")
    same_algo = str(seen.get("algorithm", "")).lower() == str(pinned.get("algorithm")).lower()
    same_hash = str(seen.get("hash", "")).lower() == str(pinned.get("hash", "")).lower()
    if not (same_algo and same_hash):
        return Verdict(False, f"{req.param}: verified {seen.get('algorithm')}:{seen.get('hash')} "
                              f"is not the pinned {pinned.get('algorithm')}:{pinned.get('hash')}")
    return Verdict(True, f"{req.param}: {pinned['algorithm']} {pinned['hash']} verified")


def signoffs_present(req: Requirement, gate: GateContext) -> Verdict:
    """Each role has signed. Dry runs take a simulation sign-off, marked so. A declared
    emergency path (engine/emergency.py) lets one valid approval pass when the effective
    score is above its threshold; the other roles sign afterwards."""
    from otpatch.engine import emergency

    roles = " + ".join(req.roles)
    if gate.policy.simulated_signoffs:
        unmet = (f"; an execute run would refuse it: {'; '.join(gate.evidence_problems)}"
                 if gate.evidence_problems else "")
        return Verdict(True, f"simulation sign-off for {roles} (not valid for production)"
                             f"{unmet}{emergency.rehearsal_note(req, gate.facts)}",
                       simulated=True)
    if not gate.operator:
        return Verdict(False, f"sign-off {roles}: the run's operator is not named (otpatch "
                              "run --execute --operator NAME): an approval cannot be checked "
                              "against the person who runs the change")
    if gate.evidence_problems:
        return Verdict(False, f"sign-off {roles}: no evidence to approve yet: "
                              + "; ".join(gate.evidence_problems))
    if gate.binding is None or (req.over and gate.binding.get("evidence") is None):
        return Verdict(False, f"sign-off {roles}: the evidence states "
                              f"{', '.join(req.over)} are not completed: nothing to approve yet")
    from otpatch.engine.approvals import evaluate

    passed, detail = evaluate(req.roles, gate.approvals, gate.binding, gate.approvers,
                              gate.operator, datetime.fromtimestamp(gate.now, timezone.utc),
                              set(gate.revoked))
    if passed or req.emergency is None:
        return Verdict(passed, detail)
    opened, why = emergency.at_gate(req, gate)
    return Verdict(True, opened.detail()) if opened else Verdict(False, f"{detail}; {why}")


def window_open(req: Requirement, gate: GateContext) -> Verdict:
    """The named maintenance window is declared in the inventory and open now."""
    window = gate.windows.get(req.window)
    if window is None:
        known = ", ".join(sorted(gate.windows)) or "none"
        return Verdict(False, f"no maintenance window {req.window!r} in the inventory "
                              f"(declared: {known})")
    span = f"{window.start.isoformat()} .. {window.end.isoformat()}"
    now = datetime.fromtimestamp(gate.now, timezone.utc)
    short = _time_left_short(req, window, gate, now)
    if short:
        return Verdict(False, short, simulated=gate.policy.window_assumed_open)
    if gate.policy.window_assumed_open and window.end > now:
        return Verdict(True, f"window {req.window} ({span}) assumed open in a dry run "
                             "(it has not ended)", simulated=True)
    if gate.policy.window_assumed_open:
        return Verdict(False, f"window {req.window} ({span}) ended before "
                              f"{now.isoformat(timespec='seconds')}: not even a rehearsal "
                              "may assume it open")
    if not window.contains(now):
        return Verdict(False, f"window {req.window} ({span}) is not open at {now.isoformat()}")
    unsure = clock_refusal(gate)
    if unsure:
        return Verdict(False, f"window {req.window} ({span}): {unsure}")
    return Verdict(True, f"window {req.window} ({span}) open")


def clock_refusal(gate: GateContext) -> str:
    """Why the host clock cannot be trusted for a window check, when the site's time policy
    requires a synchronised clock (execute runs; a dry run keeps simulated time); "" if it
    can, or nothing is required."""
    policy, clock = gate.time_policy, gate.clock
    if gate.policy.window_assumed_open or policy is None or not policy.required:
        return ""
    if clock is None or clock.synchronised is not True:
        how = clock.how if clock is not None else "not read"
        return (f"the host clock is not synchronised ({how}), and the site's time policy "
                "requires it (all.vars.time_sync.required)")
    if clock.max_error is not None and clock.max_error > policy.max_error:
        return (f"the host clock's error may be {clock.max_error:g}s, over the "
                f"{policy.max_error:g}s the site's time policy allows")
    return ""


def _time_left_short(req: Requirement, window: Any, gate: GateContext, now: datetime) -> str:
    """Why the time left in an open (or, in a dry run, future) window cannot hold the path
    from here in the worst case; "" when it can or nothing is known of the path."""
    from otpatch.modules.contract.durations import format_duration
    need = gate.needs.get(gate.state)
    if not need or now >= window.end:
        return ""
    left = (window.end - max(now, window.start)).total_seconds()
    if left >= need:
        return ""
    return (f"window {req.window} ends {window.end.isoformat()}: {format_duration(left)} "
            f"left, but the path from {gate.state} needs {format_duration(need)} in the "
            "worst case (failure, then rollback)")


GUARDS: dict[str, Callable[[Requirement, GateContext], Verdict]] = {
    "hash_verified": hash_verified,
    "signoff": signoffs_present,
    "window": window_open,
}


def evaluate(req: Requirement, gate: GateContext) -> Verdict:
    return GUARDS[req.kind](req, gate)


@dataclass(frozen=True)
class DowntimeUse:
    """One downtime budget at a device change: its limit, the time already spent in its
    states, and the worst case of what remains (a failure, then the rollback)."""

    name: str
    limit: float
    spent: float
    worst: float
    worst_how: str  # "production_verify fails, then rollback -> production_restore"


def entry_proof(state: str, gate: GateContext, window: Any, need: float,
                downtime: tuple[DowntimeUse, ...]) -> Verdict:
    """Before a production state that changes a device: now inside the window (assumed in a
    dry run), the worst case of the path from here ending before the window closes, and
    every downtime budget's spent time plus its worst case within its limit. Each figure of
    the arithmetic is in the detail, passed or not."""
    now = datetime.fromtimestamp(gate.now, timezone.utc)
    parts, refused = [], False
    if window is None:
        return Verdict(False, "no maintenance window was passed on the way here: a "
                              "production device change needs one")
    unsure = clock_refusal(gate)
    if unsure:
        return Verdict(False, f"{unsure}; not entered")
    left = (window.end - now).total_seconds()
    if now < window.start and not gate.policy.window_assumed_open:
        parts.append(f"window {window.name} opens {window.start.isoformat()}: not yet")
        refused = True
    elif left <= 0:
        parts.append(f"window {window.name} closed {window.end.isoformat()}")
        refused = True
    else:
        fits = need <= left
        refused |= not fits
        parts.append(f"window {window.name} ends {window.end.isoformat()}: {_span(left)} "
                     f"left, the path from {state} needs {_span(need)} in the worst case "
                     f"({'fits' if fits else 'does not fit'})")
    for use in downtime:
        total, fits = use.spent + use.worst, use.spent + use.worst <= use.limit
        refused |= not fits
        name = "downtime" if use.name == "downtime" else f"downtime budget {use.name}"
        parts.append(f"{name}: {_span(use.spent)} spent + {_span(use.worst)} worst case "
                     f"({use.worst_how}) = {_span(total)}, "
                     + (f"within the {_span(use.limit)} approved" if fits
                        else f"over the {_span(use.limit)} approved"))
    detail = "; ".join(parts) + ("; not entered" if refused else "")
    return Verdict(not refused, detail, simulated=gate.policy.window_assumed_open)


def _span(seconds: float) -> str:
    """A duration as a person reads it: `8m`, `1h30m`, or whole days past two of them."""
    from otpatch.modules.contract.durations import format_duration

    return f"{seconds / 86400:.0f} days" if seconds > 2 * 86400 else format_duration(seconds)
