"""A register decision judged now: does it still stand, and if not, every reason why.

A decision (register.py RegisterEntry) is taken on an advisory revision, its CVEs, the
controls credited in its effective score and, for defer and mitigate, a person's signed
acceptance, until a review date (and for mitigate, along a dated plan). It re-opens when any
of that stops being true: the advisory is revised, a CVE joins it, a control's credit is
withdrawn by the firewall review (claims.py), the review date passes, or the signature no
longer matches the entry. It is overdue when a plan step is late, or when its due deadline
has passed with nothing accepted in its place and the asset still affected. It is closed
when the advisory, evaluated against the asset now, no longer affects it (patched).

Pure: commands.py gathers what the advisory says now (AdvisoryNow), which controls lost
their credit and whether the signature verifies (accept.py), and calls `judge`.
Each reason has a stable code (REASONS) so a report or a test can name it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Mapping

from otpatch.modules.risk.register import Decision, RegisterEntry

# Who may accept a risk (IEC 62443-2-1 4.3.4.2: risk acceptance by the asset owner's
# management): the process owner (the business that carries the risk) or the OT security
# officer. An operator may not; nor may the entry's owner, who proposed the decision: one
# person does not both propose and accept (as nobody approves a run they operate).
ACCEPTING_ROLES = ("process_owner", "ot_security_officer")
ACCEPTANCE_KIND = "otpatch/risk-acceptance"
ACCEPTANCE_VERSION = 1
NEEDS_ACCEPTANCE = (Decision.DEFER, Decision.MITIGATE)

REASONS = {  # code -> what it means; (overdue) marks the codes that make a decision overdue
    "not-accepted": "a defer or mitigate decision nobody has accepted (signed) yet",
    "signature-invalid": "the acceptance's signature does not verify over the entry as it is "
                         "now, or is not the inventory key of the person named",
    "new-revision": "the advisory has a newer revision than the one decided on",
    "new-cve": "a CVE affecting the asset joined the advisory after the decision",
    "credit-withdrawn": "a control credited in the decision has a claim the firewall profile "
                        "refutes (claims.py): it gets no credit",
    "review-passed": "the decision's review date has passed",
    "plan-step-overdue": "(overdue) a step of the mitigation plan is past its date, not done",
    "deadline-passed": "(overdue) the due deadline has passed, the asset is (or may be) still "
                       "affected, and no standing acceptance takes its place",
}


class Status(str, Enum):
    DECIDED = "decided"  # stands
    OPEN = "open"  # needs an acceptance it does not have yet
    REOPENED = "re-opened"
    OVERDUE = "overdue"
    CLOSED = "closed"  # the advisory no longer affects the asset


@dataclass(frozen=True)
class Reason:
    code: str  # a key of REASONS
    text: str

    @property
    def overdue(self) -> bool:
        return REASONS[self.code].startswith("(overdue)")


@dataclass(frozen=True)
class Revision:
    """One entry of a CSAF document's revision_history."""

    number: str
    date: datetime
    summary: str


@dataclass(frozen=True)
class AdvisoryNow:
    """What the advisory says now, about one asset: its tracking version and revision
    history, and the CVEs that affect the asset (None: the asset was not evaluated, e.g. it
    is not in the inventory; (): evaluated, and nothing affects it)."""

    id: str
    revision: str
    history: tuple[Revision, ...] = ()
    cves: tuple[str, ...] | None = None
    firmware: str = ""  # the asset's firmware it was evaluated at, and where that came from


@dataclass(frozen=True)
class Judgement:
    entry: RegisterEntry
    number: int  # 1-based position in the register
    status: Status
    reasons: tuple[Reason, ...] = ()
    notes: tuple[str, ...] = ()  # what the judgement could not check, said plainly

    def to_dict(self) -> dict[str, Any]:
        e, a = self.entry, self.entry.accepted
        return {"entry": self.number, "asset": e.asset, "advisory": e.advisory,
                "cves": list(e.cves), "decision": e.decision.value, "owner": e.owner,
                "status": self.status.value,
                "reasons": [{"code": r.code, "text": r.text} for r in self.reasons],
                "notes": list(self.notes), "advisory_revision": e.advisory_revision,
                "review_by": _iso(e.review_by), "deadline": _iso(e.due.deadline),
                "accepted": None if a is None else {"by": a.by, "role": a.role,
                                                    "at": _iso(a.at)},
                "plan": [{"step": s.step, "by": _iso(s.by), "controls": list(s.controls),
                          "done": _iso(s.done)} for s in e.plan],
                "where": e.where}


# -- what an acceptance signs ------------------------------------------------------------------

def binding(entry: RegisterEntry) -> dict[str, Any]:
    """What a person accepts: the asset, the advisory at its revision, its CVEs, the scores
    and the controls credited, the decision, its rationale and owner, the deadline it sets
    aside, the review date and the plan. Changing any of it voids the signature."""
    return {"asset": entry.asset, "advisory": entry.advisory,
            "advisory_revision": entry.advisory_revision, "cves": sorted(entry.cves),
            "vector": entry.vector, "effective_vector": entry.effective_vector,
            "effective": entry.effective, "controls": list(entry.controls),
            "decision": entry.decision.value, "rationale": entry.rationale,
            "owner": entry.owner, "deadline": _iso(entry.due.deadline),
            "review_by": _iso(entry.review_by),
            "plan": [{"step": s.step, "by": _iso(s.by), "controls": list(s.controls)}
                     for s in entry.plan]}


def acceptance_body(entry: RegisterEntry, *, by: str, role: str, at: datetime, key: str
                    ) -> dict[str, Any]:
    """The document whose RFC 8785 canonical JSON the acceptor signs. A plan step's `done`
    date is not in it: recording progress does not void the acceptance."""
    return {"kind": ACCEPTANCE_KIND, "version": ACCEPTANCE_VERSION, "binding": binding(entry),
            "by": by, "role": role, "at": _iso(at), "key": key}


def acceptor_problem(entry: RegisterEntry, role: str, person: Any) -> str:
    """Why this person (an inventory Approver, None: nobody of that name) may not accept
    the entry's risk in `role`; "" when they may."""
    if entry.decision not in NEEDS_ACCEPTANCE:
        return f"a {entry.decision.value} decision needs no acceptance (only defer and mitigate)"
    if role not in ACCEPTING_ROLES:
        return f"role {role} may not accept a risk (may: {', '.join(ACCEPTING_ROLES)})"
    if person is None:
        return "nobody of that name is an approver in the inventory"
    if role not in person.roles:
        return f"{person.name} does not hold the role {role} in the inventory"
    if person.name == entry.owner:
        return (f"{person.name} owns this decision: the owner proposes, another person "
                "accepts")
    return ""


# -- the judgement -----------------------------------------------------------------------------

def judge(entry: RegisterEntry, now: datetime, *, number: int = 0,
          advisory: AdvisoryNow | None = None, withdrawn: Mapping[str, str] | None = None,
          signature: str = "") -> Judgement:
    """The entry's status now and every reason for it. `advisory`: what it says now (None:
    not among the advisories given); `withdrawn`: control id -> why its credit is withdrawn;
    `signature`: "" when the acceptance verifies, else why not (ignored without one);"""
    notes = _notes(entry, advisory)
    if advisory is not None and advisory.cves == ():
        return Judgement(entry, number, Status.CLOSED, (), notes + (
            f"{advisory.id} no longer affects {entry.asset}"
            + (f" ({advisory.firmware})" if advisory.firmware else ""),))
    reasons = (_not_accepted(entry, now) + _signature(entry, signature) + _revised(entry, advisory)
               + _new_cves(entry, advisory) + _withdrawn(entry, withdrawn or {})
               + _review(entry, now) + _plan(entry, now))
    reasons += _deadline(entry, now, advisory, stands=not reasons)
    return Judgement(entry, number, _status(reasons), reasons, notes)


def _status(reasons: tuple[Reason, ...]) -> Status:
    if any(r.overdue for r in reasons):
        return Status.OVERDUE
    if any(r.code != "not-accepted" for r in reasons):
        return Status.REOPENED
    return Status.OPEN if reasons else Status.DECIDED


def _not_accepted(e: RegisterEntry, now: datetime) -> tuple[Reason, ...]:
    if e.decision not in NEEDS_ACCEPTANCE:
        return ()
    if e.accepted is not None and e.accepted.at > now:
        return (Reason("not-accepted", f"not accepted yet on {_day(now)}: {e.accepted.by} "
                       f"accepted it on {_day(e.accepted.at)}"),)
    if e.accepted is not None:
        return ()
    return (Reason("not-accepted", f"not accepted: a {e.decision.value} decision stands once "
                   f"a {' or '.join(ACCEPTING_ROLES)} other than its owner signs it "
                   "(otpatch risk accept)"),)


def _signature(e: RegisterEntry, why: str) -> tuple[Reason, ...]:
    if e.accepted is None or not why:
        return ()
    return (Reason("signature-invalid", f"acceptance by {e.accepted.by}: {why}"),)


def _revised(e: RegisterEntry, adv: AdvisoryNow | None) -> tuple[Reason, ...]:
    if adv is None or not e.advisory_revision or adv.revision == e.advisory_revision:
        return ()
    later = [r for r in adv.history if _later(r.number, e.advisory_revision)]
    said = "; ".join(f"{r.number} of {r.date.date().isoformat()}: {r.summary}" for r in later)
    return (Reason("new-revision", f"{adv.id} revised: revision {e.advisory_revision} -> "
                   f"{adv.revision}" + (f" ({said})" if said else "")),)


def _new_cves(e: RegisterEntry, adv: AdvisoryNow | None) -> tuple[Reason, ...]:
    if adv is None or adv.cves is None:
        return ()
    return tuple(Reason("new-cve", f"{cve} joined {adv.id} and affects {e.asset}: not in the "
                        "decision") for cve in adv.cves if cve and cve not in e.cves)


def _withdrawn(e: RegisterEntry, withdrawn: Mapping[str, str]) -> tuple[Reason, ...]:
    cited = dict.fromkeys(e.controls + tuple(c for s in e.plan for c in s.controls))
    return tuple(Reason("credit-withdrawn", f"control {c}: {withdrawn[c]}")
                 for c in cited if c in withdrawn)


def _review(e: RegisterEntry, now: datetime) -> tuple[Reason, ...]:
    if e.review_by is None or now <= e.review_by:
        return ()
    return (Reason("review-passed", f"review date {_day(e.review_by)} passed"),)


def _plan(e: RegisterEntry, now: datetime) -> tuple[Reason, ...]:
    return tuple(Reason("plan-step-overdue", f"plan step {i} ({s.step}) due {_day(s.by)}, "
                        "not done") for i, s in enumerate(e.plan, 1)
                 if s.done is None and now > s.by)


def _deadline(e: RegisterEntry, now: datetime, adv: AdvisoryNow | None, stands: bool
              ) -> tuple[Reason, ...]:
    """Overdue when the deadline passed and nothing takes its place: a standing acceptance
    (defer, mitigate: accepted, signature valid, nothing re-opened) sets it aside."""
    deadline = e.due.deadline
    if deadline is None or now <= deadline:
        return ()
    if stands and e.decision in NEEDS_ACCEPTANCE and e.accepted is not None \
            and e.accepted.at <= now:
        return ()
    unknown = "" if adv is not None and adv.cves is not None else (
        " (whether it still affects the asset is not known: the advisory was not evaluated "
        "against it)")
    return (Reason("deadline-passed", f"due {_day(deadline)} ({e.due.category}), passed; "
                   f"{e.asset} not patched{unknown}"),)


def _notes(e: RegisterEntry, adv: AdvisoryNow | None) -> tuple[str, ...]:
    out = []
    if e.advisory and adv is None:
        out.append(f"{e.advisory} is not among the advisories given: its revision and CVEs "
                   "were not checked")
    return tuple(out)


def _later(number: str, than: str) -> bool:
    """Whether revision `number` comes after `than` (integers or dotted numbers, as CSAF
    writes them; text that is neither compares as text)."""
    def key(text: str) -> tuple:
        parts = text.split("+")[0].split("-")[0].split(".")
        return tuple(int(p) if p.isdigit() else -1 for p in parts)
    try:
        return key(number) > key(than)
    except ValueError:
        return number > than


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(timezone.utc).isoformat() if when else None


def _day(when: datetime) -> str:
    return when.date().isoformat() if when.time() == datetime.min.time() else when.isoformat()
