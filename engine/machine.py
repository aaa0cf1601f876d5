"""Compile a playbook into its state machine: the edge table, and a `transitions` Machine.

The Machine is the table of legal edges and the run's current state, nothing more: it
evaluates no gate and journals nothing. The conductor evaluates a destination's gates
before it takes an edge, journals the transition, then triggers the Machine, which refuses
an edge the playbook does not have (MachineError, a bug in the decision, never a gate)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from otpatch.engine.model import NO_ROLLBACK, TERMINALS, Outcome, Playbook
from otpatch.engine.record import START


@dataclass(frozen=True)
class Edge:
    trigger: str  # begin | succeed | fail | roll_back | skip
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
        if state.next:  # a stage run skips a state of another stage along its next edge
            out += [Edge("succeed", state.name, state.next, "next"),
                    Edge("skip", state.name, state.next, "next")]
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


def build(playbook: Playbook, walker: Any, *, state: str = START):
    """A transitions Machine over `walker`, starting in `state` (resume starts mid-way).
    A roll_back trigger names its destination (`dest=`): every state may take any declared
    rollback edge, and the one the run has active is chosen."""
    from transitions import Machine

    table = []
    for edge in edges(playbook):
        conditions = [_is_chosen(edge.dest)] if edge.kind == "rollback" else []
        table.append({"trigger": edge.trigger, "source": edge.source, "dest": edge.dest,
                      "conditions": conditions})
    states = [START, *playbook.states, *sorted(TERMINALS)]
    return Machine(model=walker, states=states, transitions=table, initial=state,
                   auto_transitions=False, send_event=True, ignore_invalid_triggers=False)


def _is_chosen(dest: str) -> Callable[[Any], bool]:
    def chosen(event) -> bool:
        return event.kwargs.get("dest") == dest
    chosen.__name__ = f"rollback_to_{dest}"
    return chosen
