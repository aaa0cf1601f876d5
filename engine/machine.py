"""Compile a playbook into its state machine: the edge table, and a `transitions` Machine.

Requirements of a destination state are the transition's condition; the journal entry of a
transition is written in its `before` callback, so a state change is recorded before it is
committed and never in an `after` callback."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from otpatch.engine.model import NO_ROLLBACK, TERMINALS, Outcome, Playbook
from otpatch.engine.record import START


@dataclass(frozen=True)
class Edge:
    trigger: str  # begin | succeed | fail | roll_back
    source: str
    dest: str
    kind: str  # next | on_failure | rollback


def rollback_targets(playbook: Playbook) -> list[str]:
    seen = {s.rollback for s in playbook.states.values()}
    return sorted(t for t in seen if t and t != NO_ROLLBACK)


def edges(playbook: Playbook, *, inherited: bool = True) -> list[Edge]:
    """Every edge. With inherited (the machine), every state may take any declared rollback
    edge: the conductor picks the active one. Without (drawing), each state shows where a
    failure really goes: its active rollback edges, own or inherited; else its on_failure
    edge (default: aborted); a rollback state without on_failure shows none (the run halts
    for a human)."""
    if not inherited:
        return _drawn_edges(playbook)
    out = [Edge("begin", START, playbook.initial, "next")]
    targets = rollback_targets(playbook)
    for state in playbook.states.values():
        if state.next:
            out.append(Edge("succeed", state.name, state.next, "next"))
        out.append(Edge("fail", state.name, state.on_failure or Outcome.ABORTED.value,
                        "on_failure"))
        out += [Edge("roll_back", state.name, dest, "rollback") for dest in targets]
    return out


def _drawn_edges(playbook: Playbook) -> list[Edge]:
    from otpatch.engine import reach

    active = reach.active_rollbacks(playbook)
    region = reach.rollback_region(playbook)
    out = [Edge("begin", START, playbook.initial, "next")]
    for state in playbook.states.values():
        if state.next:
            out.append(Edge("succeed", state.name, state.next, "next"))
        here = active.get(state.name, frozenset())
        rollbacks = sorted(t for t in here if t and t != reach.NONE)
        out += [Edge("roll_back", state.name, dest, "rollback") for dest in rollbacks]
        uncovered = not rollbacks or reach.NONE in here
        if state.on_failure or (uncovered and state.name not in region):
            out.append(Edge("fail", state.name, state.on_failure or Outcome.ABORTED.value,
                            "on_failure"))
    return out


def build(playbook: Playbook, walker: Any, *, requirements_met: Callable[[str], bool],
          before: Callable[[Any], None], state: str = START):
    """A transitions Machine over `walker`, starting in `state` (resume starts mid-way)."""
    from transitions import Machine

    table = []
    for edge in edges(playbook):
        conditions = []
        if edge.kind == "rollback":
            conditions.append(_is_chosen(edge.dest))
        dest_state = playbook.states.get(edge.dest)
        if dest_state is not None and dest_state.requires:
            conditions.append(_requirements(requirements_met, edge.dest))
        table.append({"trigger": edge.trigger, "source": edge.source, "dest": edge.dest,
                      "conditions": conditions, "before": before})
    states = [START, *playbook.states, *sorted(TERMINALS)]
    return Machine(model=walker, states=states, transitions=table, initial=state,
                   auto_transitions=False, send_event=True, ignore_invalid_triggers=False)


def _is_chosen(dest: str):
    def chosen(event) -> bool:
        return event.kwargs.get("dest") == dest
    chosen.__name__ = f"rollback_to_{dest}"
    return chosen


def _requirements(requirements_met: Callable[[str], bool], dest: str):
    def requirements(event) -> bool:
        return requirements_met(dest)
    requirements.__name__ = f"requirements_of_{dest}"
    return requirements
