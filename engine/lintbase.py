"""What every lint rule shares: the site it is checked against, and located problems."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from otpatch.modules.contract.errors import Problem
from otpatch.engine.model import Playbook, State, Step
from otpatch.modules.contract.errors import Where
from otpatch.engine.stages import Stages, effective_stages


@dataclass(frozen=True)
class Site:
    """The inventory a playbook is checked against (None: validate without -i), and the
    effective stage of each state that follows from it."""

    inventory: Any | None
    stages: Stages

    @classmethod
    def of(cls, playbook: Playbook, inventory: Any | None = None) -> "Site":
        return cls(inventory, effective_stages(playbook, inventory))


def at(where: Where, rule: str, message: str) -> Problem:
    return Problem(where.file, where.line, where.col, rule, message)


def steps(pb: Playbook) -> Iterator[tuple[State, Step]]:
    for state in pb.states.values():
        for step in state.do:
            yield state, step


def step_id(state: State, step: Step) -> str:
    return f"{state.name}: step '{step.label}'"


def short(text: str) -> str:
    return text if len(text) <= 160 else text[:157] + "..."
