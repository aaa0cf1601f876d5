"""The qualification check: each firmware prerequisite (engine/qualify.py) against the
baseline (engine/baseline.py), for every host the firmware would go to: the targets of the
steps that send it. What `plan` shows, and the one check `plan` and `run` (dry run and
execute) refuse on, before anything is journaled or sent (exit 3, refused by a gate).

A value the baseline does not know is a failure, never assumed met: "unknown: not typed,
never read". A CPU that no EIO drop names in `eio_scanner` has no drops to check (a local
rack only), and the plan says so. Versions compare with the one version parser
(modules/versions.py); a Modicon module's (m580, x80, noc) two-part firmware version with
its two-digit minor (V2.4 = v02.40), as modules/m580/versions.py reads them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from otpatch.engine.qualify import (Companion, EngineeringTool, HardwareVersion,
                                    Qualification, firmware_of, qualified_params)
from otpatch.modules.contract.errors import EXIT_GATE_REFUSED, InputError, OtpatchError

UNKNOWN = "unknown: not typed, never read"


@dataclass(frozen=True)
class Check:
    """One prerequisite judged for one host the firmware goes to."""

    param: str
    host: str  # where the firmware goes
    prerequisite: str  # described
    source: str
    asset: str  # whose value was judged: the host, a companion, a station ("" none)
    value: str | None  # as the baseline has it (None: unknown)
    provenance: str  # where the baseline's value came from, or why there is none
    met: bool

    def line(self) -> str:
        """One line naming the asset, the prerequisite, the baseline's value and its origin."""
        if not self.asset:
            found = self.provenance
        elif self.value is None:
            found = f"{self.asset}: {self.provenance}"
        else:
            found = f"{self.asset} has {self.value} ({self.provenance})"
        if self.met:
            return f"{self.host}: params.{self.param} needs {self.prerequisite}: {found}: met"
        return (f"{self.host}: params.{self.param} needs {self.prerequisite} [{self.source}]: "
                f"{found}")


@dataclass(frozen=True)
class Attestation:
    """A known issue the run asks a person to confirm, and the states it asks in."""

    param: str
    id: str
    summary: str
    source: str
    role: str
    states: tuple[str, ...]

    def line(self) -> str:
        where = ", ".join(self.states) or "no state (no step sends this firmware)"
        return (f"attestation required: known issue {self.id} of {self.param} "
                f"[{self.source}]: {self.summary}; {self.role} confirms it before the "
                f"firmware is sent, in {where}")


@dataclass(frozen=True)
class Qualified:
    """Every check and every required attestation of a playbook's firmware params."""

    checks: tuple[Check, ...] = ()
    attestations: tuple[Attestation, ...] = ()

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.met)


class NotQualified(OtpatchError):
    """A firmware prerequisite the baseline does not meet (or does not know): refused by
    a gate, before anything is journaled or sent."""

    exit_code = EXIT_GATE_REFUSED

    def __init__(self, doing: str, failures: tuple[Check, ...]):
        self.doing, self.failures = doing, failures
        super().__init__(f"{doing} refused: {len(failures)} firmware prerequisite(s) not met "
                         "by the baseline")

    def lines(self) -> list[str]:
        return [f"otpatch: {self} (refused by a gate):"] + [f"  {c.line()}"
                                                             for c in self.failures]


def refuse_unqualified(playbook: Any, inventory: Any, targets: Mapping[str, tuple[Any, ...]],
                       home: Path | None, doing: str,
                       skip: frozenset[str] = frozenset()) -> Qualified:
    """The qualification of the firmware the run would send (states in `skip`, those a
    stage run passes over, left out); NotQualified when a prerequisite is not met."""
    if not qualified_params(playbook.params):
        return Qualified()
    if home is None:
        raise InputError(f"{doing}: the playbook's firmware has prerequisites, judged against "
                         "the baseline: give the journal's home (OTPATCH_HOME)")
    from otpatch.engine.baseline import baseline

    found = qualify(playbook, inventory, targets, baseline(home, inventory), skip)
    if found.failures:
        raise NotQualified(doing, found.failures)
    return found


def qualify(playbook: Any, inventory: Any, targets: Mapping[str, tuple[Any, ...]],
            values: Any, skip: frozenset[str] = frozenset()) -> Qualified:
    """Every prerequisite of every qualified firmware param, judged for each host that a
    step outside `skip` sends it to, against the baseline `values`."""
    checks, attestations = [], []
    for param, q in qualified_params(playbook.params).items():
        uses = _uses(playbook, param, targets, skip)
        for host, problem in uses:
            if problem:
                checks.append(Check(param, host, "a host it goes to", "the playbook", "",
                                    None, problem, False))
                continue
            checks += _judge(param, q, host, inventory, values)
        states = tuple(dict.fromkeys(n for n, s in playbook.states.items() if n not in skip
                                     and any(firmware_of(st) == param for st in s.do)))
        attestations += [Attestation(param, k.id, k.summary, k.source, k.role, states)
                         for k in q.known_issues]
    return Qualified(tuple(checks), tuple(attestations))


def _uses(playbook: Any, param: str, targets: Mapping[str, tuple[Any, ...]],
          skip: frozenset[str]) -> list[tuple[str, str]]:
    """(host, "") for each host a step sends the param's firmware to, in order; (step,
    why) for a step whose target cannot be told before the run."""
    from otpatch.engine import templating
    from otpatch.modules import registry

    out: dict[str, str] = {}
    for name, state in playbook.states.items():
        for step in (s for s in state.do if name not in skip and firmware_of(s) == param):
            for arg in registry.target_args(step.module):
                target = step.args.get(arg)
                if isinstance(target, str) and not templating.is_template(target):
                    out.update({h.name: "" for h in targets.get(target, ())})
                elif target is not None:
                    out[f"{name}: step '{step.label}'"] = (
                        f"its {arg} is a template: where the firmware goes is not known "
                        "before the run")
    return list(out.items())


def _judge(param: str, q: Qualification, host: str, inventory: Any, values: Any
           ) -> list[Check]:
    out = []
    for item in q.prerequisites:
        if isinstance(item, HardwareVersion):
            out.append(_hardware(param, item, host, values))
        elif isinstance(item, Companion):
            out += _companions(param, item, host, inventory, values)
        elif isinstance(item, EngineeringTool):
            out += _tools(param, item, host, inventory, values)
    return out


def _hardware(param: str, item: HardwareVersion, host: str, values: Any) -> Check:
    from otpatch.modules.versions import parse_product_version, pv_text

    have = values.value(host, "product_version")
    shown = dict(param=param, host=host, prerequisite=item.describe(), source=item.source,
                 asset=host)
    if have is None:
        return Check(**shown, value=None, provenance=UNKNOWN, met=False)
    try:
        met = parse_product_version(have.value) >= parse_product_version(item.min_text)
        value = pv_text(parse_product_version(have.value))
    except ValueError:
        met, value = False, f"{have.value!r}, not a product version"
    return Check(**shown, value=value, provenance=have.provenance(), met=met)


def _companions(param: str, item: Companion, host: str, inventory: Any, values: Any
                ) -> list[Check]:
    if item.eio_drops:
        found = [h for h in inventory.hosts.values() if h.device == "x80"
                 and str((h.vars or {}).get("eio_scanner") or "") == host]
    else:
        found = list(inventory.group_hosts(item.group or ""))
    if item.part_numbers:
        found = [h for h in found if _value(values, h, "part_number") in item.part_numbers]
    if not found:
        who = (f"no EIO drop in the inventory names {host} in eio_scanner" if item.eio_drops
               else f"group {item.group} has no such host")
        return [Check(param, host, item.describe(), item.source, "", None,
                      f"{who}: nothing to check", True)]
    return [_version(param, host, item.describe(), item.source, h, item.min_text, values)
            for h in found]


def _tools(param: str, item: EngineeringTool, host: str, inventory: Any, values: Any
           ) -> list[Check]:
    pool = inventory.group_hosts(item.group) if item.group else inventory.hosts.values()
    stations = [h for h in pool if h.device == "software"
                and _words(_value(values, h, "model")) == _words(item.name)]
    if not stations:
        where = f"group {item.group} of " if item.group else ""
        return [Check(param, host, item.describe(), item.source, "", None,
                      f"no engineering station with {item.name} in {where}"
                      f"{inventory.path} (otpatch_device: software, model: {item.name}): "
                      "unknown, never assumed", False)]
    return [_version(param, host, item.describe(), item.source, h, item.min_text, values)
            for h in stations]


def _version(param: str, host: str, prerequisite: str, source: str, asset: Any,
             minimum: str, values: Any) -> Check:
    """The asset's firmware (a station's: its tool's version) against `minimum`."""
    from otpatch.modules.contract.devices import M580, NOC, X80
    from otpatch.modules.versions import try_version

    have = values.value(asset.name, "firmware")
    shown = dict(param=param, host=host, prerequisite=prerequisite, source=source,
                 asset=asset.name)
    if have is None:
        return Check(**shown, value=None, provenance=UNKNOWN, met=False)
    schneider = asset.device in (M580, X80, NOC)  # Modicon firmware: v02.4 is v02.40
    read, floor = try_version(have.value, schneider), try_version(minimum, schneider)
    if read is None or floor is None:
        return Check(**shown, value=f"{have.value!r}, not a version",
                     provenance=have.provenance(), met=False)
    return Check(**shown, value=have.value, provenance=have.provenance(), met=read >= floor)


def _value(values: Any, host: Any, name: str) -> str:
    """A baseline value of the host, else what the inventory has for it ("" none)."""
    found = values.value(host.name, name)
    return found.value if found is not None else str(getattr(host, name, "") or "")


def _words(text: str) -> str:
    return " ".join(str(text).split()).casefold()
