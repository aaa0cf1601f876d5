"""The record of an emergency change (engine/emergency.py opens it at the gate): each
EmergencyOpened judged now, retrospectively approved, awaiting until its due time, or NOT
approved (a role that never signed, or signed late); what `status` and `approvals` show.
Pure: the CLI prints."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

from otpatch.engine import approvals as ap
from otpatch.engine import emergency as em
from otpatch.modules.contract.durations import format_duration

@dataclass(frozen=True)
class EmergencyStanding:
    """One emergency opening, judged now: who opened it, which retrospective approvals
    count, came late or do not count (and why), and its state in words."""

    gate: str
    visit: int
    opened_at: str
    due: str
    score: float
    threshold: float
    within: float
    signed: tuple[dict, ...]  # who opened the gate: {role, person, signed_at, approval}
    due_roles: tuple[str, ...]
    retrospective: tuple[dict, ...]  # counted in time: {role, person, signed_at}
    late: tuple[dict, ...]  # valid, but signed after the due time
    refused: tuple[str, ...]  # approvals for a due role that do not count, and why
    state: str
    approved: bool | None  # True; None while awaiting; False: not, and the time is up

    @property
    def still_due(self) -> tuple[str, ...]:
        """The roles whose retrospective approval has not counted."""
        done = {r["role"] for r in self.retrospective}
        return tuple(r for r in self.due_roles if r not in done)

    def to_json(self) -> dict[str, Any]:
        return {"gate": self.gate, "visit": self.visit, "opened_at": self.opened_at,
                "due": self.due, "score": self.score, "threshold": self.threshold,
                "within": self.within, "signed": [dict(s) for s in self.signed],
                "due_roles": list(self.due_roles),
                "retrospective": [dict(r) for r in self.retrospective],
                "late": [dict(r) for r in self.late], "refused": list(self.refused),
                "state": self.state, "approved": self.approved}


def standing(progress: Any, approvers: Iterable[Any], now: datetime) -> list[EmergencyStanding]:
    """Each emergency the run was opened by, judged at `now`: "retrospectively approved"
    (every due role validly signed over the opening's binding, by a person distinct from
    those who opened it and from each other, not the operator, `signed_at` no later than
    due), "awaiting retrospective approval until DUE", or "NOT retrospectively approved:
    ROLE did not sign by DUE" (saying so when an approval came, but late)."""
    approvers = tuple(approvers)
    return [_standing(e, progress, approvers, now) for e in progress.emergencies]


def _standing(opened: Any, progress: Any, approvers: tuple, now: datetime) -> EmergencyStanding:
    due = em.when(opened.due)
    counted: dict[str, dict] = {}
    late, refused = [], []
    for doc in progress.approvals:
        if doc.get("role") not in opened.due_roles or doc.get("role") in counted \
                or (doc.get("binding") or {}).get("gate") != opened.gate:
            continue
        why, signer = _retrospective(doc, opened, progress, approvers, counted)
        if signer and why:
            late.append(signer)
        elif why:
            refused.append(f"{em.signer_of(doc, approvers)} as {doc.get('role')}: {why}")
        else:
            counted[signer["role"]] = signer
    missing = [r for r in opened.due_roles if r not in counted]
    if not missing:
        approved, state = True, "retrospectively approved"
    elif now <= due:
        approved, state = None, f"awaiting retrospective approval until {opened.due}"
    else:
        approved, state = False, "NOT retrospectively approved: " + "; ".join(
            _not_signed(r, opened.due, late) for r in missing)
    return EmergencyStanding(opened.gate, opened.visit, opened.opened_at, opened.due,
                             opened.score, opened.threshold, opened.within,
                             tuple(opened.signed), tuple(opened.due_roles),
                             tuple(counted.values()), tuple(late), tuple(refused), state,
                             approved)


def _retrospective(doc: Mapping[str, Any], opened: Any, progress: Any, approvers: tuple,
                   counted: Mapping[str, dict]) -> tuple[str, dict]:
    """(why the approval does not count, "" if it does; its signer when it is valid, late
    or not): judged as the gate judges, over the opening's binding, at the time it was
    signed (never before the opening)."""
    role, signed_at = str(doc.get("role")), em.when(doc.get("signed_at"))
    opened_at = em.when(opened.opened_at)
    j = ap.judge(doc, opened.binding, approvers, progress.config.operator,
                 max(signed_at, opened_at) if signed_at else opened_at, set(progress.revoked))
    if j.refused:
        return j.refused, {}
    if signed_at is None:
        return f"its signing time {doc.get('signed_at')!r} is not a time", {}
    if j.person in {s["person"] for s in opened.signed}:
        return (f"{j.person} opened the gate as an emergency: the retrospective approval "
                "needs another person"), {}
    if j.person in {c["person"] for c in counted.values()}:
        return f"{j.person} already signed as another role: one person cannot sign for two", {}
    signer = {"role": role, "person": j.person, "signed_at": doc.get("signed_at")}
    if signed_at > em.when(opened.due):
        return f"signed {doc.get('signed_at')}, after the due time {opened.due}: late", signer
    return "", signer


def refusal(doc: Mapping[str, Any], opened: Any, progress: Any, approvers: Iterable[Any]) -> str:
    """Why a new retrospective approval for `opened` does not count ("" if it does): what
    `approve` and `approvals add` say after recording it."""
    approvers = tuple(approvers)
    counted = {r["role"]: r for r in _standing(opened, progress, approvers,
                                                em.when(opened.due)).retrospective}
    if doc.get("role") in counted:
        return (f"{doc.get('role')} already signed retrospectively by "
                f"{counted[doc.get('role')]['person']}")
    return _retrospective(doc, opened, progress, approvers, counted)[0]


def due_openings(progress: Any, approvers: Iterable[Any],
                 now: datetime) -> list[tuple[Any, EmergencyStanding]]:
    """The newest emergency of each gate whose retrospective approval is not complete, with
    its standing: where `approve` may still sign (late included, which the record says)."""
    latest = {e.gate: e for e in progress.emergencies}
    pairs = zip(progress.emergencies, standing(progress, approvers, now))
    return [(e, s) for e, s in pairs if latest[e.gate] is e and s.still_due]


def _not_signed(role: str, due: str, late: list[dict]) -> str:
    came = [f"{s['person']} signed {s['signed_at']}" for s in late if s["role"] == role]
    return f"{role} did not sign by {due}" + (f" (it came late: {'; '.join(came)})"
                                              if came else "")


def describe(standings: Iterable[EmergencyStanding]) -> list[str]:
    """The emergency block of `status RUN_ID` and `approvals RUN_ID`, one line per fact."""
    lines = []
    for s in standings:
        lines.append(f"EMERGENCY change at {s.gate}: {s.state}")
        lines.append(f"  opened {s.opened_at} on {em.above(s.score, s.threshold)}; the other "
                     f"role(s) due within {format_duration(s.within)}, by {s.due}")
        lines += [f"  {o['role']} signed by {o['person']} ({o['signed_at']}): opened the gate"
                  for o in s.signed]
        lines += [f"  {r['role']} signed by {r['person']} ({r['signed_at']}): counts"
                  for r in s.retrospective]
        lines += [f"  {r['role']} signed by {r['person']} ({r['signed_at']}): late, after "
                  f"{s.due}" for r in s.late]
        lines += [f"  does not count: {why}" for why in s.refused]
    return lines


def run_record(progress: Any, now: datetime) -> tuple[list[EmergencyStanding], str]:
    """The run's emergencies judged by its inventory's approvers (`status`), and why they
    cannot be judged ("" when they can): the inventory unreadable, or changed since."""
    if not progress.emergencies:
        return [], ""
    from otpatch.engine.inventory import load_inventory
    from otpatch.modules.contract.errors import OtpatchError

    cfg = progress.config
    try:
        inventory = load_inventory(cfg.inventory) if cfg.inventory else None
    except OtpatchError as e:
        return [], f"its inventory cannot be read ({e})"
    if inventory is None or inventory.content_hash != cfg.inventory_hash:
        return [], f"its inventory {cfg.inventory} changed since the run started"
    return standing(progress, inventory.approvers, now), ""


def unjudged(progress: Any, why: str) -> list[str]:
    """The emergency block when the approvals cannot be judged: the openings, and why."""
    return [f"EMERGENCY change at {e.gate} (opened {e.opened_at}, {', '.join(e.due_roles)} "
            f"due by {e.due}): its retrospective approval cannot be judged: {why}"
            for e in progress.emergencies]
