"""Small values the conductor records: plain JSON from module answers, the facts scope of a
step, and the time spent against each budget."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, is_dataclass, replace
from typing import Any

from otpatch.modules import registry
from otpatch.engine.model import TERMINALS, Playbook
from otpatch.modules.contract.module import Result


def budget_usage(pb: Playbook, progress: Any, now: float) -> dict[str, Any]:
    """Time spent in each budget's states along the path taken, against its limit; a state
    the run is still in (it halts there) counts until `now`."""
    out = {}
    for budget in pb.budgets.values():
        used = time_in(progress.path, budget.states, now)
        out[budget.name] = {"limit": budget.limit, "used": used, "over": used > budget.limit}
    return out


def time_in(path: Any, states: Any, now: float) -> float:
    """Run-clock seconds the path spent in these states; a state the run is still in counts
    until `now`."""
    return sum(_left(v, now) - v.entered_at for v in path if v.state in states)


def _left(visit: Any, now: float) -> float:
    if visit.left_at is not None:
        return visit.left_at
    return visit.entered_at if visit.state in TERMINALS else now


def facts_scope(module: str, args: dict) -> str | None:
    """The target a step's facts are kept under (its first target argument), if any."""
    for name in registry.target_args(module):
        if isinstance(args.get(name), str):
            return args[name]
    return None


def verified_aspects(module: str, args: dict) -> list | None:
    """What a step of `module` with `args` reads back and checks (firmware, mode, ...), as
    its result records it; None for one that checks nothing (or a module not registered)."""
    try:
        cls = registry.get(module)
    except registry.UnknownModule:  # a module this otpatch does not know records nothing
        return None
    return list(cls.verified_aspects(args)) or None


def plain_result(result: Result) -> Result:
    """The module's Result with plain JSON values only (what the journal can hold)."""
    return replace(result, facts=jsonable(result.facts),
                   diff=None if result.diff is None else jsonable(result.diff))


def jsonable(value: Any) -> Any:
    """Plain JSON values (what the journal stores) from what a module answered."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if kind is list or isinstance(value, (tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    return str(value)
