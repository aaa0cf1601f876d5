"""Walking a playbook's `next` edges from one state (plan, the window arithmetic and the
worst case of a failing rollback share it); no I/O."""
from __future__ import annotations

from dataclasses import dataclass

from otpatch.engine.model import TERMINALS, Playbook


@dataclass(frozen=True)
class Walk:
    """The states met following `next` edges from one state, and where that leads."""

    states: tuple[str, ...]
    end: str | None  # the terminal reached; None when the walk stopped short
    stopped: str  # why it stopped short ("" when it reached a terminal)
    expected: float
    unestimated: tuple[str, ...]  # states without expect_duration (counted 0)


def walk_next(playbook: Playbook, start: str) -> Walk:
    """Follow `next` edges from `start` to a terminal; stop, saying why, at a state met
    twice (a loop), a state without a next edge, or a name that is not a state."""
    names: list[str] = []
    name: str | None = start
    stopped = ""
    while name not in TERMINALS:
        state = playbook.states.get(name) if name else None
        if name in names:
            stopped = f"loop: {names[-1]} leads back to {name}"
        elif state is None:
            stopped = f"unknown state {name!r} after {names[-1] if names else 'the start'}"
        elif not state.next:
            names.append(name)
            stopped = f"dead end: {name} has no next edge"
        if stopped:
            break
        names.append(name)
        name = state.next
    unestimated = tuple(n for n in names if playbook.states[n].expect_duration is None)
    expected = sum(playbook.states[n].expect_duration or 0.0 for n in names)
    return Walk(tuple(names), None if stopped else name, stopped, expected, unestimated)
