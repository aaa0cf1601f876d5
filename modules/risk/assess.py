"""risk.assess: score an advisory's vector with the cited compensating controls and record
the scores and the due date as facts (so the journal holds the assessment)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.module import Module, Result
from otpatch.modules.schema_defs import TARGET, TEXT


class Assess(Module):
    name = "risk.assess"
    reaches_device = False  # its target's inventory record only: no stage of its own
    doc = ("Risk first (IEC TR 62443-2-3): score the advisory's CVSS v3.0/v3.1 vector, apply "
           "the cited compensating controls (from `controls_file`, relative to the playbook) "
           "as environmental metrics, and take the due category from the effective score: "
           "above 9.0 emergency patch within 72 hours of `published`, above 7.0 within 30 "
           "days, otherwise the next planned cycle (`next_cycle`). With `target`, every cited "
           "control must apply to every host of the target. With `profile` (an exported "
           "mGuard profile, e.g. {{ facts.fw.profile.path }}) the cited controls' claims are "
           "checked against its rules, names resolved by `policy` (default: the shipped "
           "firewall policy), and a control whose claims do not hold gets no credit; "
           "without it, claims are not checked and the control is credited, marked so. "
           "Facts: risk.{base, effective, severity, due_category, deadline, controls (those "
           "applied), vector, effective_vector, claims (a verdict per control that makes "
           "claims), ...}. Reads files only; the same in a dry run.")
    args_schema = {
        "type": "object",
        "properties": {
            "vector": TEXT,
            "published": {**TEXT, "description": "ISO date or date and time (UTC if no offset)"},
            "controls": {"type": "array", "items": TEXT, "uniqueItems": True},
            "controls_file": TEXT,
            "next_cycle": TEXT,
            "advisory": TEXT,
            "target": TARGET,
            "profile": {**TEXT, "description": "an exported mGuard profile to check claims on"},
            "policy": {**TEXT, "description": "the firewall policy the claims' names are in"},
        },
        "required": ["vector", "published"],
        "additionalProperties": False,
    }

    def run(self, args: Mapping[str, Any], ctx: Any) -> Result:
        from otpatch.modules.contract.errors import InputError

        try:
            return _assess(args, ctx)
        except InputError as e:
            return Result(failed=True, msg="; ".join(_plain(line) for line in e.lines()))


def _assess(args: Mapping[str, Any], ctx: Any) -> Result:
    from otpatch.modules.risk.claims import credited
    from otpatch.modules.risk.due import due, parse_when
    from otpatch.modules.risk.scoring import score

    cited, verdicts, profile = _checked_controls(args, ctx)
    trouble = _not_covered(cited, args.get("target"), ctx)
    if trouble:
        return Result(failed=True, msg=trouble)
    scored = score(args["vector"], credited(cited, verdicts))
    published = parse_when(args["published"], "published")
    cycle = parse_when(args["next_cycle"], "next_cycle") if args.get("next_cycle") else None
    when = due(scored.effective, published, cycle)
    facts = {"advisory": args.get("advisory"), "vector": scored.vector,
             "effective_vector": scored.effective_vector, "version": scored.version,
             "base": scored.base, "base_severity": scored.base_severity,
             "effective": scored.effective, "effective_basis": scored.effective_basis,
             "severity": scored.severity, "controls": list(scored.controls),
             "control_evidence": [_cited(c) for c in cited],
             "published": published.isoformat(), "due_category": when.category,
             "deadline": when.deadline.isoformat() if when.deadline else None,
             "due_rule": when.rule}
    if verdicts or profile:  # a file without claims records what it always recorded
        facts["claims"] = [v.to_dict() for v in verdicts]
    return Result(msg=_summary(args.get("advisory"), scored, when, verdicts),
                  facts={"risk": facts})


def _checked_controls(args: Mapping[str, Any], ctx: Any) -> tuple[tuple, tuple, Any]:
    """The cited controls, a claim verdict for each that makes claims (checked against
    `profile` when given, names resolved by `policy`), and the profile's path."""
    from otpatch.modules.firewall.review import read_profile
    from otpatch.modules.risk.claims import judge, policy_zones
    from otpatch.modules.risk.controls import load_controls, select_controls

    file, profile = _path(args.get("controls_file"), ctx), _path(args.get("profile"), ctx)
    policy = _path(args.get("policy"), ctx)
    zones = policy_zones(policy) if profile or policy else None
    known = load_controls(file, zones) if file else {}
    cited = select_controls(known, args.get("controls", ()), str(file) if file else None)
    return cited, judge(cited, read_profile(profile) if profile else None, zones), profile


def _cited(control: Any) -> dict[str, Any]:
    """A cited control as the record keeps it: what it changes and the evidence for it."""
    return {"id": control.id, "description": control.description,
            "metrics": dict(control.metrics),
            "evidence": [{"kind": e.kind, "ref": e.ref} for e in control.evidence]}


def _path(name: str | None, ctx: Any) -> Path | None:
    """A file an argument names: as given when absolute, else relative to the playbook."""
    if not name:
        return None
    path = Path(name)
    return path if path.is_absolute() else Path(getattr(ctx, "playbook_dir", None)
                                                or Path.cwd()) / path


def _not_covered(cited: tuple, target: str | None, ctx: Any) -> str:
    """Why a cited control does not hold for a host of the target, if one does not."""
    if not target or not cited:
        return ""
    for host in ctx.hosts(target):
        for control in cited:
            if not control.applies_to.covers(host, ctx.inventory):
                zone = f" (zone {host.zone})" if host.zone else ""
                return (f"control {control.id!r} does not apply to {host.name}{zone}: it "
                        f"applies to {control.applies_to.describe()}")
    return ""


def _summary(advisory: str | None, scored: Any, when: Any, verdicts: tuple = ()) -> str:
    from otpatch.modules.risk.claims import ClaimStatus

    head = f"{advisory}: " if advisory else ""
    with_controls = f" with {', '.join(scored.controls)}" if scored.controls else ""
    deadline = f" by {when.deadline.isoformat()}" if when.deadline else ""
    notes = "".join(f"; {v.explain()}" for v in verdicts if v.status is not ClaimStatus.HOLDS)
    return (f"{head}base {scored.base} {scored.base_severity}, effective {scored.effective} "
            f"{scored.severity}{with_controls}; {when.category}{deadline}{notes}")


def _plain(line: str) -> str:
    return line.removeprefix("otpatch: ")
