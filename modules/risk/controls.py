"""Compensating controls: a CVSS environmental metric this site justifies, with evidence.

A control says, for the assets it applies to, which modified metrics hold (the mGuard blocks
TCP 502 from outside VLAN 10, so a Modbus flaw in the M580 is reachable from the adjacent
network only: MAV:A), and cites the evidence for it (a firewall rule, a check). The file is
YAML, validated by schemas/controls.schema.json; every problem is reported at once, each as
file:line:col (PlaybookError).

`applies_to` names where the control holds: zones, inventory groups and hosts; a host is
covered when any of them names it (its zone, a group it belongs to, its name).

`claims` (optional) are what the control says about the firewall in a form a profile can
refute: `{blocks: {protocol: tcp, port: 502, from: outside:control, to: control, except:
[historian], table: incoming}}`. Their names are zones and hosts of a firewall policy; given
the policy's Zones, load_controls resolves every name at load, each unknown one a located
problem. claims.py checks them against a profile.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from otpatch.modules.contract.errors import PlaybookError, Problem
from otpatch.modules.risk.scoring import RiskError

RULES = {
    "control-duplicate-id": "two controls with the same id in one file",
    "claim-unknown-name": "a claim names something that is not a zone, a host or an address",
}
CLAIM_NAMES = ("from", "to", "except")  # the fields of a `blocks` claim that Zones resolves


@dataclass(frozen=True)
class Evidence:
    """Why the control is believed: a firewall rule, a configuration, a check, a document."""

    kind: str  # firewall_rule | configuration | check | document | test_record | ticket | other
    ref: str  # where to find it: a rule name, a document id, a command


@dataclass(frozen=True)
class AppliesTo:
    """The assets a control holds for: zones, inventory groups, host names (any of them)."""

    zones: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

    def covers(self, host: Any, inventory: Any = None) -> bool:
        """Whether the host (an inventory Host) is covered: by name, zone or group."""
        if host.name in self.hosts or (host.zone and host.zone in self.zones):
            return True
        groups = getattr(inventory, "groups", None) or {}
        return any(host.name in groups.get(g, ()) for g in self.groups)

    def describe(self) -> str:
        parts = [f"{kind} {', '.join(names)}" for kind, names in
                 (("zones", self.zones), ("groups", self.groups), ("hosts", self.hosts))
                 if names]
        return "; ".join(parts)


@dataclass(frozen=True)
class Claim:
    """Traffic the control says the firewall never accepts: `protocol` (and `port`, None for
    every port) from `source` to `destination`, but for the `excepted` sources, in the
    `table` kind of tables (incoming or outgoing, the VPN connections' included). Names are
    as written (zones, hosts, addresses); claims.py resolves them through a policy's Zones."""

    protocol: str  # tcp | udp | icmp | all
    port: int | None
    source: str
    destination: str
    excepted: tuple[str, ...] = ()
    table: str = "incoming"
    where: str = field(default="", compare=False)  # file:line:col of the claim

    def describe(self) -> str:
        port = f" port {self.port}" if self.port is not None else ""
        but = f" except {', '.join(self.excepted)}" if self.excepted else ""
        return (f"blocks {self.protocol}{port} from {self.source}{but} to {self.destination} "
                f"({self.table} tables)")


@dataclass(frozen=True)
class Control:
    """A compensating control: the modified metrics it justifies, its evidence, its scope."""

    id: str
    description: str
    metrics: Mapping[str, str]  # CVSS v3 environmental metric -> value, e.g. {"MAV": "A"}
    evidence: tuple[Evidence, ...]
    applies_to: AppliesTo
    source: str = field(default="", compare=False)  # file:line:col where it is defined
    claims: tuple[Claim, ...] = ()
    enforced_by: tuple[str, ...] = ()  # the mGuards whose rules carry the claims

    def metrics_text(self) -> str:
        return "/".join(f"{m}:{v}" for m, v in self.metrics.items())


def load_controls(path: str | Path, zones: Any = None) -> dict[str, Control]:
    """The controls of a YAML file, by id; PlaybookError carrying every problem otherwise.
    With `zones` (a firewall policy's Zones), every name in a claim is resolved too."""
    from otpatch.modules.contract.schemas import schema_problems
    from otpatch.modules.contract.yamlsrc import read_yaml

    source = read_yaml(path)
    problems = schema_problems(source, "controls") + _duplicate_ids(source)
    if zones is not None:
        problems += _unknown_names(source, zones)
    if problems:
        raise PlaybookError(problems)
    out = {}
    for i, body in enumerate(source.data["controls"]):
        line, col = source.locate(("controls", i))
        claims = tuple(_claim(c["blocks"], source.where(("controls", i, "claims", j)))
                       for j, c in enumerate(body.get("claims", ())))
        out[body["id"]] = _control(body, f"{source.file}:{line}:{col}", claims)
    return out


def select_controls(known: Mapping[str, Control], ids: Iterable[str], file: str | None
                    ) -> tuple[Control, ...]:
    """The controls cited by id; an unknown id raises RiskError listing the known ones."""
    ids = list(ids)
    if ids and file is None:
        raise RiskError(f"control {ids[0]!r} cited but no controls file given: name the file "
                        "that defines it (--controls FILE, or controls_file in a playbook)")
    missing = [i for i in ids if i not in known]
    if missing:
        names = ", ".join(sorted(known)) or "none"
        raise RiskError(f"unknown control {missing[0]!r}: {file} defines {names}")
    return tuple(known[i] for i in dict.fromkeys(ids))


def covering(controls: Mapping[str, Control], host: Any, inventory: Any = None
             ) -> tuple[Control, ...]:
    """The controls that hold for this inventory host (by zone, group or name), in file
    order: what an assessment of that host may cite."""
    return tuple(c for c in controls.values() if c.applies_to.covers(host, inventory))


def _duplicate_ids(source: Any) -> list[Problem]:
    first: dict[str, int] = {}
    problems = []
    bodies = source.data.get("controls")
    for i, body in enumerate(bodies if isinstance(bodies, list) else ()):
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            continue  # the schema says what is wrong with it
        line = source.locate(("controls", i, "id"))[0]
        if body["id"] in first:
            problems.append(source.problem(
                ("controls", i, "id"), "control-duplicate-id",
                f"controls[{i}].id: control id {body['id']!r} is already defined on line "
                f"{first[body['id']]}"))
        first.setdefault(body["id"], line)
    return problems


def _unknown_names(source: Any, zones: Any) -> list[Problem]:
    """A located problem for each name in a claim that the zones do not resolve."""
    from otpatch.modules.contract.yamlsrc import display_path
    from otpatch.modules.firewall.zones import ZoneError

    problems = []
    for path, name in _claim_names(source.data.get("controls")):
        try:
            zones.resolve(name)
        except ZoneError as e:
            problems.append(source.problem(path, "claim-unknown-name",
                                           f"{display_path(path)}: {e}", value=True))
    return problems


def _claim_names(bodies: Any) -> Iterable[tuple[tuple, str]]:
    """(YAML path, name) of every name a claim gives in from, to and except; what is not
    text is skipped (the schema reports it)."""
    for i, body in enumerate(bodies if isinstance(bodies, list) else ()):
        claims = body.get("claims") if isinstance(body, dict) else None
        for j, claim in enumerate(claims if isinstance(claims, list) else ()):
            blocks = claim.get("blocks") if isinstance(claim, dict) else None
            at = ("controls", i, "claims", j, "blocks")
            for key in CLAIM_NAMES if isinstance(blocks, dict) else ():
                value = blocks.get(key, ())
                values = [(at + (key,), value)] if isinstance(value, str) else [
                    (at + (key, k), v) for k, v in enumerate(value if isinstance(value, list)
                                                             else ())]
                yield from ((path, v) for path, v in values if isinstance(v, str))


def _claim(blocks: Mapping[str, Any], where: Any) -> Claim:
    return Claim(protocol=blocks["protocol"], port=blocks.get("port"), source=blocks["from"],
                 destination=blocks["to"], excepted=tuple(blocks.get("except", ())),
                 table=blocks.get("table", "incoming"),
                 where=f"{where.file}:{where.line}:{where.col}")


def _control(body: Mapping[str, Any], where: str, claims: tuple[Claim, ...] = ()
             ) -> Control:
    scope = body["applies_to"]
    return Control(
        id=body["id"], description=body["description"],
        metrics=MappingProxyType(dict(body["metrics"])),
        evidence=tuple(Evidence(e["kind"], e["ref"]) for e in body["evidence"]),
        applies_to=AppliesTo(zones=tuple(scope.get("zones", ())),
                             groups=tuple(scope.get("groups", ())),
                             hosts=tuple(scope.get("hosts", ()))),
        source=where, claims=claims, enforced_by=tuple(body.get("enforced_by", ())))
