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
        return (f"EMERGENCY ({above(self.score, self.threshold)}): {who}; "
                f"{', '.join(self.due_roles)} must sign by {_iso(self.due)} "
                f"(within {format_duration(self.within)})")

    def preview(self) -> str:
        """What resuming would do: the gate passes now, the others sign within `within`."""
        who = "; ".join(f"{s['role']} signed by {s['person']}" for s in self.signed)
        return (f"{above(self.score, self.threshold)}: {who}; {', '.join(self.due_roles)} "
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
        return None, (f"emergency path available ({above(score, emergency.score_above)}): "
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
             else f"it would apply ({above(seen[0]['effective'], emergency.score_above)})")
    return (f"; an emergency path is declared (one role signs now, the others within "
            f"{format_duration(emergency.within)}, when the effective score is above "
            f"{_score(emergency.score_above)}): {would}")


# -- helpers --------------------------------------------------------------------------------

def above(score: float, threshold: float) -> str:
    return f"effective score {_score(score)} > {_score(threshold)}"


def _score(value: float) -> str:
    return f"{value:.1f}" if round(value, 1) == value else f"{value:g}"


def signer_of(doc: Mapping[str, Any], approvers: tuple) -> str:
    return next((a.name for a in approvers if ap.approver_key(a) == doc.get("public_key")),
                "an unknown key")


def when(text: Any) -> datetime | None:
    return ap._parse_time(text)  # one parser of a signed document's times


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")
