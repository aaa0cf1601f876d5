"""The emergency path of a sign-off gate (issue 11 item 7, IEC TR 62443-2-3's 72-hour rule).

When the advisory's effective score (the run's `risk.assess` facts) is above the gate's
`emergency.score_above` and the normal dual approval is not complete, ONE valid approval for
one of the named roles opens the gate now; the other roles must sign within
`emergency.within` afterwards, over the binding the gate had when it passed. The change is
not undone by a missing or late second signature (it happened), but the record says so:
`standing` judges each emergency retrospectively approved, awaiting, or NOT approved.
Everything here is pure; the conductor journals EmergencyOpened, the CLI prints."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from otpatch.engine import approvals as ap
from otpatch.modules.contract.durations import format_duration


@dataclass(frozen=True)
class Opening:
    """An emergency this gate opens now: the score that allows it, who signed, who is due
    and by when (UTC), and the binding later approvals must match."""

    score: float
    threshold: float
    within: float
    assessed: tuple[dict, ...]  # each risk assessment seen: {target, effective, vector}
    signed: tuple[dict, ...]  # {role, person, signed_at, approval (document id)}
    due_roles: tuple[str, ...]
    opened_at: datetime
    binding: Mapping[str, Any]

    @property
    def due(self) -> datetime:
        return self.opened_at + timedelta(seconds=self.within)

    def detail(self) -> str:
        who = "; ".join(f"{s['role']} signed by {s['person']}" for s in self.signed)
        return (f"EMERGENCY ({_above(self.score, self.threshold)}): {who}; "
                f"{', '.join(self.due_roles)} must sign by {_iso(self.due)} "
                f"(within {format_duration(self.within)})")

    def preview(self) -> str:
        """What resuming would do: the gate passes now, the others sign within `within`."""
        who = "; ".join(f"{s['role']} signed by {s['person']}" for s in self.signed)
        return (f"{_above(self.score, self.threshold)}: {who}; {', '.join(self.due_roles)} "
                f"must then sign within {format_duration(self.within)}")

    def event_fields(self, gate: str, visit: int) -> dict[str, Any]:
        """The fields of the EmergencyOpened event the conductor journals."""
        return {"gate": gate, "visit": visit, "score": self.score,
                "threshold": self.threshold, "within": self.within,
                "assessed": [dict(a) for a in self.assessed],
                "signed": [dict(s) for s in self.signed], "due_roles": list(self.due_roles),
                "opened_at": _iso(self.opened_at), "due": _iso(self.due),
                "binding": dict(self.binding)}


# -- the gate -----------------------------------------------------------------------------------

def assessed(facts: Mapping[str, Any]) -> list[dict]:
    """Every risk assessment the run's facts hold (risk.assess writes `risk`, under its
    target when it names one): {target, effective, vector}, highest score first."""
    found = [(None, facts.get("risk"))]
    found += [(name, value.get("risk")) for name, value in facts.items()
              if isinstance(value, Mapping) and name != "risk"]
    out = [{"target": name, "effective": float(risk["effective"]),
            "vector": str(risk.get("vector"))}
           for name, risk in found if isinstance(risk, Mapping)
           and isinstance(risk.get("effective"), (int, float))
           and not isinstance(risk.get("effective"), bool) and "vector" in risk]
    return sorted(out, key=lambda a: -a["effective"])


def score_refusal(emergency: Any, seen: list[dict]) -> str:
    """Why the highest assessed score does not open the emergency path ("" when it does)."""
    if not seen:
        return "no risk.assess in this run"
    if seen[0]["effective"] <= emergency.score_above:
        return (f"effective score {_score(seen[0]['effective'])} is not above "
                f"{_score(emergency.score_above)}")
    return ""


def path(req: Any, docs: Iterable[Mapping[str, Any]], bound: Mapping[str, Any],
         approvers: Iterable[Any], operator: str | None, now: datetime, revoked: set[str],
         facts: Mapping[str, Any]) -> tuple[Opening | None, str]:
    """(the emergency this gate opens now, or None; why not, when not). Call it when the
    normal dual approval is not complete; each approval is judged as approvals.judge does."""
    emergency, seen = req.emergency, assessed(facts)
    why = score_refusal(emergency, seen)
    if why:
        return None, f"emergency path not open: {why}"
    approvers = tuple(approvers)
    chosen = ap.counting(req.roles, [ap.judge(d, bound, approvers, operator, now, revoked)
                                     for d in docs])
    score = seen[0]["effective"]
    if not chosen:
        return None, (f"emergency path available ({_above(score, emergency.score_above)}): "
                      f"one valid approval ({' or '.join(req.roles)}) passes the gate now, "
                      f"the other role(s) must sign within {format_duration(emergency.within)}")
    signed = tuple({"role": r, "person": j.person, "signed_at": j.doc.get("signed_at"),
                    "approval": ap.document_id(j.doc)} for r, j in chosen.items())
    return Opening(score, emergency.score_above, emergency.within, tuple(seen), signed,
                   tuple(r for r in req.roles if r not in chosen), now, dict(bound)), ""


def at_gate(req: Any, gate: Any) -> tuple[Opening | None, str]:
    """`path` on a gate's context (engine/guards.py GateContext)."""
    return path(req, gate.approvals, gate.binding or {}, gate.approvers, gate.operator,
                _utc(gate.now), set(gate.revoked), gate.facts)


def opening(req: Any, gate: Any) -> Opening | None:
    """The emergency a passed sign-off gate was opened by (None: it passed by the normal
    dual approval, or declares no emergency): what the conductor journals."""
    if req.kind != "signoff" or req.emergency is None or gate.binding is None:
        return None
    passed, _ = ap.evaluate(req.roles, gate.approvals, gate.binding, gate.approvers,
                            gate.operator, _utc(gate.now), set(gate.revoked))
    return None if passed else at_gate(req, gate)[0]


def to_journal(state: Any, gate: Any, progress: Any) -> list[dict[str, Any]]:
    """The EmergencyOpened fields for each sign-off of `state` that just passed on its
    emergency path, once per visit (execute runs only: a rehearsal opens nothing)."""
    if gate.policy.simulated_signoffs:
        return []
    # a gate evaluated again after the entry proof held the run back keeps its first
    # opening and due time: one EmergencyOpened per visit of the gate state
    visit = 1 + sum(v.state == state.name for v in progress.path)
    if any(e.gate == state.name and e.visit == visit for e in progress.emergencies):
        return []
    found = (opening(req, gate) for req in state.requires)
    return [o.event_fields(state.name, visit) for o in found if o is not None]


def rehearsal_note(req: Any, facts: Mapping[str, Any]) -> str:
    """What a dry run's simulated sign-off says of the emergency path ("" without one)."""
    emergency, seen = req.emergency, assessed(facts)
    if emergency is None:
        return ""
    why = score_refusal(emergency, seen)
    would = (f"it would not apply: {why}" if why
             else f"it would apply ({_above(seen[0]['effective'], emergency.score_above)})")
    return (f"; an emergency path is declared (one role signs now, the others within "
            f"{format_duration(emergency.within)}, when the effective score is above "
            f"{_score(emergency.score_above)}): {would}")


# -- the record ------------------------------------------------------------------------------

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
    due = _when(opened.due)
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
            refused.append(f"{_signer_of(doc, approvers)} as {doc.get('role')}: {why}")
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
    role, signed_at = str(doc.get("role")), _when(doc.get("signed_at"))
    opened_at = _when(opened.opened_at)
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
    if signed_at > _when(opened.due):
        return f"signed {doc.get('signed_at')}, after the due time {opened.due}: late", signer
    return "", signer


def refusal(doc: Mapping[str, Any], opened: Any, progress: Any, approvers: Iterable[Any]) -> str:
    """Why a new retrospective approval for `opened` does not count ("" if it does): what
    `approve` and `approvals add` say after recording it."""
    approvers = tuple(approvers)
    counted = {r["role"]: r for r in _standing(opened, progress, approvers,
                                                _when(opened.due)).retrospective}
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
        lines.append(f"  opened {s.opened_at} on {_above(s.score, s.threshold)}; the other "
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


# -- helpers --------------------------------------------------------------------------------

def _above(score: float, threshold: float) -> str:
    return f"effective score {_score(score)} > {_score(threshold)}"


def _score(value: float) -> str:
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"


def _signer_of(doc: Mapping[str, Any], approvers: tuple) -> str:
    return next((a.name for a in approvers if ap.approver_key(a) == doc.get("public_key")),
                "an unknown key")


def _when(text: Any) -> datetime | None:
    return ap._parse_time(text)  # one parser of a signed document's times


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")
