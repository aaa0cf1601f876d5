"""Signed approvals at sign-off gates: what a person signs, and whether a gate accepts it.

An approval request binds a run at one gate: the run and its mode, the playbook's name,
version and content hash, the params, the resolved target assets with their identity (part
number, serial, firmware as found), every firmware image's pinned hash, the journal entry
that closed the evidence state the gate approves (`over:`), the maintenance windows and the
downtime budgets. The approver adds their role, a reason and an expiry, and signs the
request's RFC 8785 canonical JSON with their Ed25519 key (IEC 62443-3-3 SR 1.5, SR 2.12).

A sign-off gate passes only when every named role has a valid approval: signed by a key the
inventory gives a person holding that role, over exactly this binding (a changed playbook,
param, target, firmware or evidence voids it), not expired, not revoked, by distinct people,
none of them the run's operator (IEC 62443-3-3 SR 2.1 RE 4, dual approval). Everything here
is pure: the gate calls `evaluate` on what the journal and the inventory hold."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from otpatch.modules.contract.canonical import sha256_hex

REQUEST_KIND = "otpatch/approval-request"
APPROVAL_KIND = "otpatch/approval"
REVOCATION_KIND = "otpatch/revocation"
ATTESTATION_KIND = "otpatch/attestation"
VERSION = 1


def canonical(value: Any) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) bytes: what is signed and hashed."""
    import rfc8785

    return rfc8785.dumps(value)


def document_id(doc: Mapping[str, Any]) -> str:
    """sha256 of a signed document's canonical JSON: how a revocation names an approval."""
    return "sha256:" + sha256_hex(canonical(dict(doc)))


# -- what is bound ---------------------------------------------------------------------------

def binding(run: Any, playbook: Any, inventory: Any, targets: Mapping[str, tuple[Any, ...]],
            gate: str, gathered: Any) -> dict[str, Any]:
    """What an approval at `gate` binds, from the run's progress, its playbook, inventory,
    resolved targets and the evidence gathered for it (engine/evidence.py `gather`); the
    conductor and `otpatch approve` (through engine/runs.py `gate_binding`) compute it the
    same way."""
    from otpatch.engine.model import DEFAULT_EVIDENCE_AGE

    cfg = run.config
    req = signoff_of(playbook, gate)
    return {
        "run_id": run.run_id, "mode": cfg.mode, "gate": gate,
        "roles": list(req.roles) if req else [],
        "playbook": {"name": cfg.playbook_name, "version": cfg.playbook_version,
                     "hash": cfg.playbook_hash},
        "params": _plain(cfg.params),
        "targets": {name: [_asset(h) for h in hosts] for name, hosts in sorted(targets.items())},
        "firmware": {name: {"algorithm": str(v.get("algorithm")), "hash": str(v.get("hash"))}
                     for name, v in sorted(cfg.params.items())
                     if isinstance(v, Mapping) and "hash" in v},
        "evidence": list(gathered.items) if gathered.complete and gathered.items else None,
        "evidence_age": (req.evidence_age or DEFAULT_EVIDENCE_AGE) if req and req.over
        else None,
        "windows": {w.name: {"start": w.start.isoformat(), "end": w.end.isoformat()}
                    for w in (inventory.windows.get(n) for n in _windows_named(playbook))
                    if w is not None},
        "budgets": {b.name: b.limit for b in playbook.budgets.values()},
    }


def signoff_of(playbook: Any, gate: str) -> Any:
    """The signoff requirement of state `gate`, or None."""
    state = playbook.states.get(gate)
    reqs = [r for r in (state.requires if state else ()) if r.kind == "signoff"]
    return reqs[0] if reqs else None


def evidence(run: Any, playbook: Any, over: str | None) -> dict[str, Any] | None:
    """The evidence state `over`, completed in this run: its last visit left by success
    or, while the run still stands in it, with every step done; the entry of its last step
    (None when the gate names none, or the state is not completed)."""
    visits = [v for v in run.path if v.state == over] if over else []
    if not visits:
        return None
    last = visits[-1]
    if last.left_at is not None:
        done = last.event == "succeed"
    else:
        state = playbook.states.get(over)
        done = (run.state == over and state is not None and not run.failure
                and run.step_index >= len(state.do))
    return {"state": over, "entry": last.done_entry} if done and last.done_entry else None


def _asset(host: Any) -> dict[str, Any]:
    return {"asset": host.name, "part_number": host.part_number, "serial": host.serial,
            "firmware": host.firmware}


def _windows_named(playbook: Any) -> list[str]:
    return sorted({r.window for s in playbook.states.values() for r in s.requires
                   if r.kind == "window" and r.window})


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- requests, approvals, revocations ---------------------------------------------------------

def request(bound: Mapping[str, Any]) -> dict[str, Any]:
    """The unsigned request an approver receives (`approve --request-out`)."""
    return {"kind": REQUEST_KIND, "version": VERSION, "binding": dict(bound)}


def sign_approval(req: Mapping[str, Any], key: Any, *, role: str, reason: str,
                  expires: datetime, now: datetime) -> dict[str, Any]:
    """The signed approval: the request's binding, the approver's role, reason, time and
    expiry, their public key, and the signature over all of it (RFC 8785)."""
    body = {"kind": APPROVAL_KIND, "version": VERSION, "binding": dict(req["binding"]),
            "role": role, "reason": reason, "signed_at": _iso(now), "expires": _iso(expires),
            "public_key": key.public_key}
    return {**body, "signature": key.sign(canonical(body))}


def sign_revocation(approval: Mapping[str, Any], key: Any, *, reason: str,
                    now: datetime) -> dict[str, Any]:
    """A withdrawal of `approval`, signed by the key that signed it."""
    body = {"kind": REVOCATION_KIND, "version": VERSION, "approval": document_id(approval),
            "run_id": approval["binding"]["run_id"], "reason": reason, "revoked_at": _iso(now),
            "public_key": key.public_key}
    return {**body, "signature": key.sign(canonical(body))}


def sign_attestation(step: Mapping[str, Any], key: Any, *, confirmed: bool,
                     now: datetime) -> dict[str, Any]:
    """A person's signed answer to the attestation a waiting step asks for: the run, the
    state and step, the statement and role exactly as asked, yes or no."""
    body = {"kind": ATTESTATION_KIND, "version": VERSION, "run_id": step["run_id"],
            "state": step["state"], "visit": step["visit"], "index": step["index"],
            "statement": step["statement"],
            "role": step["role"], "confirmed": confirmed, "signed_at": _iso(now),
            "public_key": key.public_key}
    return {**body, "signature": key.sign(canonical(body))}


def attestation_for(docs: Iterable[Mapping[str, Any]], *, run_id: str, state: str,
                    visit: int, index: int, statement: str, role: str,
                    approvers: Iterable[Any]) -> tuple[Mapping[str, Any], Any] | None:
    """The newest signed attestation for exactly this step (in this visit of its state: a
    state entered again asks again), statement and role, by a key an inventory person
    holding the role has: (document, person); None if there is none."""
    for doc in reversed(list(docs)):
        same = (doc.get("kind") == ATTESTATION_KIND and doc.get("run_id") == run_id
                and doc.get("state") == state and doc.get("visit") == visit
                and doc.get("index") == index
                and doc.get("statement") == statement and doc.get("role") == role)
        person = next((a for a in approvers if approver_key(a) == doc.get("public_key")
                       and role in a.roles), None)
        if same and person is not None and signature_ok(doc):
            return doc, person
    return None


def signature_ok(doc: Mapping[str, Any]) -> bool:
    """Whether a signed document's signature is its public key's over the rest of it."""
    from otpatch.engine import keys

    body = {k: v for k, v in doc.items() if k != "signature"}
    try:
        return keys.signature_valid(doc["public_key"], doc["signature"], canonical(body))
    except (KeyError, TypeError, ValueError):
        return False


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


# -- the gate ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Judged:
    """One approval, judged: who signed (None: no inventory person has the key), for which
    role, and why it does not count ("" when it does)."""

    role: str
    person: str | None
    refused: str
    doc: Mapping[str, Any]


def approver_key(approver: Any) -> str | None:
    """The approver's public key: written in the inventory, or in the file it names."""
    if approver.public_key:
        return approver.public_key
    if approver.public_key_file:
        try:
            return Path(approver.public_key_file).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None
    return None


def judge(doc: Mapping[str, Any], bound: Mapping[str, Any], approvers: Iterable[Any],
          operator: str | None, now: datetime, revoked: set[str]) -> Judged:
    """Whether one recorded approval counts at this gate, now, and if not, why."""
    role = str(doc.get("role", ""))
    person = next((a for a in approvers if approver_key(a) == doc.get("public_key")), None)
    name = person.name if person else None
    why = _refusal(doc, bound, person, role, operator, now, revoked)
    return Judged(role, name, why, doc)


def _refusal(doc: Mapping[str, Any], bound: Mapping[str, Any], person: Any, role: str,
             operator: str | None, now: datetime, revoked: set[str]) -> str:
    if doc.get("kind") != APPROVAL_KIND or not signature_ok(doc):
        return "its signature does not verify (altered, or not an otpatch approval)"
    if person is None:
        return (f"signed by a key no person in the inventory has "
                f"({str(doc.get('public_key'))[:12]}…)")
    if role not in person.roles:
        return f"{person.name} does not hold the role {role} in the inventory"
    if operator and person.name == operator:
        return f"{person.name} operates this run: an operator cannot approve their own change"
    if document_id(doc) in revoked:
        return f"revoked by {person.name}"
    mismatch = _binding_mismatch(doc.get("binding") or {}, bound)
    if mismatch:
        return mismatch
    expires = _parse_time(doc.get("expires"))
    if expires is None or now >= expires:
        return f"expired at {doc.get('expires')}"
    return ""


FIELD_NAMES = {"mode": "another mode (a dry run's request: a rehearsal, never an approval)",
               "run_id": "another run", "gate": "another gate",
               "roles": "other roles", "playbook": "another playbook version",
               "params": "other params", "targets": "other targets or assets",
               "firmware": "another firmware hash", "evidence": "other evidence",
               "evidence_age": "another evidence age limit",
               "windows": "another maintenance window", "budgets": "other downtime budgets"}


def _binding_mismatch(signed: Mapping[str, Any], bound: Mapping[str, Any]) -> str:
    """"" when the approval binds exactly this run at this gate; else what differs."""
    for key, what in FIELD_NAMES.items():
        if signed.get(key) != bound.get(key):
            return (f"signed over {what} ({key}: {_short(signed.get(key))} signed, "
                    f"{_short(bound.get(key))} now)")
    extra = sorted(set(signed) - set(FIELD_NAMES))
    return f"signed over fields this otpatch does not bind ({', '.join(extra)})" if extra else ""


def _short(value: Any) -> str:
    text = canonical(value).decode("utf-8") if value is not None else "none"
    return text if len(text) <= 60 else text[:57] + "..."


def _parse_time(text: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return when if when.tzinfo else None


def evaluate(roles: Iterable[str], docs: Iterable[Mapping[str, Any]],
             bound: Mapping[str, Any], approvers: Iterable[Any], operator: str | None,
             now: datetime, revoked: set[str]) -> tuple[bool, str]:
    """(passed, detail): every role signed by a distinct person, each approval valid."""
    approvers = tuple(approvers)
    judged = [judge(d, bound, approvers, operator, now, revoked) for d in docs]
    chosen = counting(roles, judged)
    missing = [r for r in roles if r not in chosen]
    if not missing:
        return True, "signed: " + "; ".join(
            f"{r} by {j.person} ({j.doc.get('reason')!r}, until {j.doc.get('expires')})"
            for r, j in chosen.items())
    parts = [_missing_role(r, judged, chosen, approvers, operator) for r in missing]
    return False, "awaiting sign-off: " + "; ".join(parts)


def counting(roles: Iterable[str], judged: Iterable[Judged]) -> dict[str, Judged]:
    """role -> the approval that counts for it: valid, and by a person not already counted
    for another role (the newest such one); roles nobody validly signed are left out. The
    gate's dual approval and the emergency path (engine/emergency.py) count alike."""
    judged, chosen = list(judged), {}
    for role in roles:
        valid = [j for j in judged if j.role == role and not j.refused
                 and j.person not in {c.person for c in chosen.values()}]
        if valid:
            chosen[role] = valid[-1]
    return chosen


def _missing_role(role: str, judged: list[Judged], chosen: Mapping[str, Judged],
                  approvers: tuple[Any, ...], operator: str | None) -> str:
    tried = [j for j in judged if j.role == role]
    why = [f"{j.person or 'unknown key'}: {j.refused}" for j in tried if j.refused]
    why += [f"{j.person} already signed as {r}: one person cannot sign for two roles"
            for j in tried if not j.refused for r, c in chosen.items() if c.person == j.person]
    may = [a.name for a in approvers if role in a.roles and a.name != operator]
    who = f" (may sign: {', '.join(may)})" if may else " (nobody in the inventory may sign)"
    return f"{role} missing{who}" + (f"; refused: {'; '.join(why)}" if why else "")

