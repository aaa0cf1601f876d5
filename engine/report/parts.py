"""The report's sections other than devices and states, each from the run's typed events:
firmware images, risk assessments, approvals, attestations, deviations, the journal."""
from __future__ import annotations

from pathlib import PurePath
from typing import Any, Mapping

from otpatch.engine import events as E


def requirement(ev: E.Requirement) -> dict[str, Any]:
    """A gate requirement (`_state`: the state whose edge it guarded; build.py pops it)."""
    return {"requirement": ev.requirement, "kind": ev.requirement_kind, "passed": ev.passed,
            "detail": ev.detail, "simulated": ev.simulated, "at": ev.elapsed,
            "_state": ev.state}


def read_back_step(entry: Any, ev: E.ReadBackDone) -> dict[str, Any]:
    """A resume's read-back of an interrupted change, as a step row."""
    said = {True: "the change had been applied", False: "the change had not been applied",
            None: "the device could not tell whether the change was applied"}[ev.applied]
    waited = f"; waited {ev.waited:g} s for it to settle ({ev.moving})" if ev.moving else ""
    return {"index": ev.index, "name": f"read back {ev.module}", "module": ev.module,
            "hosts": [], "changes_device": False, "status": "read_back", "changed": False,
            "msg": f"resume read the device back: {said}{waited}", "started_at": ev.elapsed,
            "duration": ev.waited, "reverified": True, "entry": entry.seq}


def firmware(typed: list[Any]) -> list[dict[str, Any]]:
    """Each image a firmware.verify step checked: published hash and the SHA-256 read."""
    out = {}
    for ev in typed:
        if not (isinstance(ev, E.StepResult) and ev.module == "firmware.verify"
                and not ev.result.failed):
            continue
        for param, v in sorted(((ev.result.facts or {}).get("verified") or {}).items()):
            if isinstance(v, Mapping):
                out[param] = {"param": param, "file": PurePath(str(v.get("path", ""))).name,
                              "algorithm": str(v.get("algorithm", "")),
                              "published": str(v.get("hash", "")),
                              "sha256": str(v.get("sha256", "")),
                              "size": v.get("size") if isinstance(v.get("size"), int) else None}
    return [out[k] for k in sorted(out)]


def firewall(typed: list[Any]) -> list[dict[str, Any]]:
    """Each firewall.review result: the profile reviewed, its rule counts per table, the
    findings, and (compared with the earlier profile) the rules the change lost."""
    out = []
    for ev in typed:
        if not (isinstance(ev, E.StepResult) and ev.module == "firewall.review"):
            continue
        for label, r in sorted(((ev.result.facts or {}).get("firewall") or {}).items()):
            if not isinstance(r, Mapping):
                continue
            diff = r.get("diff") if isinstance(r.get("diff"), Mapping) else None
            out.append({"state": ev.state, "label": label, "failed": ev.result.failed,
                        "msg": ev.result.msg or "",
                        "profile": PurePath(str(r.get("profile", ""))).name,
                        "sha256": r.get("sha256"), "version": r.get("version"),
                        "policy": r.get("policy"), "counts": r.get("counts") or {},
                        "by_severity": r.get("by_severity") or {},
                        "findings": list(r.get("findings") or []),
                        "compared_to": PurePath(str(diff["compared_to"])).name
                        if diff and diff.get("compared_to") else None,
                        "lost": diff.get("lost") if diff else None,
                        "changed": diff.get("changed") if diff else None,
                        "new_findings": list(r.get("new_findings") or [])})
    return out


def post_change(typed: list[Any]) -> list[dict[str, Any]]:
    """The post-change check (issue 16): each services.check reading compared with the
    as-found one and the site policy, and each firewall review compared with the as-found
    profile (rules the change added, findings new since); one row per finding, and one per
    check that found nothing, so the record says the check ran."""
    out: list[dict[str, Any]] = []
    for ev in typed:
        if not isinstance(ev, E.StepResult):
            continue
        facts = ev.result.facts or {}
        if ev.module == "services.check":
            out += _services_rows(ev.state, facts.get("services") or {})
        elif ev.module == "firewall.review":
            out += _firewall_rows(ev.state, facts.get("firewall") or {})
    return out


def _services_rows(state: str, readings: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, hosts in sorted(readings.items()):
        for host, r in sorted((hosts or {}).items()):
            if not isinstance(r, Mapping) or not (r.get("compared_to") or r.get("findings")):
                continue  # an as-found reading with nothing to say: not a post-change check
            found = [str(f) for f in r.get("findings") or []]
            if not r.get("checked"):
                found = [f"services not checked: {r.get('why', '')}"]
            rows += [{"state": state, "check": f"services.{label}", "host": host,
                      "finding": f} for f in found or ["no finding"]]
    return rows


def _firewall_rows(state: str, reviews: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, r in sorted(reviews.items()):
        diff = r.get("diff") if isinstance(r, Mapping) else None
        if not isinstance(diff, Mapping):
            continue  # not compared with an earlier profile: not a post-change review
        found = [f"rule added by the change: {a}" for a in diff.get("added") or []]
        found += [f"finding new since {PurePath(str(diff.get('compared_to'))).name}: {f}"
                  for f in r.get("new_findings") or []]
        rows += [{"state": state, "check": f"firewall.{label}", "host": None, "finding": f}
                 for f in found or ["no finding"]]
    return rows


RISK_FIELDS = ("advisory", "vector", "base", "base_severity", "effective", "effective_vector",
               "severity", "published", "due_category", "deadline", "due_rule")


def risk(typed: list[Any], targets: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    """Each risk.assess result: base and effective scores, the controls with their
    evidence (their ids only, from a run recorded before the evidence was), the due date."""
    out = []
    for ev in typed:
        if not (isinstance(ev, E.StepResult) and ev.module == "risk.assess"
                and not ev.result.failed):
            continue
        facts = (ev.result.facts or {}).get("risk") or {}
        cited = facts.get("control_evidence")
        if cited is None:
            cited = [{"id": c, "description": "", "metrics": {}, "evidence": []}
                     for c in facts.get("controls") or []]
        out.append({"state": ev.state, "target": ev.facts_scope,
                    "hosts": list(targets.get(ev.facts_scope, [])) if ev.facts_scope else [],
                    **{k: facts.get(k) for k in RISK_FIELDS}, "controls": cited})
    return out


def approvals(events: list[tuple[Any, Any]], progress: Any) -> list[dict[str, Any]]:
    """Each signed approval recorded for the run: who (the register's name for the key),
    role, reason, when, until when, what the signature binds, and whether it was revoked."""
    from otpatch.engine.approvals import document_id

    people = _people(progress.config)
    out = []
    for _, ev in events:
        if not isinstance(ev, E.ApprovalAdded):
            continue
        doc = ev.approval
        binding = doc.get("binding") or {}
        out.append({"gate": binding.get("gate"), "role": str(doc.get("role", "")),
                    "person": people.get(doc.get("public_key")),
                    "public_key": str(doc.get("public_key", "")),
                    "reason": str(doc.get("reason", "")),
                    "signed_at": str(doc.get("signed_at", "")), "expires": doc.get("expires"),
                    "revoked": document_id(doc) in progress.revoked,
                    "added_by": ev.added_by, "signed_over": binding,
                    "document_id": document_id(doc)})
    return out


def _people(cfg: Any) -> dict[str, str]:
    """public key -> name, from the register the run recorded at its start."""
    approvers = (cfg.register or {}).get("approvers") or []
    return {a.get("public_key"): a.get("name") for a in approvers if isinstance(a, Mapping)}


def attestations(typed: list[Any]) -> list[dict[str, Any]]:
    """Each core.attest answer: the statement, who confirmed it (a signed file, or typed
    at a terminal), when, and whether it was a dry run's simulated confirmation."""
    out = []
    for ev in typed:
        if not (isinstance(ev, E.StepResult) and ev.module == "core.attest"):
            continue
        att = (ev.result.facts or {}).get("attestation")
        if not isinstance(att, Mapping):
            continue
        out.append({"state": ev.state, "statement": str(att.get("statement", "")),
                    "role": str(att.get("role", "")), "person": att.get("person"),
                    "confirmed": bool(att.get("confirmed")) and not ev.result.failed,
                    "at": att.get("at"), "signed": bool(att.get("signed_by_key")),
                    "simulated": bool(att.get("simulated")),
                    "public_key": att.get("signed_by_key") or None})
    return out


def deviations(typed: list[Any], cfg: Any, progress: Any) -> list[dict[str, Any]]:
    """What did not go as planned, in order: waivers the playbook declared, failures,
    rollbacks, gate refusals, read-backs, emergency sign-offs, budgets overrun, a halt."""
    out = [{"kind": "waiver", "state": None, "at": None,
            "detail": f"{w.get('rule')}: {w.get('reason')}"} for w in cfg.waivers or []]
    for ev in typed:
        row = _deviation(ev)
        if row:
            out.append(row)
    for name, budget in sorted(_budgets(typed).items()):
        if isinstance(budget, Mapping) and budget.get("over"):
            out.append({"kind": "budget_over", "state": None, "at": None,
                        "detail": f"{name}: {budget.get('used')} s used of "
                                  f"{budget.get('limit')} s"})
    if progress.status.value == "halted":
        out.append({"kind": "halted", "state": progress.state, "at": progress.elapsed,
                    "detail": progress.message or "halted: needs a person"})
    return out


def _deviation(ev: Any) -> dict[str, Any] | None:
    if isinstance(ev, E.Transition) and ev.trigger in ("fail", "roll_back"):
        kind = "rollback" if ev.trigger == "roll_back" else "failure"
        return {"kind": kind, "state": ev.source, "at": ev.elapsed,
                "detail": f"{ev.source} -> {ev.to}: {ev.reason or ev.trigger}"}
    if isinstance(ev, E.Requirement) and not ev.passed:
        return {"kind": "gate_refused", "state": ev.state, "at": ev.elapsed,
                "detail": f"{ev.requirement}: {ev.detail}"}
    if isinstance(ev, E.ReadBackDone):
        said = {True: "applied", False: "not applied", None: "could not tell"}[ev.applied]
        return {"kind": "read_back", "state": ev.state, "at": ev.elapsed,
                "detail": f"{ev.module} interrupted; read back: {said}"}
    if isinstance(ev, E.EmergencyOpened):
        return {"kind": "emergency", "state": ev.gate, "at": ev.elapsed,
                "detail": f"sign-off passed on the emergency path (score {ev.score} above "
                          f"{ev.threshold}); due by {ev.due}: {', '.join(ev.due_roles)}"}
    return None


def _budgets(typed: list[Any]) -> dict[str, Any]:
    return next((ev.budgets for ev in typed if isinstance(ev, E.RunEnded)), {}) or {}


def journal(record: Any) -> dict[str, Any]:
    """Where the run sits in the journal, its record hash, the signed checkpoint that
    covers it, and whether it verified."""
    from otpatch.engine.evidence_store import shown

    entries, ended, signed = record.entries, record.record, record.checkpoint
    return {"entries": len(entries), "first": entries[0].seq, "last": entries[-1].seq,
            "record": shown(ended.hash) if ended else None,
            "checkpoint": None if signed is None else {
                "entries": signed.entries, "head_hash": signed.head_hash,
                "signed_at": signed.signed_at, "public_key": signed.public_key},
            "verified": record.verified, "problems": list(record.problems)}
