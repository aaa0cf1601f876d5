"""Where each state really runs: the stage of the hosts it touches, from the inventory.

A state's `stage:` is a label its author writes; the stage of a device is a fact of the
site, the host or group variable `otpatch_stage` (a host without one is production). With
an inventory, a state's stage is its targets' stage, and a state labelled otherwise is
refused. Without one (validate with no -i), a state with no label that touches a device is
taken as production, so every production rule applies to it until the inventory says else."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from otpatch.modules.contract.errors import Problem
from otpatch.engine.model import Playbook, Stage, State, Step
from otpatch.modules.contract.errors import Where
from otpatch.engine import templating

RULES = {
    "stage-mismatch": "a state labelled one stage targets hosts the inventory puts in another",
    "stage-mixed": "one state targets hosts of different stages",
}
WHY = {
    "stage-mismatch": "a stage label is the author's word; the inventory's otpatch_stage "
                      "decides, so a production PLC is never reached from a lab state",
    "stage-mixed": "lab, staging and production are separate steps of the rollout, each "
                   "with its own gates; one state cannot be two of them",
}


@dataclass(frozen=True)
class Stages:
    """The effective stage of each state (None: it touches no device and names none)."""

    of: Mapping[str, Stage | None]
    problems: tuple[Problem, ...]
    from_inventory: bool

    def stage(self, state: State) -> Stage | None:
        return self.of.get(state.name, state.stage)

    def is_production(self, state: State) -> bool:
        return self.stage(state) is Stage.PRODUCTION


def step_targets(step: Step, reaching: bool = False) -> Iterator[tuple[str, str]]:
    """(argument, target name) for each plain (untemplated) target argument of a step;
    with `reaching`, only of a module that talks to the device (not risk.assess)."""
    from otpatch.modules import registry

    cls = registry.modules().get(step.module)
    if cls is None or (reaching and not cls.reaches_device):
        return
    for arg in registry.target_args(step.module):
        value = step.args.get(arg)
        if isinstance(value, str) and not templating.is_template(value):
            yield arg, value


def effective_stages(playbook: Playbook, inventory: Any | None) -> Stages:
    """Every state's stage, and (with an inventory) each state that contradicts its hosts."""
    of, problems = {}, []
    for state in playbook.states.values():
        stage, trouble = _state_stage(playbook, state, inventory)
        of[state.name] = stage
        problems += trouble
    return Stages(of, tuple(problems), inventory is not None)


def _state_stage(pb: Playbook, state: State, inventory: Any | None
                 ) -> tuple[Stage | None, list[Problem]]:
    touched = [(step, target) for step in state.do
               for _, target in step_targets(step, reaching=True) if target in pb.targets]
    if not touched:
        return state.stage, []
    if inventory is None:
        return state.stage or Stage.PRODUCTION, []
    hosts = {h.name: h for _, t in touched for h in inventory.group_hosts(pb.targets[t].group)}
    stages = {h.stage for h in hosts.values()}
    if len(stages) > 1:
        listed = ", ".join(f"{n} ({h.stage.value})" for n, h in sorted(hosts.items()))
        return Stage.PRODUCTION, [_at(state.where, "stage-mixed", f"state {state.name!r} "
                                      f"targets hosts of several stages: {listed}")]
    if not stages:  # an unresolved target is reported as target-unresolved
        return state.stage or Stage.PRODUCTION, []
    (real,) = stages
    if state.stage is None or state.stage is real:
        return real, []
    return real, [_mismatch(pb, state, real, touched, hosts, inventory)]


def _mismatch(pb: Playbook, state: State, real: Stage, touched: list, hosts: dict,
              inventory: Any) -> Problem:
    step, target = next((s, t) for s, t in touched if any(
        h.stage is real for h in inventory.group_hosts(pb.targets[t].group)))
    names = ", ".join(h.name for h in inventory.group_hosts(pb.targets[target].group))
    where = inventory.path or "the inventory"
    return _at(state.where, "stage-mismatch", (
        f"state {state.name!r} is labelled stage {state.stage.value} but step "
        f"'{step.label}' targets {target} -> {names}, {real.value} hosts in {where} "
        f"(otpatch_stage {real.value}{', or unset' if real is Stage.PRODUCTION else ''})"))


def _at(where: Where, rule: str, message: str) -> Problem:
    return Problem(where.file, where.line, where.col, rule, message)
