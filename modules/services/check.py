"""services.check: the management services that answer on each host of a target, one TCP
connect per port where the site allows active checks (probe.py), and, after a change, what
the change turned on or off against the as-found reading and what the site policy does not
allow: the issue-16 post-change check, whose findings land in the run's record."""
from __future__ import annotations

from typing import Any, Mapping

from otpatch.modules.contract.durations import parse_duration
from otpatch.modules.contract.module import Module, Result
from otpatch.modules.schema_defs import DURATION, LABEL, TARGET
from otpatch.modules.services import probe

ALLOWED_VAR = "otpatch_services_allowed"  # host variable: the ports the site policy allows open


class ServicesCheck(Module):
    name = "services.check"
    real_device = "sourced"
    sources = probe.SOURCES
    doc = ("Which management services answer on each host of `target`: one TCP connect per "
           "port of `ports` (default 21, 80, 443, 502, 44818), one at a time, no retry, "
           "closed at once, each bounded by `timeout` (default 2s). Only where the site "
           "allows active checks: host variable otpatch_active_checks, by default on for lab "
           "and staging hosts and off for production ones (fragile OT devices have crashed "
           "under scans); elsewhere nothing is sent and the reading says why. A simulator is "
           "probed at its inventory endpoints only. With `compare_to` (the label of an "
           "earlier reading, e.g. as_found) it names the services the change turned on or "
           "off; with `allowed` (else the host variable otpatch_services_allowed) the open "
           "ports the site policy does not allow. Facts services.<label>.<host>: checked, "
           "why, ports {port: {service, state, at}}, findings, compared_to; `fail_on_findings` fails the "
           "step when there is any.")
    args_schema = {
        "type": "object",
        "properties": {
            "target": TARGET,
            "ports": {"type": "array", "minItems": 1, "uniqueItems": True,
                      "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
            "timeout": DURATION,
            "compare_to": LABEL,
            "allowed": {"type": "array", "uniqueItems": True,
                        "items": {"type": "integer", "minimum": 1, "maximum": 65535}},
            "fail_on_findings": {"type": "boolean"},
            "label": LABEL,
        },
        "required": ["target"],
        "additionalProperties": False,
    }

    def run(self, args: Mapping[str, Any], ctx: Any) -> Result:
        ports = tuple(args.get("ports") or probe.USUAL)
        timeout = parse_duration(args.get("timeout", "2s"))
        label = args.get("label", "services")
        earlier = ((ctx.facts.get("services") or {}).get(args["compare_to"])
                   if args.get("compare_to") else None)
        readings = {h.name: {**reading(h, ports, timeout, earlier, args.get("allowed")),
                             "compared_to": args.get("compare_to")}
                    for h in ctx.hosts(args["target"])}
        found = [f"{host}: {f}" for host, r in readings.items() for f in r["findings"]]
        msg = "; ".join(_said(host, r) for host, r in readings.items())
        if found:
            msg += "; findings: " + "; ".join(found)
        failed = bool(found) and bool(args.get("fail_on_findings"))
        return Result(failed=failed, msg=msg, facts={"services": {label: readings}})


def reading(host: Any, ports: tuple[int, ...], timeout: float,
            earlier: Mapping[str, Any] | None = None, allowed: Any = None) -> dict[str, Any]:
    """One host's reading: probed where allowed, with its findings."""
    may, why = probe.allowed(host)
    if not may:
        return {"checked": False, "why": why, "ports": {}, "findings": []}
    states = {str(s.port): s.to_json() for s in probe.probe(host, ports, timeout)}
    before = (earlier or {}).get(host.name)
    before_ports = before.get("ports") if before and before.get("checked") else None
    if allowed is None:
        allowed = (host.vars or {}).get(ALLOWED_VAR)
    return {"checked": True, "why": why, "ports": states,
            "findings": probe.findings(states, before_ports, allowed)}


def _said(host: str, r: Mapping[str, Any]) -> str:
    if not r["checked"]:
        return f"{host}: not checked ({r['why']})"
    answered = [p for p, s in r["ports"].items() if s["state"] == probe.OPEN]
    return f"{host}: open {', '.join(answered) or 'none'} of {', '.join(r['ports'])}"
