"""The conductor: decides which step runs, which event a result becomes and which edge is
taken; modules act. Every decision is journaled: intent before an action, result after."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass, replace
from typing import Any

from otpatch.engine import events as E
from otpatch.engine import guards, machine, runner
from otpatch.engine.model import NO_ROLLBACK, TERMINALS, Playbook, State, format_duration
from otpatch.engine.stages import effective_stages
from otpatch.engine.record import (START, RunProgress, RunStatus, apply_result,
                                   apply_transition)
from otpatch.modules import registry
from otpatch.modules.base import Result

LOG = logging.getLogger(__name__)
_OUTCOME_STATUS = {"completed": RunStatus.COMPLETED, "rolled_back": RunStatus.ROLLED_BACK,
                   "aborted": RunStatus.ABORTED}


class _Walker:
    """The model object `transitions` drives; it holds only the machine's state."""


class Conductor:
    """Walks one run of a playbook from wherever its progress stands."""

    def __init__(self, playbook: Playbook, progress: RunProgress, journal: Any, ctx: Any,
                 display: Any, windows: Any) -> None:
        self.pb, self.progress, self.journal = playbook, progress, journal
        self.ctx, self.display, self.windows = ctx, display, windows
        self.ctx.recorder = self._module_record
        self.stages = effective_stages(playbook, ctx.inventory)
        self._window_needs = _window_needs(playbook)
        self.ctx.stage = self._stage_of(progress.state)
        self._reason = ""
        self._refusals: list[str] = []
        self._templated: dict[int, bool] = {}  # id(step) -> its args hold templates
        self.walker = _Walker()
        self.machine = machine.build(playbook, self.walker, state=progress.state,
                                     requirements_met=self._requirements_met,
                                     before=self._record_transition)

    # -- the loop -------------------------------------------------------------------------
    def conduct(self) -> RunProgress:
        """Run until the run ends, pauses at a gate or halts; returns the progress."""
        p = self.progress
        if p.pending is not None:
            self._recover_pending()
        while p.status is RunStatus.RUNNING:
            if p.state == START:
                self._move("begin")
            elif p.state in TERMINALS:  # resumed after the last transition, before the end
                self._end(_OUTCOME_STATUS[p.state])
            elif p.failure:  # a failed step's result is recorded; its edge is taken next
                self._fail(self.pb.states[p.state], p.failure)
            elif p.step_index < len(self.pb.states[p.state].do):
                self._run_step(self.pb.states[p.state], p.step_index)
            else:
                self._leave(self.pb.states[p.state])
        self.journal.flush()
        return p

    def _leave(self, state: State) -> None:
        """All steps done: take the `next` edge. In a dry run, a state whose steps let no
        simulated time pass (records, attestations: work with no simulator behind it) takes
        its expected duration; where a simulator kept time, its time stands."""
        spent = self.ctx.clock.elapsed() - self.progress.state_started_at
        if state.expect_duration and spent == 0 and self.ctx.clock.simulated:
            self.ctx.clock.sleep(state.expect_duration)
        if not state.next:
            self._fail(state, f"state {state.name} has no next edge")
            return
        self._move("succeed")

    # -- steps ----------------------------------------------------------------------------
    def _run_step(self, state: State, index: int) -> None:
        step = state.do[index]
        self.ctx.namespace = self._namespace()
        templated = self._templated.get(id(step))
        if templated is None:
            templated = self._templated[id(step)] = runner.has_templates(step.args)
        prepared = runner.prepare(step, self.ctx.namespace, templated=templated)
        if prepared.changes_device and prepared.problem is None:
            # only a device change needs its intent on disk first: a resume reads the device
            # back; any other step without a recorded result simply runs again
            self._emit(E.StepIntent, state=state.name, index=index, step=step.label,
                       module=step.module,
                       args=_jsonable(prepared.args) if templated else prepared.args)
        elif not prepared.replayable:
            self.journal.flush()  # no write transaction spans a step that could take time
        self.display.step(state, index, step)
        started = self.ctx.clock.elapsed()
        self.ctx.module_name, self.ctx.facts = step.module, self.progress.facts
        result = runner.invoke(prepared, self.ctx)
        if result.awaiting:  # no result is recorded: a resume runs the step again
            self._pause(result.awaiting, step={"state": state.name, "index": index,
                                               "step": step.label, "module": step.module})
            return
        self._record_result(state, index, step, prepared.args, result, started,
                            failure=self._failure(state, step, result),
                            durable=not prepared.replayable)

    def _failure(self, state: State, step: Any, result: Result) -> str | None:
        """Why this step fails its state, if it does: recorded with the result, so a resumed
        run takes the same edge."""
        if result.failed:
            return f"{step.label}: {result.msg}"
        took = self.ctx.clock.elapsed() - self.progress.state_started_at
        if state.timeout and took > state.timeout:
            return (f"state {state.name} exceeded its timeout of "
                    f"{format_duration(state.timeout)} (took {format_duration(took)})")
        return None

    def _record_result(self, state: State, index: int, step: Any, args: dict, result: Result,
                       started: float, reverified: bool = False,
                       failure: str | None = None, durable: bool = True) -> None:
        """durable=False (a replayable step): the result joins the next commit; a crash
        before it loses only steps that run again, unchanged, on resume."""
        now = self.ctx.clock.elapsed()
        event = self._emit(E.StepResult, durable=durable, state=state.name, index=index, step=step.label,
                           module=step.module, result=_plain_result(result),
                           register=step.register, facts_scope=_facts_scope(step.module, args),
                           duration=now - started, reverified=reverified, failure=failure)
        apply_result(self.progress, event)
        self.display.result(state, index, step, result, now - started)

    def _recover_pending(self) -> None:
        """A step's intent has no result: re-verify a device change, never redo it blindly.
        A device still mid-action is waited for (within the module's own bound) and read
        again; only one that settles answering neither halts the run for a human."""
        pending, p = self.progress.pending, self.progress
        state = self.pb.states[pending.state]
        step = state.do[pending.index]
        if not registry.get(pending.module).changes_device:
            p.pending = None  # nothing on a device: the step simply runs again
            return
        self.ctx.namespace, self.ctx.facts = self._namespace(), p.facts
        started = self.ctx.clock.elapsed()
        answer = runner.read_back(pending.module, pending.args, self.ctx)
        check = answer.check
        self._emit(E.ReadBackDone, state=state.name, index=pending.index,
                   module=pending.module, applied=check.applied,
                   result=_jsonable(check.result.to_dict()), moving=answer.moving,
                   waited=answer.waited)
        if check.applied is True or check.moving:
            result = check.result if check.applied else self._still_moving(check, answer.waited)
            self._record_result(state, pending.index, step, pending.args, result, started,
                                reverified=True, failure=self._failure(state, step, result))
        elif check.applied is False:
            p.pending = None  # the device shows it did not happen: it may run again
        else:
            waited = f" after waiting {format_duration(answer.waited)}" if answer.waited else ""
            self._end(RunStatus.HALTED, f"cannot tell whether '{step.label}' took effect"
                                        f"{waited} ({check.result.msg}); a human must check "
                                        "the device")

    @staticmethod
    def _still_moving(check: Any, waited: float) -> Result:
        """The device was still mid-action when the module's own bound ran out: the step
        fails, as the module's own wait fails it, and takes its state's failure edge."""
        seen = check.result
        return Result(failed=True, changed=seen.changed, unreachable=seen.unreachable,
                      facts=seen.facts, msg=f"still under way after "
                                            f"{format_duration(waited)}: {seen.msg}")

    # -- edges ----------------------------------------------------------------------------
    def _fail(self, state: State, reason: str) -> None:
        p = self.progress
        self._reason = reason
        if p.active_rollback and not p.rolling_back:
            self._move("roll_back", dest=p.active_rollback)
        elif state.on_failure or not p.rolling_back:
            self._move("fail")
        else:
            self._end(RunStatus.HALTED, f"rollback step failed in {state.name}: {reason}; the "
                                        "device may be neither as found nor as left: a human "
                                        "must restore it")

    def _move(self, trigger: str, **kwargs: Any) -> None:
        dest = self._destination(trigger, kwargs.get("dest"))
        spent = dest in self.pb.states and self.pb.states[dest].max_visits
        if spent and sum(v.state == dest for v in self.progress.path) >= spent:
            self._visits_spent(trigger, dest, spent)
            return
        self._refusals = []
        moved = getattr(self.walker, trigger)(**kwargs)
        reason, self._reason = self._reason, ""
        if not moved:
            self._pause("; ".join(self._refusals) or f"{trigger} refused")
            return
        state = self.progress.state
        if state in TERMINALS:
            self._end(_OUTCOME_STATUS[state], reason or self._rollback_reason())
            return
        self.ctx.stage = self._stage_of(state)
        # shown with the stage the run enforces (its hosts'), not only the author's label
        self.display.state(replace(self.pb.states[state], stage=self.ctx.stage), self.progress)
        checkpoint = self.pb.states[state].checkpoint
        if checkpoint:
            snapshot = _jsonable(self.progress.facts)
            self._emit(E.Checkpoint, durable=False, state=state, name=checkpoint,
                       facts=snapshot)
            self.progress.checkpoints[checkpoint] = snapshot

    def _rollback_reason(self) -> str:
        """Why the run rolled back (what failed), for the message of its end."""
        started = [v for v in self.progress.path if v.event == "roll_back" and v.reason]
        return f"rolled back after {started[-1].state} failed: {started[-1].reason}" \
            if started else ""

    def _stage_of(self, name: str) -> Any:
        state = self.pb.states.get(name)
        return self.stages.stage(state) if state is not None else None

    def _destination(self, trigger: str, rollback: str | None) -> str:
        if trigger == "begin":
            return self.pb.initial
        if trigger == "roll_back":
            return rollback or ""
        state = self.pb.states[self.progress.state]
        return (state.next if trigger == "succeed" else state.on_failure) or "aborted"

    def _visits_spent(self, trigger: str, dest: str, limit: int) -> None:
        """A bounded cycle is spent: the state it would enter again fails instead, through
        the rollback path; a failure edge that leads back into it halts for a human."""
        reason = f"state {dest} already entered {limit} time(s) (max_visits {limit})"
        if trigger == "succeed":
            self._fail(self.pb.states[self.progress.state], reason)
        else:
            self._end(RunStatus.HALTED, f"{reason}, and the failure edge of "
                                        f"{self.progress.state} leads back into it: a human "
                                        "must decide")

    def _record_transition(self, event: Any) -> None:
        """`before` callback: the transition is journaled before the machine commits it."""
        p, dest = self.progress, event.transition.dest
        trigger = event.event.name
        rollback, rolling = p.active_rollback, p.rolling_back
        if trigger == "roll_back":
            rollback, rolling = None, True
        elif dest in self.pb.states and self.pb.states[dest].rollback:
            own = self.pb.states[dest].rollback
            rollback = None if own == NO_ROLLBACK else own
        apply_transition(p, self._emit(
            E.Transition, durable=False, source=event.transition.source, trigger=trigger,
            to=dest, rollback=rollback, rolling_back=rolling, reason=self._reason or None))

    def _requirements_met(self, dest: str) -> bool:
        """The condition of every edge into `dest`: each requirement checked and recorded."""
        view = guards.GateView(dry_run=self.ctx.dry_run, now=self.ctx.clock.now(),
                               params=self.progress.config.params,
                               facts=self.progress.facts, windows=self.windows,
                               state=dest, needs=self._window_needs)
        passed = True
        for req in self.pb.states[dest].requires:
            verdict = guards.evaluate(req, view)
            self._emit(E.Requirement, durable=False, state=dest, requirement=req.describe(),
                       requirement_kind=req.kind, passed=verdict.passed,
                       detail=verdict.detail, simulated=verdict.simulated)
            self.display.gate(dest, req, verdict)
            if not verdict.passed:
                passed = False
                self._refusals.append(f"{dest}: {verdict.detail}")
        return passed

    # -- ends -----------------------------------------------------------------------------
    def _pause(self, message: str, step: dict | None = None) -> None:
        """Stop awaiting: at a refused gate, or mid-state at a `step` that needs a person."""
        self.progress.status = RunStatus.AWAITING
        self.progress.message = message
        self._emit(E.RunPaused, state=self.progress.state, message=message, step=step)
        self.display.ended(self.progress)

    def _end(self, status: RunStatus, message: str = "") -> None:
        p = self.progress
        p.status, p.message = status, message
        if p.path and p.path[-1].left_at is None and p.state not in TERMINALS:
            p.path[-1].left_at = self.ctx.clock.elapsed()
        self._emit(E.RunEnded, status=status.value, state=p.state, message=message,
                   budgets=budget_usage(self.pb, p))
        self.display.ended(p)

    # -- helpers --------------------------------------------------------------------------
    def _emit(self, kind: type, durable: bool = True, **fields: Any) -> Any:
        """Journal one typed event at the run clock's now; the event, for folding."""
        event = kind(elapsed=self.ctx.clock.elapsed(), **fields)
        self.journal.record(self.progress.run_id, event, durable=durable)
        # the chain's head signed every CHECKPOINT_EVERY entries (engine/anchor.py)
        self.journal.checkpoint_if_due(self.progress.run_id, event.elapsed)
        self.progress.elapsed = event.elapsed
        return event

    def _module_record(self, event_type: str, payload: Any) -> None:
        event = E.ModuleRecord(event_type, _jsonable(dict(payload)), self.ctx.clock.elapsed())
        self.journal.record(self.progress.run_id, event,
                            source=f"module:{self.ctx.module_name}")
        self.progress.elapsed = event.elapsed

    def _namespace(self) -> dict[str, Any]:
        cfg, p = self.progress.config, self.progress
        ns = dict(p.results)
        ns.update(params=cfg.params, facts=p.facts, results=p.results,
                  checkpoints=p.checkpoints,
                  targets=self.ctx.namespace_targets,
                  run={"id": p.run_id, "mode": cfg.mode, "dry_run": self.ctx.dry_run})
        return ns


def _window_needs(pb: Playbook) -> dict[str, float]:
    """Worst-case seconds of the path from each state that requires a window (plan's
    arithmetic): a window gate also needs that much time left in the window."""
    from otpatch.engine.plan import path_need

    return {s.name: path_need(pb, s.name, "window", 0).worst_case for s in pb.states.values()
            if any(r.kind == "window" for r in s.requires)}


def budget_usage(pb: Playbook, progress: RunProgress) -> dict[str, Any]:
    """Time spent in each budget's states along the path taken, against its limit."""
    out = {}
    for budget in pb.budgets.values():
        used = sum((v.left_at or v.entered_at) - v.entered_at for v in progress.path
                   if v.state in budget.states)
        out[budget.name] = {"limit": budget.limit, "used": used, "over": used > budget.limit}
    return out


def _facts_scope(module: str, args: dict) -> str | None:
    for name in registry.target_args(module):
        if isinstance(args.get(name), str):
            return args[name]
    return None


def _plain_result(result: Result) -> Result:
    """The module's Result with plain JSON values only (what the journal can hold)."""
    return replace(result, facts=_jsonable(result.facts),
                   diff=None if result.diff is None else _jsonable(result.diff))


def _jsonable(value: Any) -> Any:
    """Plain JSON values (what the journal stores) from what a module answered."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict or isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if kind is list or isinstance(value, (tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    return str(value)
