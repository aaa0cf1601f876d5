"""`otpatch risk ...` commands (registered by the CLI; no heavy imports at module level)."""
from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction, host: Any = None) -> None:
    """Add `risk` and its sub-commands to the otpatch CLI."""
    p = sub.add_parser("risk", help="CVSS risk scoring with compensating controls")
    rsub = p.add_subparsers(dest="risk_command", required=True, metavar="ACTION")
    s = rsub.add_parser(
        "score", help="base, effective score and due category of a CVSS v3.0/v3.1 vector",
        description="Score a CVSS v3.0/v3.1 vector, apply compensating controls as "
                    "environmental metrics, and give the due category: above 9.0 emergency "
                    "patch within 72 hours, above 7.0 within 30 days, otherwise the next "
                    "planned cycle. Dates are ISO; a date is midnight UTC, a time without "
                    "offset is UTC.")
    s.add_argument("vector", metavar="VECTOR", help="e.g. CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/"
                                                    "C:H/I:H/A:H")
    s.add_argument("--control", action="append", default=[], metavar="ID",
                   help="apply this control from --controls FILE (repeatable)")
    s.add_argument("--controls", metavar="FILE", help="compensating controls file (YAML)")
    s.add_argument("--profile", metavar="FILE",
                   help="the mGuard's exported profile (.atv or ECS .tar.gz): the cited "
                        "controls' claims are checked against its rules, and a control whose "
                        "claims do not hold gets no credit; without it, claims are not "
                        "checked and the control is credited, marked so")
    s.add_argument("--policy", metavar="FILE",
                   help="the firewall policy whose zones and hosts the claims name "
                        "(default: the shipped one)")
    s.add_argument("--published", metavar="DATE", help="advisory publication: gives deadlines")
    s.add_argument("--next-cycle", metavar="DATE", help="the next planned patch cycle")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=score_command)
    from otpatch.modules.risk import commands

    commands.register(rsub, host)


def score_command(args: argparse.Namespace) -> int:
    import json

    from otpatch.modules.firewall.review import read_profile
    from otpatch.modules.risk.claims import credited, judge, policy_zones
    from otpatch.modules.risk.controls import load_controls, select_controls
    from otpatch.modules.risk.due import category, due, parse_when, thresholds
    from otpatch.modules.risk.scoring import RiskError, score

    if args.next_cycle and not args.published:
        raise RiskError("--next-cycle needs --published DATE: the due date is taken from "
                        "the advisory's publication")
    zones = policy_zones(args.policy) if args.profile or args.policy else None
    known = load_controls(args.controls, zones) if args.controls else {}
    cited = select_controls(known, args.control, args.controls)
    verdicts = judge(cited, read_profile(args.profile) if args.profile else None, zones)
    applied = credited(cited, verdicts)
    scored = score(args.vector, applied)
    published = parse_when(args.published, "--published") if args.published else None
    cycle = parse_when(args.next_cycle, "--next-cycle") if args.next_cycle else None
    when = due(scored.effective, published, cycle) if published else None
    if args.json:
        doc = {**scored.to_dict(), "temporal_defined": scored.has_temporal,
               "controls": [_control_data(c) for c in applied],
               "claims": [v.to_dict() for v in verdicts],
               "published": published.isoformat() if published else None,
               "due": when.to_dict() if when else {"category": category(scored.effective),
                                                   "deadline": None, "rule": None},
               "thresholds": thresholds()}
        print(json.dumps(doc, indent=2))
        return 0
    print("\n".join(_lines(scored, cited, verdicts, published, when)))
    return 0


def _control_data(control: Any) -> dict[str, Any]:
    return {"id": control.id, "description": control.description,
            "metrics": dict(control.metrics), "applies_to": control.applies_to.describe()}


def _lines(scored: Any, cited: tuple, verdicts: tuple, published: Any, when: Any
           ) -> list[str]:
    from otpatch.modules.risk.due import category, thresholds_text

    out = [f"vector      {scored.vector} (CVSS {scored.version})",
           f"base        {scored.base} {scored.base_severity}"]
    if scored.has_temporal:
        out.append(f"temporal    {scored.temporal}")
    withdrawn = {v.control for v in verdicts if not v.credited}
    out += [f"control     {c.id}: {c.metrics_text()}"
            f"{' withdrawn' if c.id in withdrawn else ''} ({c.description}; applies to "
            f"{c.applies_to.describe()})" for c in cited]
    out += [f"claims      {v.explain()}" for v in verdicts]
    out.append(f"effective   {scored.effective} {scored.severity} ({scored.effective_basis} "
               f"score of {scored.effective_vector})")
    if when is None:
        out.append(f"due         {category(scored.effective)} (give --published DATE for the "
                   "deadline)")
    else:
        deadline = when.deadline.isoformat() if when.deadline else "none yet"
        out.append(f"due         {when.category}: {when.rule}")
        out.append(f"deadline    {deadline} (published {published.isoformat()})")
    out.append(f"thresholds  {thresholds_text()}")
    return out
