"""Firmware qualification: what the vendor's release note says must be in place before a
firmware goes to a device, and the release's known issues, as the typed model of a firmware
param's `prerequisites:` and `known_issues:`.

Prerequisites are of three kinds: the hardware product version of each device the firmware
goes to; the firmware of its companion modules (its EIO drops, the X80 adapters whose
`eio_scanner` names it, or the hosts of an inventory group); the version of an engineering
tool on the inventory's engineering stations (`otpatch_device: software`, by model). Each
cites its `source`. Built at load (build_qualification), checked by one lint rule
(`firmware-qualification`: version texts that do not read, groups the inventory lacks), and
judged against the baseline by `plan` and `run` (engine/qualify_check.py).

A known issue becomes an attestation the engine itself puts in front of every step that
sends that firmware to a device (with_known_issues): the playbook's author cannot forget it
or place it after the transfer, and its statement is written from the issue (id, source,
summary), so the record names exactly what the person accepted."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from otpatch.modules.contract.errors import Problem, Where
from otpatch.modules.contract.values import freeze

RULE = "firmware-qualification"
DESCRIPTION = ("a firmware prerequisite or known issue that cannot be checked: a version or "
               "product version that does not read, a group the inventory does not have, a "
               "known issue id given twice")
WHY = ("a prerequisite that cannot be compared would either refuse every run or, worse, be "
       "skipped; a typo must fail where it is written")


@dataclass(frozen=True)
class HardwareVersion:
    """The lowest hardware product version (PV) of each device the firmware goes to."""

    min_text: str
    source: str
    where: Where

    def describe(self) -> str:
        return f"hardware product version {self.min_text} or later"


@dataclass(frozen=True)
class Companion:
    """The lowest firmware of the modules working with each device the firmware goes to:
    its EIO drops (`eio_drops`), or every host of `group`; only `part_numbers` when given."""

    min_text: str
    source: str
    where: Where  # of min_firmware
    eio_drops: bool = False
    group: str | None = None
    part_numbers: tuple[str, ...] = ()
    group_where: Where | None = None

    def describe(self) -> str:
        who = ("its X80 EIO drops (eio_scanner)" if self.eio_drops
               else f"the hosts of group {self.group}")
        parts = f" of part number {', '.join(self.part_numbers)}" if self.part_numbers else ""
        return f"{who}{parts} at firmware {self.min_text} or later"


@dataclass(frozen=True)
class EngineeringTool:
    """The lowest version of an engineering tool on every station that has it."""

    name: str
    min_text: str
    source: str
    where: Where  # of min_version
    group: str | None = None
    group_where: Where | None = None

    def describe(self) -> str:
        where = f" in group {self.group}" if self.group else ""
        return f"{self.name} {self.min_text} or later on the engineering stations{where}"


@dataclass(frozen=True)
class KnownIssue:
    """A known issue of the release, and the role who confirms it was weighed."""

    id: str
    summary: str
    source: str
    role: str
    where: Where

    def step_name(self, param: str) -> str:
        return f"known issue {self.id} of {param}"

    def statement(self, param: str) -> str:
        return (f"Known issue {self.id} of the firmware in param {param} ({self.source}): "
                f"{self.summary.rstrip('.')}. It was weighed for this change and its "
                "workaround is in place before the firmware is sent")


@dataclass(frozen=True)
class Qualification:
    """A firmware param's prerequisites and known issues."""

    hardware: HardwareVersion | None = None
    companions: tuple[Companion, ...] = ()
    tools: tuple[EngineeringTool, ...] = ()
    known_issues: tuple[KnownIssue, ...] = ()

    @property
    def prerequisites(self) -> tuple[Any, ...]:
        return ((self.hardware,) if self.hardware else ()) + self.companions + self.tools


def build_qualification(source: Any, param: str, spec: Mapping[str, Any]
                        ) -> Qualification | None:
    """The typed qualification of a schema-valid firmware param (None: it declares none)."""
    pre = spec.get("prerequisites") or {}
    issues = spec.get("known_issues") or ()
    if not pre and not issues:
        return None
    base = ("params", param)

    def where(*path: Any) -> Where:
        return source.where(base + path, value=True)

    hw = pre.get("hardware_product_version")
    hardware = HardwareVersion(str(hw["min"]), hw["source"],
                               where("prerequisites", "hardware_product_version", "min")
                               ) if hw else None
    companions = tuple(Companion(
        str(c["min_firmware"]), c["source"],
        where("prerequisites", "companions", i, "min_firmware"),
        eio_drops=bool(c.get("eio_drops")), group=c.get("group"),
        part_numbers=tuple(c.get("part_numbers") or ()),
        group_where=where("prerequisites", "companions", i, "group") if "group" in c else None)
        for i, c in enumerate(pre.get("companions") or ()))
    tools = tuple(EngineeringTool(
        t["name"], str(t["min_version"]), t["source"],
        where("prerequisites", "engineering_tools", i, "min_version"), group=t.get("group"),
        group_where=where("prerequisites", "engineering_tools", i, "group")
        if "group" in t else None)
        for i, t in enumerate(pre.get("engineering_tools") or ()))
    known = tuple(KnownIssue(k["id"], k["summary"], k["source"], k["attest_role"],
                             source.where(base + ("known_issues", i)))
                  for i, k in enumerate(issues))
    return Qualification(hardware, companions, tools, known)


def qualified_params(params: Mapping[str, Any]) -> dict[str, Qualification]:
    """param name -> its qualification, for the firmware params that declare one."""
    return {name: spec.qualification for name, spec in params.items()
            if getattr(spec, "qualification", None) is not None}


# -- the firmware's uses ---------------------------------------------------------------------

def firmware_of(step: Any) -> str | None:
    """The param whose firmware the step sends to a device: its image argument (schema
    marker x-otpatch-image) is `{{ params.NAME }}`; None for any other step."""
    from otpatch.engine import templating
    from otpatch.modules import registry

    if step.module not in registry.modules():
        return None
    for arg, _ in registry.marked_args(step.module, "x-otpatch-image"):
        name = templating.single_param(step.args.get(arg))
        if name:
            return name
    return None


def with_known_issues(states: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The states, each step that sends a firmware with known issues preceded (once per
    state) by one core.attest step per issue: the run asks the issue's role to confirm it,
    in execute mode waiting for a person or a signed `otpatch attest`, before anything is
    sent. A 'no' fails the state before its transfer step has run."""
    from dataclasses import replace

    from otpatch.engine.model import Step

    issues = {name: q.known_issues for name, q in qualified_params(params).items()
              if q.known_issues}
    if not issues:
        return dict(states)
    out = {}
    for name, state in states.items():
        steps, asked = [], set()
        for step in state.do:
            param = firmware_of(step)
            if param in issues and param not in asked:
                asked.add(param)
                steps += [Step(module="core.attest",
                               args=freeze({"statement": k.statement(param), "role": k.role}),
                               name=k.step_name(param), where=k.where)
                          for k in issues[param]]
            steps.append(step)
        out[name] = replace(state, do=tuple(steps)) if asked else state
    return out


# -- the lint rule ---------------------------------------------------------------------------

def qualification_problems(pb: Any, site: Any) -> list[Problem]:
    """Every prerequisite's version text reads, every group exists in the inventory (when
    one is given), no known issue id is given twice for one param."""
    out: list[Problem] = []
    for param, q in qualified_params(pb.params).items():
        out += [_at(where, f"params.{param}: {message}") for where, message in _bad(q)]
        if site.inventory is not None:
            out += [_at(item.group_where or item.where, f"params.{param}: group {item.group!r} is not a group "
                    f"of {site.inventory.path} ({_groups(site.inventory)})")
                    for item in q.companions + q.tools
                    if item.group and item.group not in site.inventory.groups]
    return out


def _bad(q: Qualification) -> Iterator[tuple[Where, str]]:
    from otpatch.modules.versions import parse_product_version
    from otpatch.modules.versions import try_version

    if q.hardware:
        try:
            parse_product_version(q.hardware.min_text)
        except ValueError as e:
            yield q.hardware.where, f"hardware_product_version: min: {e}"
    for c in q.companions:
        if try_version(c.min_text) is None:
            yield c.where, f"companion min_firmware {c.min_text!r} is not a version (e.g. v02.40)"
    for t in q.tools:
        if try_version(t.min_text) is None:
            yield t.where, f"{t.name}: min_version {t.min_text!r} is not a version (e.g. 16.0)"
    seen: set[str] = set()
    for k in q.known_issues:
        if k.id in seen:
            yield k.where, f"known issue {k.id!r} is given twice"
        seen.add(k.id)


def _groups(inventory: Any) -> str:
    names = sorted(inventory.groups)
    return "groups: " + (", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
                         if names else "none")


def _at(where: Where, message: str) -> Problem:
    return Problem(where.file, where.line, where.col, RULE, message)
