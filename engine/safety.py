"""The safety rules: what must hold before a procedure may touch a plant device.

Production changes sit behind a dual sign-off and a maintenance window; every cycle is
bounded; every device change is checked by a read-back before `completed`; every rollback
changes the device back and checks it before its terminal; firmware comes from a pinned
firmware param. What a module changes and what it checks is its own declaration
(`Module.changes`, `Module.verifies`), so a new module plugs in without touching this file."""
from __future__ import annotations

from collections import deque
from typing import Any, Iterable, Iterator, NamedTuple

from otpatch.engine import reach, templating
from otpatch.modules.contract.errors import Problem
from otpatch.engine.lintbase import Site, at, step_id, steps
from otpatch.engine.model import TERMINALS, Outcome, Playbook, Requirement, State, Step
from otpatch.engine.stages import step_targets
from otpatch.modules import registry
from otpatch.modules.contract.module import ANY_ASPECT

ANY_TARGET = "*"  # the key of a change made by a step that names no target


# -- production: dual sign-off and window -----------------------------------------------------

def production_without_signoff(pb: Playbook, site: Site) -> list[Problem]:
    open_ = reach.reachable(pb, through=lambda s: not _dual_signoff(s))
    return [at(pb.states[name].where, "production-without-signoff",
               f"state {name!r} runs in production but a path reaches it through no "
               "`signoff` requirement naming two roles")
            for name in sorted(open_) if site.stages.is_production(pb.states[name])
            and not _dual_signoff(pb.states[name])]


def signoff_dual(pb: Playbook, site: Site) -> list[Problem]:
    """A production sign-off names two distinct roles; with an inventory, every sign-off's
    roles must be held by as many different people (one person never signs twice)."""
    out = []
    for state in pb.states.values():
        for req in (r for r in state.requires if r.kind == "signoff"):
            trouble = _dual_trouble(req, site.stages.is_production(state), site.inventory)
            if trouble:
                out.append(at(req.where, "signoff-dual", f"{state.name}: signoff "
                              f"{' + '.join(req.roles)}: {trouble}"))
    return out


def _dual_trouble(req: Requirement, production: bool, inventory: Any | None) -> str:
    roles = tuple(dict.fromkeys(req.roles))
    if production and len(roles) < 2:
        return ("a production sign-off needs two distinct roles (IEC 62443-3-3 SR 2.1 "
                "RE(4), dual approval)")
    if inventory is None:
        return ""
    holders = {role: [a.name for a in inventory.approvers if role in a.roles] for role in roles}
    nobody = [role for role, names in holders.items() if not names]
    if nobody:
        return (f"nobody in {inventory.path} holds {', '.join(nobody)} "
                f"({_who_holds(inventory)})")
    if len(_assignment(holders)) < len(roles):
        said = "; ".join(f"{role}: {', '.join(names)}" for role, names in holders.items())
        return (f"these roles cannot be signed by {len(roles)} different people ({said}): "
                "one person never signs twice")
    return ""


def _who_holds(inventory: Any) -> str:
    return "; ".join(f"{a.name}: {', '.join(a.roles)}" for a in inventory.approvers) or \
        "no approvers"


def _assignment(holders: dict[str, list[str]]) -> dict[str, str]:
    """A role -> person matching with distinct people, as large as it goes (augmenting
    paths; a sign-off names a handful of roles)."""
    person_of: dict[str, str] = {}  # person -> role

    def place(role: str, seen: set[str]) -> bool:
        for person in holders[role]:
            if person in seen:
                continue
            seen.add(person)
            if person not in person_of or place(person_of[person], seen):
                person_of[person] = role
                return True
        return False

    for role in holders:
        place(role, set())
    return {role: person for person, role in person_of.items()}


def production_without_window(pb: Playbook, site: Site) -> list[Problem]:
    open_ = reach.reachable(pb, through=lambda s: not _has(s, "window"))
    return [at(pb.states[name].where, "production-without-window",
               f"state {name!r} changes a production device but a path reaches it through "
               "no `window` requirement (a planned maintenance window)")
            for name in sorted(open_) if site.stages.is_production(pb.states[name])
            and _changes(pb.states[name]) and not _has(pb.states[name], "window")]


def _has(state: State, kind: str) -> bool:
    return any(r.kind == kind for r in state.requires)


def _dual_signoff(state: State) -> bool:
    return any(r.kind == "signoff" and len(set(r.roles)) >= 2 for r in state.requires)


def attest_role_unheld(pb: Playbook, site: Site) -> list[Problem]:
    """With an inventory: every attestation's role is held by one of its approvers."""
    if site.inventory is None:
        return []
    held = {role for a in site.inventory.approvers for role in a.roles}
    return [at(step.where, "attest-role-unheld", f"{step_id(state, step)}: nobody in "
               f"{site.inventory.path} holds role {step.args['role']!r} "
               f"({_who_holds(site.inventory)})")
            for state, step in steps(pb) if step.module == "core.attest"
            and isinstance(step.args.get("role"), str)
            and not templating.is_template(step.args["role"]) and step.args["role"] not in held]


# -- cycles -----------------------------------------------------------------------------------

def cycle_unbounded(pb: Playbook, site: Site) -> list[Problem]:
    """Every cycle passes through a state with `max_visits`: the graph without those states
    has no cycle (inherited rollback edges count: a run can take them)."""
    free = {n for n, s in pb.states.items() if s.max_visits is None}
    active = reach.active_rollbacks(pb)
    succ = {n: {d for _, d in pb.states[n].edges()} | (set(active.get(n, ())) - {reach.NONE})
            for n in free}
    out = []
    for group in _strongly_connected({n: {d for d in ds if d in free} for n, ds in succ.items()}):
        if len(group) == 1 and group[0] not in succ[group[0]]:
            continue
        first = min(group, key=lambda n: (pb.states[n].where.line, n))
        loop = " -> ".join(sorted(group)) if len(group) > 1 else f"{first} -> {first}"
        out.append(at(pb.states[first].where, "cycle-unbounded", f"states {loop} form a "
                      "cycle with no bound: give one of them `max_visits`"))
    return out


def _strongly_connected(succ: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(succ):
        if root in index:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(succ[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


# -- changes and their read-back --------------------------------------------------------------

class Change(NamedTuple):
    """A device change a step makes: on which target, what, and where it is written."""

    target: str
    aspect: str
    state: str
    index: int


def _keys(step: Step) -> list[str]:
    return [t for _, t in step_targets(step)] or [ANY_TARGET]


def step_changes(state: State) -> Iterator[tuple[int, Step, list[tuple[str, str]],
                                                  list[tuple[str, str]]]]:
    """(index, step, (target, aspect) changed, (target, aspect) checked) for each step."""
    for i, step in enumerate(state.do):
        cls = registry.modules().get(step.module)
        if cls is None:
            continue
        keys = _keys(step)
        changed = [(k, a) for a in cls.changed_aspects() for k in keys]
        checked = [(k, a) for a in cls.verified_aspects(step.args) for k in keys]
        yield i, step, changed, checked


def _through(state: State, pending: frozenset[Change]) -> tuple[frozenset, frozenset]:
    """(unchecked after all steps, unchecked if the state fails at some step)."""
    now, made = set(pending), set()
    for i, _, changed, checked in step_changes(state):
        fresh = {Change(t, a, state.name, i) for t, a in changed}
        now |= fresh
        made |= fresh
        now = {c for c in now if (c.target, c.aspect) not in checked}
    return frozenset(now), frozenset(set(pending) | made)


def unchecked_at_end(pb: Playbook, starts: Iterable[str], kinds: frozenset[str],
                     end: str) -> set[Change]:
    """Changes that some path from `starts` (over `kinds` edges) brings to the terminal
    `end` with no read-back check after them: a may-analysis to a fixpoint."""
    pending: dict[str, frozenset] = {s: frozenset() for s in starts if s in pb.states}
    todo, reaching = deque(pending), set()
    while todo:
        name = todo.popleft()
        state = pb.states[name]
        done, failed = _through(state, pending[name])
        exits = [("next", state.next, done), ("on_failure", state.on_failure, failed)]
        for kind, dest, carried in exits:
            if kind not in kinds or not dest:
                continue
            if dest == end:
                reaching |= carried
            elif dest in pb.states and (dest not in pending or not carried <= pending[dest]):
                pending[dest] = pending.get(dest, frozenset()) | carried
                todo.append(dest)
    return reaching


def change_unverified(pb: Playbook, site: Site) -> list[Problem]:
    """On every path to `completed`, each device change is followed by a read-back check
    of that device's changed aspect."""
    region = reach.rollback_region(pb)
    late = unchecked_at_end(pb, [pb.initial], frozenset({"next", "on_failure"}),
                            Outcome.COMPLETED.value)
    out = []
    for change in sorted(late, key=lambda c: (c.state, c.index, c.target, c.aspect)):
        if change.state in region:
            continue  # the rollback rule checks rollback states
        state = pb.states[change.state]
        step = state.do[change.index]
        out.append(at(step.where, "change-unverified", f"{step_id(state, step)} changes "
                      f"{_what(change)} but a path from it "
                      f"reaches completed with no read-back check of it{_checkers(change)}"))
    return out


def _what(change: Change) -> str:
    who = "the device" if change.target == ANY_TARGET else change.target
    return who if change.aspect == ANY_ASPECT else f"the {change.aspect} of {who}"


def _checkers(change: Change) -> str:
    names = []
    for name in sorted(registry.modules()):
        cls = registry.modules().get(name)
        needs = cls.verifies.get(change.aspect) if cls else None
        if needs is not None:
            names.append(name + (f" (with {' or '.join(needs)})" if needs else ""))
    return f" (checked by: {', '.join(names)})" if names else " (no module checks it)"


def rollback_unverified(pb: Playbook, site: Site) -> list[Problem]:
    """A rollback edge that covers a device change leads to states that change the device
    back (each target the covered states change) and check every change by read-back
    before the terminal."""
    active = reach.active_rollbacks(pb)
    out = []
    for source, dest, where in _rollback_edges(pb):
        covered = _covered_targets(pb, active, dest)
        trouble = _rollback_trouble(pb, dest, covered) if covered else ""
        if trouble:
            out.append(at(where, "rollback-unverified", f"{source}: rollback {dest}: {trouble}"))
    return out


def _rollback_edges(pb: Playbook) -> Iterator[tuple[str, str, Any]]:
    seen = set()
    for state in pb.states.values():
        dest = state.rollback
        if dest and dest != "none" and dest not in seen:
            seen.add(dest)
            yield state.name, dest, state.edge_where.get("rollback", state.where)


def _covered_targets(pb: Playbook, active: dict, dest: str) -> set[str]:
    return {t for name, rollbacks in active.items() if dest in rollbacks
            for _, _, changed, _ in step_changes(pb.states[name]) for t, _ in changed}


def _rollback_trouble(pb: Playbook, dest: str, covered: set[str]) -> str:
    if dest in TERMINALS:
        return f"goes straight to {dest}: nothing is changed back or checked"
    if dest not in pb.states:
        return ""  # reported as unknown-state
    walk = reach.reachable(pb, starts=[dest], kinds=frozenset({"next"}))
    restored = {t for name in walk for _, _, changed, _ in step_changes(pb.states[name])
                for t, _ in changed}
    if not restored:
        return "changes no device back (it restores nothing)"
    missing = sorted(covered - restored - {ANY_TARGET})
    if missing:
        return f"changes nothing back on {', '.join(missing)}, which the run may have changed"
    late = {c for end in TERMINALS
            for c in unchecked_at_end(pb, [dest], frozenset({"next"}), end)}
    if late:
        c = min(late, key=lambda c: (c.state, c.index))
        step = pb.states[c.state].do[c.index]
        return (f"{step_id(pb.states[c.state], step)} changes {_what(c)} and no "
                "read-back check follows before the end"
                f"{_checkers(c)}")
    return ""


def _changes(state: State) -> bool:
    return any(changed for _, _, changed, _ in step_changes(state))


# -- firmware ---------------------------------------------------------------------------------

def firmware_param(pb: Playbook, site: Site) -> list[Problem]:
    """A firmware image argument is `{{ params.NAME }}` of a `type: firmware` param, which
    pins path, algorithm and the vendor's hash."""
    out = []
    for state, step in steps(pb):
        cls = registry.modules().get(step.module)
        for arg in _image_args(cls) if cls else ():
            if arg not in step.args:
                continue
            name = templating.single_param(step.args[arg])
            if name is None or name not in pb.params:
                out.append(at(step.where, "firmware-param", f"{step_id(state, step)}: {arg} "
                              "must be `{{ params.NAME }}` of a `type: firmware` param "
                              "(path, algorithm and published hash pinned)"))
            elif pb.params[name].type != "firmware":
                out.append(at(step.where, "firmware-param", f"{step_id(state, step)}: {arg}: "
                              f"param {name!r} is of type {pb.params[name].type}, not "
                              "firmware: its hash is pinned nowhere"))
    return out


def _image_args(cls: Any) -> tuple[str, ...]:
    props = cls.args_schema.get("properties", {})
    return tuple(k for k, v in props.items() if isinstance(v, dict) and v.get("x-otpatch-image"))
