"""The worst case of a rollback path: each of its states may fail too, and a failing
rollback state follows its `on_failure` edge (the M580 restore that the CPU refuses goes to
the special-firmware downgrade, and that to the spare CPU: Schneider FAQ000272937). `plan`
shows it as a finding for the approvers when it overruns a budget or a window; no I/O."""
from __future__ import annotations

from dataclasses import dataclass

from otpatch.engine.model import TERMINALS, Playbook
from otpatch.engine.planwalk import walk_next


@dataclass(frozen=True)
class Contingency:
    """The longest way a rollback path can go, in seconds of expected durations.

    `failing`: the rollback states that fail, in order (empty: the path runs its course);
    `ends_in`: the last state entered; each failing state's on_failure edge leads to the
    next one's path."""

    start: str
    seconds: float
    failing: tuple[str, ...]
    ends_in: str

    def describe(self) -> str:
        """`restore fails -> downgrade fails -> spare`, or the start alone."""
        return " -> ".join([f"{name} fails" for name in self.failing] + [self.ends_in])


def contingency(playbook: Playbook, start: str) -> Contingency:
    """The worst of: the rollback path from `start` running its course, or any of its states
    failing at its end and its on_failure path (worst case again) following. A state met
    twice ends the search along that branch (lint reports loops)."""
    return _worst(playbook, start, frozenset())


def _worst(playbook: Playbook, start: str, seen: frozenset[str]) -> Contingency:
    walk = walk_next(playbook, start)
    names = [n for n in walk.states if n in playbook.states]
    best = Contingency(start, walk.expected, (), names[-1] if names else start)
    spent = 0.0
    for name in names:
        spent += _expect(playbook, name)
        after = playbook.states[name].on_failure
        if not after or after in TERMINALS or after in seen or after not in playbook.states:
            continue
        deeper = _worst(playbook, after, seen | set(names))
        total = spent + deeper.seconds
        if (total, len(deeper.failing) + 1) > (best.seconds, len(best.failing)):
            best = Contingency(start, total, (name, *deeper.failing), deeper.ends_in)
    return best


def _expect(playbook: Playbook, name: str) -> float:
    return playbook.states[name].expect_duration or 0.0
