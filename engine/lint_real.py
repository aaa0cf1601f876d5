"""What each step does on the hosts the inventory names: the `simulator-interface` rule, and
the steps a person performs (for `otpatch plan`).

A module declares what it does on a host that is not an otpatch simulator
(`on_real_device()`: none, sourced, guided, site or simulator; modules/contract/module.py).
With an inventory, a step is resolved to its hosts through its target arguments; a
simulator-only module on any host not marked `simulator: true` is an error, located at the
step, because on that host the step can only be refused. Steps are judged by declaration,
never by asking a device: `validate` sends nothing."""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, Callable, Iterator

from otpatch.engine import templating
from otpatch.engine.lintbase import Site, at, step_id, steps
from otpatch.engine.model import Playbook, Step
from otpatch.modules import registry
from otpatch.modules.contract.errors import Problem

RULE = "simulator-interface"
DESCRIPTION = ("with an inventory: a step calls a module that only the otpatch simulators "
               "answer (`otpatch modules` REAL DEVICE: simulator) on a host the inventory "
               "does not mark `simulator: true`")
WHY = ("on a real device such a step can only be refused, mid-run; a procedure for a plant "
       "must reach its devices through publicly documented interfaces or a person's "
       "attested action, and the rehearsal extras stay on the simulators")
PLANT_WORDS = "On a real plant:"
DOC_LIMIT = 300  # characters of a module's doc quoted when it says nothing of a real plant
HostsOf = Callable[[str], tuple[Any, ...]]  # target name -> its hosts


@dataclass(frozen=True)
class PersonStep:
    """A guided step on a host that is no simulator: a person performs it."""

    state: str
    module: str
    host: str
    role: str | None

    def describe(self) -> str:
        return f"guided: {self.module} on {self.host}" + (f" ({self.role})" if self.role
                                                          else "")


def simulator_interface(pb: Playbook, site: Site) -> list[Problem]:
    """With an inventory: every step of a simulator-only module whose target has a host not
    marked `simulator: true` (or cannot be resolved while the inventory has such hosts)."""
    if site.inventory is None:
        return []
    hosts_of = _hosts_of(pb, site.inventory)
    out = []
    for state, step in steps(pb):
        cls = registry.modules().get(step.module)
        if cls is None or cls.on_real_device() != "simulator":
            continue
        trouble = _real_hosts(step, hosts_of, site.inventory)
        if trouble:
            out.append(at(step.where, RULE, f"{step_id(state, step)}: {step.module} is the "
                          f"otpatch simulator's own interface, but {trouble}: there it can "
                          f"only be refused. {real_plant(cls)}"))
    return out


def person_steps(pb: Playbook, hosts_of: HostsOf) -> dict[str, tuple[PersonStep, ...]]:
    """state -> the guided steps on its hosts that are not simulators, in step order."""
    out: dict[str, tuple[PersonStep, ...]] = {}
    for state in pb.states.values():
        found = tuple(PersonStep(state.name, step.module, host.name, _role(step))
                      for step in state.do if _guided(step.module)
                      for host in _step_hosts(step, hosts_of) if not host.simulator)
        if found:
            out[state.name] = found
    return out


def real_plant(cls: Any) -> str:
    """What a real plant does instead, in the module's own words: its doc from "On a real
    plant:" on, else (clipped) the whole doc."""
    doc = " ".join(cls.doc.split())
    start = doc.find(PLANT_WORDS)
    if start >= 0:
        return doc[start:]
    what = doc if len(doc) <= DOC_LIMIT else doc[:DOC_LIMIT - 3] + "..."
    return f"{cls.name}: {what}"


def _real_hosts(step: Step, hosts_of: HostsOf, inventory: Any) -> str:
    """Words naming the step's hosts that are not simulators; "" when there are none."""
    named = []
    for arg, value in _target_values(step):
        if templating.is_template(value):
            real = sorted(n for n, h in inventory.hosts.items() if not h.simulator)
            if real:
                named.append(f"{arg} {value!r} is a template, unresolved at validate time, "
                             f"and {inventory.path} has hosts not marked `simulator: true` "
                             f"({', '.join(real[:6])}{', ...' if len(real) > 6 else ''})")
            continue
        real = [h.name for h in hosts_of(value) if not h.simulator]
        if real:
            named.append(f"{arg} {value} -> {', '.join(real)} "
                         f"{'is' if len(real) == 1 else 'are'} not marked `simulator: true` "
                         f"in {inventory.path}")
    return "; ".join(named)


def _hosts_of(pb: Playbook, inventory: Any) -> HostsOf:
    def hosts(target: str) -> tuple[Any, ...]:
        spec = pb.targets.get(target)
        return inventory.group_hosts(spec.group) if spec is not None else ()
    return hosts


def _target_values(step: Step) -> Iterator[tuple[str, str]]:
    for arg in registry.target_args(step.module):
        value = step.args.get(arg)
        if isinstance(value, str):
            yield arg, value


def _step_hosts(step: Step, hosts_of: HostsOf) -> Iterator[Any]:
    for _, value in _target_values(step):
        if not templating.is_template(value):
            yield from hosts_of(value)


def _guided(module: str) -> bool:
    cls = registry.modules().get(module)
    return cls is not None and cls.on_real_device() == "guided"


def _role(step: Step) -> str | None:
    """Who performs a guided step: its `role` argument, else the schema's default."""
    role = step.args.get("role")
    if isinstance(role, str):
        return role
    prop = registry.get(step.module).args_schema.get("properties", {}).get("role", {})
    default = prop.get("default") if isinstance(prop, Mapping) else None
    return default if isinstance(default, str) else None
