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
class GateView:
    """What a guard may look at; built fresh for each evaluation."""

    dry_run: bool
    now: float
    params: Mapping[str, Any]
    facts: Mapping[str, Any]
    windows: Mapping[str, Any]  # name -> MaintenanceWindow (inventory)
    state: str = ""  # the state whose edge is guarded
    needs: Mapping[str, float] = field(default_factory=dict)  # state -> worst-case seconds


def hash_verified(req: Requirement, view: GateView) -> Verdict:
    """The firmware param's file was hashed in this run and matched the pinned hash."""
    pinned = view.params.get(req.param) or {}
    seen = (view.facts.get("verified") or {}).get(req.param)
    if not seen:
        return Verdict(False, f"{req.param}: no verified hash recorded in this run "
                              "(run firmware.verify first)")
    same_algo = str(seen.get("algorithm", "")).lower() == str(pinned.get("algorithm")).lower()
    same_hash = str(seen.get("hash", "")).lower() == str(pinned.get("hash", "")).lower()
    if not (same_algo and same_hash):
        return Verdict(False, f"{req.param}: verified {seen.get('algorithm')}:{seen.get('hash')} "
                              f"is not the pinned {pinned.get('algorithm')}:{pinned.get('hash')}")
    return Verdict(True, f"{req.param}: {pinned['algorithm']} {pinned['hash']} verified")


def signoffs_present(req: Requirement, view: GateView) -> Verdict:
    """Each role has signed. Dry runs take a simulation sign-off, marked so."""
    roles = " + ".join(req.roles)
    if view.dry_run:
        return Verdict(True, f"simulation sign-off for {roles} (not valid for production)",
                       simulated=True)
    return Verdict(False, f"not implemented: signed approvals (otpatch approve) for {roles}; "
                          "an execute run cannot pass a sign-off gate yet")


def window_open(req: Requirement, view: GateView) -> Verdict:
    """The named maintenance window is declared in the inventory and open now."""
    window = view.windows.get(req.window)
    if window is None:
        known = ", ".join(sorted(view.windows)) or "none"
        return Verdict(False, f"no maintenance window {req.window!r} in the inventory "
                              f"(declared: {known})")
    span = f"{window.start.isoformat()} .. {window.end.isoformat()}"
    now = datetime.fromtimestamp(view.now, timezone.utc)
    short = _time_left_short(req, window, view, now)
    if short:
        return Verdict(False, short, simulated=view.dry_run)
    if view.dry_run and window.end > now:
        return Verdict(True, f"window {req.window} ({span}) assumed open in a dry run "
                             "(it has not ended)", simulated=True)
    if view.dry_run:
        return Verdict(False, f"window {req.window} ({span}) ended before "
                              f"{now.isoformat(timespec='seconds')}: not even a rehearsal "
                              "may assume it open")
    if not window.contains(now):
        return Verdict(False, f"window {req.window} ({span}) is not open at {now.isoformat()}")
    return Verdict(True, f"window {req.window} ({span}) open")


def _time_left_short(req: Requirement, window: Any, view: GateView, now: datetime) -> str:
    """Why the time left in an open (or, in a dry run, future) window cannot hold the path
    from here in the worst case; "" when it can or nothing is known of the path."""
    from otpatch.engine.model import format_duration

    need = view.needs.get(view.state)
    if not need or now >= window.end:
        return ""
    left = (window.end - max(now, window.start)).total_seconds()
    if left >= need:
        return ""
    return (f"window {req.window} ends {window.end.isoformat()}: {format_duration(left)} "
            f"left, but the path from {view.state} needs {format_duration(need)} in the "
            "worst case (failure, then rollback)")


GUARDS: dict[str, Callable[[Requirement, GateView], Verdict]] = {
    "hash_verified": hash_verified,
    "signoff": signoffs_present,
    "window": window_open,
}


def evaluate(req: Requirement, view: GateView) -> Verdict:
    return GUARDS[req.kind](req, view)
