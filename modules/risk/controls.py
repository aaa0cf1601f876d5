"""Compensating controls: a CVSS environmental metric this site justifies, with evidence.

A control says, for the assets it applies to, which modified metrics hold (the mGuard blocks
TCP 502 from outside VLAN 10, so a Modbus flaw in the M580 is reachable from the adjacent
network only: MAV:A), and cites the evidence for it (a firewall rule, a check). The file is
YAML, validated by schemas/controls.schema.json; every problem is reported at once, each as
file:line:col (PlaybookError).

`applies_to` names where the control holds: zones, inventory groups and hosts; a host is
covered when any of them names it (its zone, a group it belongs to, its name).
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
}


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
class Control:
    """A compensating control: the modified metrics it justifies, its evidence, its scope."""

    id: str
    description: str
    metrics: Mapping[str, str]  # CVSS v3 environmental metric -> value, e.g. {"MAV": "A"}
    evidence: tuple[Evidence, ...]
    applies_to: AppliesTo
    source: str = field(default="", compare=False)  # file:line:col where it is defined

    def metrics_text(self) -> str:
        return "/".join(f"{m}:{v}" for m, v in self.metrics.items())


def load_controls(path: str | Path) -> dict[str, Control]:
    """The controls of a YAML file, by id; PlaybookError carrying every problem otherwise."""
    from otpatch.modules.contract.schemas import schema_problems
    from otpatch.modules.contract.yamlsrc import read_yaml

    source = read_yaml(path)
    problems = schema_problems(source, "controls") + _duplicate_ids(source)
    if problems:
        raise PlaybookError(problems)
    out = {}
    for i, body in enumerate(source.data["controls"]):
        line, col = source.locate(("controls", i))
        out[body["id"]] = _control(body, f"{source.file}:{line}:{col}")
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


def _control(body: Mapping[str, Any], where: str) -> Control:
    scope = body["applies_to"]
    return Control(
        id=body["id"], description=body["description"],
        metrics=MappingProxyType(dict(body["metrics"])),
        evidence=tuple(Evidence(e["kind"], e["ref"]) for e in body["evidence"]),
        applies_to=AppliesTo(zones=tuple(scope.get("zones", ())),
                             groups=tuple(scope.get("groups", ())),
                             hosts=tuple(scope.get("hosts", ()))),
        source=where)
