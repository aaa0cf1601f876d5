"""Static paths through a playbook: reachability, inherited rollback edges, the rollback region.

Every function is a breadth-first search or a small dataflow over the state graph, linear
in states and edges (times the few distinct rollback targets), so lint stays fast on
playbooks of hundreds of states. Edges to names that are not states are ignored here;
lint reports them as unknown-state."""
from __future__ import annotations

from collections import deque
from typing import Callable, Iterable

from otpatch.engine.model import NO_ROLLBACK, TERMINALS, Playbook, State

ALL_EDGES = frozenset({"next", "on_failure", "rollback"})
NONE = None  # in an active-rollback set: some path arrives here with no rollback edge


def reachable(playbook: Playbook, starts: Iterable[str] | None = None,
              kinds: frozenset[str] = ALL_EDGES,
              through: Callable[[State], bool] = lambda state: True) -> set[str]:
    """States reachable from `starts` (default: initial) over edges of `kinds`; the edges of
    a state are followed only when `through(state)` holds (the state itself still counts)."""
    states = playbook.states
    todo = deque(s for s in ([playbook.initial] if starts is None else starts) if s in states)
    seen = set(todo)
    while todo:
        state = states[todo.popleft()]
        if not through(state):
            continue
        for kind, dest in state.edges():
            if kind in kinds and dest in states and dest not in seen:
                seen.add(dest)
                todo.append(dest)
    return seen


def active_rollbacks(playbook: Playbook) -> dict[str, frozenset[str | None]]:
    """For each reachable state, every rollback target that can be active while it runs.

    A state's own `rollback` wins (`none` clears it); otherwise it inherits what its
    predecessors along `next` edges have. Arriving from the start or over an on_failure or
    rollback edge brings no rollback (NONE). Covered means: non-empty and NONE not in it."""
    states, reach = playbook.states, reachable(playbook)
    incoming: dict[str, set] = {name: set() for name in reach}
    if playbook.initial in incoming:
        incoming[playbook.initial].add(NONE)
    for name in reach:
        for kind, dest in states[name].edges():
            if kind != "next" and dest in incoming:
                incoming[dest].add(NONE)
    active: dict[str, frozenset] = {}
    todo = deque(sorted(reach))
    while todo:
        name = todo.popleft()
        state = states[name]
        now = _own_rollback(state, incoming[name])
        if active.get(name) == now:
            continue
        active[name] = now
        if state.next in incoming and not now <= incoming[state.next]:
            incoming[state.next] |= now
            todo.append(state.next)
    return active


def _own_rollback(state: State, inherited: set) -> frozenset:
    if state.rollback == NO_ROLLBACK:
        return frozenset({NONE})
    if state.rollback:
        return frozenset({state.rollback})
    return frozenset(inherited)


def covered(active: frozenset) -> bool:
    """Every path into the state carries a rollback edge."""
    return bool(active) and NONE not in active


def rollback_region(playbook: Playbook) -> set[str]:
    """States reachable from any rollback target: they are the rollback, not covered by it."""
    reach = reachable(playbook)
    targets = {playbook.states[s].rollback for s in reach} - {None, NO_ROLLBACK}
    return reachable(playbook, starts=targets)


def can_finish(playbook: Playbook, active: dict[str, frozenset]) -> set[str]:
    """States from which some terminal outcome can be reached over any edge, inherited
    rollback edges included."""
    before: dict[str, set[str]] = {}
    finishing: deque[str] = deque()
    for name, state in playbook.states.items():
        dests = {dest for _, dest in state.edges()} | (set(active.get(name, ())) - {NONE})
        for dest in dests:
            before.setdefault(dest, set()).add(name)
        # an edge to a name that is no state is reported as unknown-state, not twice; a
        # state with `max_visits` ends the run through its failure edge once it is spent
        if dests & TERMINALS or any(d not in playbook.states for d in dests) \
                or state.max_visits:
            finishing.append(name)
    seen = set(finishing)
    while finishing:
        for pred in before.get(finishing.popleft(), ()):
            if pred not in seen:
                seen.add(pred)
                finishing.append(pred)
    return seen
