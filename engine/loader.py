"""Load a playbook: YAML -> schema -> typed frozen model -> semantic lint, every problem at once.

A param without a default (and not firmware, whose default is its pinned image) is
required: it must be given with -e."""
from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from otpatch.modules.contract.errors import PlaybookError, Problem
from otpatch.engine.model import (AppliesTo, Budget, Emergency, FirmwareImage, Metadata,
                                  ParamSpec, Playbook, Requirement, Stage, State, Step,
                                  TargetSpec, Waiver)
from otpatch.modules.contract.values import freeze
from otpatch.modules.contract.durations import parse_duration
from otpatch.modules.contract.schemas import schema_problems
from otpatch.modules.contract.yamlsrc import RULES as YAML_RULES
from otpatch.modules.contract.yamlsrc import YamlSource, display_path, read_yaml

LOAD_RULES = {
    **YAML_RULES,
    "yaml-unreadable": "the file cannot be read (missing, a directory, no permission)",
    "schema": "the document does not match schemas/playbook.schema.json (unknown key, "
              "wrong type, bad value)",
    "step-shape": "a step has no module key, or more than one",
}


def load_playbook(path: str | Path, inventory: Any | None = None) -> Playbook:
    """The validated playbook (checked against `inventory` when given: stages, sign-off
    holders, windows); PlaybookError carrying every problem found otherwise."""
    playbook, problems = check_playbook(path, inventory)
    if problems or playbook is None:
        raise PlaybookError(problems)
    return playbook


def check_playbook(path: str | Path, inventory: Any | None = None
                   ) -> tuple[Playbook | None, list[Problem]]:
    """(playbook, problems sorted by position). The playbook is None when the file could not
    be read, failed its schema or has a malformed step; lint problems leave it built."""
    from otpatch.engine.lint import lint

    try:
        source = read_yaml(path)
    except PlaybookError as e:
        return None, e.problems
    problems = schema_problems(source, "playbook")
    if problems:
        return None, problems
    playbook, problems = build_playbook(source)
    if any(p.rule == "schema" for p in problems):  # a duration past its bound: not built
        return None, problems
    problems = sorted(problems + lint(playbook, inventory), key=lambda p: (p.line, p.col, p.rule))
    return (None if any(p.rule == "step-shape" for p in problems) else playbook), problems


def rules() -> dict[str, str]:
    """Every rule id the loader can report, with its one-line description."""
    return {rule: entry.description for rule, entry in catalogue().items()}


class RuleEntry(NamedTuple):
    description: str
    why: str = ""
    waivable: bool = False
    applies: str = "playbook"  # playbook | with an inventory | inventory | plan and run


def catalogue() -> dict[str, RuleEntry]:
    """Every rule `validate`, `plan` and `run` can report: what it finds, why, whether a
    playbook may waive it and when it applies (`otpatch validate --rules`)."""
    from otpatch.engine import inventory, stages, windows
    from otpatch.engine.lint import RULES, WAIVER_RULE

    out = {rule: RuleEntry(text, "the file must be readable YAML that the schema accepts")
           for rule, text in LOAD_RULES.items()}
    out.update({rule: RuleEntry(r.description, r.why, r.waivable) for rule, r in RULES.items()})
    out[WAIVER_RULE] = RuleEntry("a `waive:` entry names no rule, or one that cannot be waived",
                                 "production sign-off, window and rollback rules hold always")
    out.update({rule: RuleEntry(text, stages.WHY[rule], applies="with an inventory")
                for rule, text in stages.RULES.items()})
    out.update({rule: RuleEntry(text, windows.WHY[rule], applies="plan and run"
                                if rule == "window-ended" else "with an inventory")
                for rule, text in windows.RULES.items()})
    out.update({rule: RuleEntry(text, inventory.WHY[rule], applies="inventory")
                for rule, text in inventory.RULES.items()})
    return out


def build_playbook(source: YamlSource) -> tuple[Playbook, list[Problem]]:
    """The typed model of a schema-valid document, and any step-shape problems."""
    from otpatch.engine.qualify import with_known_issues

    b = _Builder(source)
    d = source.data
    params = _frozen({n: b.param(n, s) for n, s in (d.get("params") or {}).items()})
    playbook = Playbook(
        path=source.file, api_version=d["apiVersion"], metadata=_metadata(d["metadata"]),
        params=params,
        targets=_frozen({n: b.target(n, s) for n, s in (d.get("targets") or {}).items()}),
        initial=d["initial"],
        # a known issue of a firmware: an attestation before each step that sends it
        states=_frozen(with_known_issues({n: b.state(n, s) for n, s in d["states"].items()},
                                         params)),
        budgets=_frozen({n: b.budget(n, s) for n, s in (d.get("budgets") or {}).items()}),
        content_hash=source.content_hash, initial_where=source.where(("initial",), value=True),
        waivers=tuple(Waiver(w["rule"], w["reason"], source.where(("waive", i)))
                      for i, w in enumerate(d.get("waive") or ())))
    return playbook, b.problems


def _frozen(mapping: dict) -> MappingProxyType:
    return MappingProxyType(mapping)


def _metadata(m: dict) -> Metadata:
    applies = tuple(AppliesTo(vendor=a["vendor"], model=a.get("model", ""),
                              part_numbers=tuple(a.get("part_numbers", ())))
                    for a in m.get("applies_to", ()))
    return Metadata(name=m["name"], version=m["version"], description=m.get("description", ""),
                    standard=m.get("standard", ""), applies_to=applies)


class _Builder:
    """Builds model objects from schema-valid data, with their source positions."""

    def __init__(self, source: YamlSource):
        self.source = source
        self.problems: list[Problem] = []

    def param(self, name: str, spec: dict) -> ParamSpec:
        from otpatch.engine.qualify import build_qualification

        kind = spec["type"]
        if kind == "firmware":
            default: Any = FirmwareImage(path=spec["path"],
                                         algorithm=spec.get("algorithm", "sha256"),
                                         hash=spec.get("hash"))
        elif kind == "duration":
            default = self.duration(("params", name, "default"), spec.get("default"))
        else:
            default = spec.get("default")
        return ParamSpec(name=name, type=kind, default=default,
                         required=bool(spec.get("required")) or default is None,
                         description=spec.get("description", ""),
                         where=self.source.where(("params", name)),
                         qualification=build_qualification(self.source, name, spec))

    def duration(self, path: tuple, value: Any) -> float | None:
        """Seconds of a duration the schema let through; past the 30-day bound a located
        schema problem (and None, so nothing downstream does arithmetic with it)."""
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as e:
            self.problems.append(self.source.problem(path, "schema",
                                                     f"{display_path(path)}: {e}"))
            return None

    def target(self, name: str, spec: dict) -> TargetSpec:
        return TargetSpec(name=name, group=spec["group"], many=bool(spec.get("many", False)),
                          description=spec.get("description", ""),
                          where=self.source.where(("targets", name)))

    def budget(self, name: str, spec: dict) -> Budget:
        return Budget(name=name, limit=self.duration(("budgets", name, "limit"), spec["limit"]),
                      states=tuple(spec["states"]), description=spec.get("description", ""),
                      where=self.source.where(("budgets", name)),
                      downtime=bool(spec.get("downtime", False)))

    def state(self, name: str, spec: dict) -> State:
        path = ("states", name)
        edges = {k: self.source.where(path + (k,), value=True)
                 for k in ("next", "on_failure", "rollback") if k in spec}
        steps = (self.step(path + ("do", i), s) for i, s in enumerate(spec.get("do") or ()))
        return State(
            name=name, stage=Stage(spec["stage"]) if spec.get("stage") else None,
            description=spec.get("description", ""),
            requires=tuple(self.requirement(path + ("requires", i), r)
                           for i, r in enumerate(spec.get("requires") or ())),
            checkpoint=spec.get("checkpoint"), do=tuple(s for s in steps if s is not None),
            expect_duration=self.duration(path + ("expect_duration",), spec.get("expect_duration")),
            timeout=self.duration(path + ("timeout",), spec.get("timeout")),
            max_visits=spec.get("max_visits"),
            next=spec.get("next"),
            on_failure=spec.get("on_failure"), rollback=spec.get("rollback"),
            where=self.source.where(path), edge_where=MappingProxyType(edges))

    def requirement(self, path: tuple, spec: dict) -> Requirement:
        (kind, value), = spec.items()
        where = self.source.where(path)
        if kind == "signoff":
            return self.signoff(path + ("signoff",), value, where)
        if kind == "hash_verified":
            return Requirement(kind=kind, param=value, where=where)
        return Requirement(kind=kind, window=value, where=where)

    def signoff(self, path: tuple, value: dict, where: Any) -> Requirement:
        over = value.get("over") or ()
        emergency = value.get("emergency")
        if emergency is not None:
            within = self.duration(path + ("emergency", "within"), emergency["within"])
            emergency = Emergency(within or 0.0, float(emergency.get("score_above", 9.0)))
        age = self.duration(path + ("evidence_age",), value.get("evidence_age"))
        return Requirement(kind="signoff", roles=tuple(value["roles"]),
                           over=(over,) if isinstance(over, str) else tuple(over),
                           evidence_age=age, emergency=emergency, where=where)

    def step(self, path: tuple, spec: dict) -> Step | None:
        modules = [k for k in spec if k not in ("name", "register")]
        if len(modules) != 1:
            found = f"found {len(modules)}: {', '.join(modules)}" if modules else "found none"
            self.problems.append(self.source.problem(
                path, "step-shape", "a step calls exactly one module (a key like core.wait "
                f"whose value is its arguments); {found}"))
            return None
        module = modules[0]
        return Step(module=module, args=freeze(spec[module] or {}), name=spec.get("name", ""),
                    register=spec.get("register"), where=self.source.where(path))
