"""The conductor: executes what engine/decide.py decides, one action at a time.

Each action (run a step, read a device back, take an edge, end) produces typed events; each
is journaled (intent before a device action, result after) and folded into the progress by
engine/record.py `apply`, the same function `resume` folds the journal with. Gates are pure
functions of a GateContext (engine/guards.py), evaluated here before an edge is taken;
the `transitions` Machine only holds the edge table and the current state."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from otpatch.engine import decide, entry
from otpatch.engine import events as E
from otpatch.engine import guards, machine, runner
from otpatch.modules import registry
from otpatch.engine.model import NO_ROLLBACK, TERMINALS, Playbook
from otpatch.engine.record import RunProgress, RunStatus, apply
from otpatch.engine.runvalues import (budget_usage, facts_scope, jsonable, plain_result,
                                      verified_aspects)
from otpatch.engine import stagerun
from otpatch.engine.evidence import gather, utc
from otpatch.engine.stages import effective_stages
from otpatch.modules.contract.durations import format_duration
from otpatch.modules.contract.module import Result

LOG = logging.getLogger(__name__)


class _Walker:
    """The model object `transitions` drives; it holds only the machine's state."""




def _changes_device(module: str) -> bool:
    return registry.get(module).changes_device


class Conductor:
    """Walks one run of a playbook from wherever its progress stands."""

    def __init__(self, playbook: Playbook, progress: RunProgress, journal: Any, ctx: Any,
                 display: Any, windows: Any, evidence_runs: Any = None) -> None:
        self.pb, self.progress, self.journal = playbook, progress, journal
        self.ctx, self.display, self.windows = ctx, display, windows
        self.ctx.recorder = self._module_record
        self.policy = guards.POLICIES[progress.config.mode]
        self.stages = effective_stages(playbook, ctx.inventory)
        # a stage run (`--stage`) passes over the states of every other stage
        self.out_of_stage = stagerun.out_of_stage(playbook, self.stages,
                                                  progress.config.stage)
        self.evidence_runs = evidence_runs or {}  # record -> engine/evidence.py EvidenceRun
        self._window_needs = _window_needs(playbook)
        self.ctx.stage = self._stage_of(progress.state)
        self._head = ""  # hash of the newest entry this run wrote
        self._templated: dict[int, bool] = {}  # id(step) -> its args hold templates
        self.walker = _Walker()
        self.machine = machine.build(playbook, self.walker, state=progress.state)
        self._do = {decide.RunStep: self._run_step, decide.ReadBack: self._read_back,
                    decide.Move: self._move, decide.End: self._end}

    def conduct(self) -> RunProgress:
        """Run until the run ends, pauses at a gate or halts; returns the progress."""
        while (action := decide.next_action(self.pb, self.progress, _changes_device,
                                            self.out_of_stage)):
            self._do[type(action)](action)
        self.journal.flush()
        return self.progress

    # -- steps ----------------------------------------------------------------------------
    def _run_step(self, action: decide.RunStep) -> None:
        state = self.pb.states[action.state]
        index, step = action.index, state.do[action.index]
        self.ctx.namespace = self._namespace()
        templated = self._templated.get(id(step))
        if templated is None:
            templated = self._templated[id(step)] = runner.has_templates(step.args)
        prepared = runner.prepare(step, self.ctx.namespace, templated=templated)
        if prepared.changes_device and prepared.problem is None:
            # only a device change needs its intent on disk first: a resume reads the device
            # back; any other step without a recorded result simply runs again
            self.emit(E.StepIntent, state=state.name, index=index, step=step.label,
                       module=step.module,
                       args=jsonable(prepared.args) if templated else prepared.args,
                       changes=list(prepared.module.changed_aspects()))
        elif not prepared.replayable:
            self.journal.flush()  # no write transaction spans a step that could take time
        self.display.step(state, index, step)
        started = self.ctx.clock.elapsed()
        self.ctx.module_name, self.ctx.facts = step.module, self.progress.facts
        self.ctx.attestations = self.progress.attestations
        visit = sum(v.state == state.name for v in self.progress.path)
        self.ctx.step_at = {"state": state.name, "index": index, "visit": visit}
        result = runner.invoke(prepared, self.ctx)
        if result.awaiting:  # no result is recorded: a resume runs the step again
            asks = {"asks": dict(result.asks)} if result.asks else {}
            self._pause(result.awaiting, step={"state": state.name, "index": index,
                                               "visit": visit, "step": step.label,
                                               "module": step.module,
                                               "args": jsonable(prepared.args), **asks})
            return
        self._record_result(state, index, step, prepared.args, result, started,
                            durable=not prepared.replayable)

    def _failure(self, state: Any, step: Any, result: Result) -> str | None:
        """Why this step fails its state, if it does: recorded with the result, so a resumed
        run takes the same edge."""
        if result.failed:
            return f"{step.label}: {result.msg}"
        took = self.ctx.clock.elapsed() - self.progress.state_started_at
        if state.timeout and took > state.timeout:
            return (f"state {state.name} exceeded its timeout of "
                    f"{format_duration(state.timeout)} (took {format_duration(took)})")
        return None

    def _record_result(self, state: Any, index: int, step: Any, args: dict, result: Result,
                       started: float, reverified: bool = False, durable: bool = True) -> None:
        """durable=False (a replayable step): the result joins the next commit; a crash
        before it loses only steps that run again, unchanged, on resume."""
        now = self.ctx.clock.elapsed()
        self.emit(E.StepResult, durable=durable, state=state.name, index=index,
                   step=step.label, module=step.module, result=plain_result(result),
                   register=step.register, facts_scope=facts_scope(step.module, args),
                   duration=now - started, reverified=reverified,
                   failure=self._failure(state, step, result),
                   verifies=verified_aspects(step.module, args))
        self.display.result(state, index, step, result, now - started)

    def _read_back(self, action: decide.ReadBack) -> None:
        """A step's intent has no result: re-verify a device change, never redo it blindly.
        A device still mid-action is waited for (within the module's own bound) and read
        again; only one that settles answering neither halts the run for a human."""
        pending = self.progress.pending
        state = self.pb.states[action.state]
        step = state.do[action.index]
        self.ctx.namespace, self.ctx.facts = self._namespace(), self.progress.facts
        started = self.ctx.clock.elapsed()
        answer = runner.read_back(action.module, pending.args, self.ctx)
        check = answer.check
        self.emit(E.ReadBackDone, state=state.name, index=action.index, module=action.module,
                   applied=check.applied, result=jsonable(check.result.to_dict()),
                   moving=answer.moving, waited=answer.waited)
        if check.applied is True or check.moving:
            result = check.result if check.applied else _still_moving(check, answer.waited)
            self._record_result(state, action.index, step, pending.args, result, started,
                                reverified=True)
        elif check.applied is None:
            waited = f" after waiting {format_duration(answer.waited)}" if answer.waited else ""
            self._end(decide.End(RunStatus.HALTED, f"cannot tell whether '{step.label}' took "
                                                   f"effect{waited} ({check.result.msg}); a "
                                                   "human must check the device"))
        # applied False: the read-back cleared the intent; the step may run again

    # -- edges ----------------------------------------------------------------------------
    def _move(self, action: decide.Move) -> None:
        """Take an edge: the destination's gates first (each verdict journaled), then the
        transition journaled, then the Machine moved; a refused gate pauses the run."""
        source = self.progress.state
        if action.trigger == "succeed":
            self._expected_time(self.pb.states[source])
        refusals = [] if action.dest in self.out_of_stage else self._gates(action.dest)
        if (not refusals and action.dest not in self.out_of_stage
                and entry.enters_production_change(self, action)):
            refusals = entry.prove(self, action.dest)
        if refusals:
            self._pause("; ".join(refusals))
            return
        moved = getattr(self.walker, action.trigger)(
            **({"dest": action.dest} if action.trigger == "roll_back" else {}))
        if not moved:  # the decision named an edge the playbook does not have: a bug
            raise RuntimeError(f"no {action.trigger} edge from {source} to {action.dest}")
        rollback, rolling = self._rollback_after(action)
        self.emit(E.Transition, durable=False, source=source, trigger=action.trigger,
                   to=action.dest, rollback=rollback, rolling_back=rolling,
                   reason=action.reason or None)
        if action.dest in TERMINALS:
            return
        self.ctx.stage = self._stage_of(action.dest)
        # shown with the stage the run enforces (its hosts'), not only the author's label
        self.display.state(replace(self.pb.states[action.dest], stage=self.ctx.stage),
                           self.progress)
        checkpoint = self.pb.states[action.dest].checkpoint
        if checkpoint and action.dest not in self.out_of_stage:  # a skipped state keeps none
            self.emit(E.Checkpoint, durable=False, state=action.dest, name=checkpoint,
                       facts=jsonable(self.progress.facts))

    def _expected_time(self, state: Any) -> None:
        """In a dry run, a state whose steps let no simulated time pass (records,
        attestations: work with no simulator behind it) takes its expected duration; where
        a simulator kept time, its time stands."""
        spent = self.ctx.clock.elapsed() - self.progress.state_started_at
        if state.expect_duration and spent == 0 and self.ctx.clock.simulated:
            self.ctx.clock.sleep(state.expect_duration)

    def _rollback_after(self, action: decide.Move) -> tuple[str | None, bool]:
        """The rollback edge active after the move, and whether the run is rolling back."""
        p = self.progress
        if action.trigger == "roll_back":
            return None, True
        if action.dest in self.out_of_stage:  # a skipped state arms no rollback of its own
            return p.active_rollback, p.rolling_back
        own = self.pb.states[action.dest].rollback if action.dest in self.pb.states else None
        if own:
            return (None if own == NO_ROLLBACK else own), p.rolling_back
        return p.active_rollback, p.rolling_back

    def _gates(self, dest: str) -> list[str]:
        """Every requirement of `dest`, evaluated on one GateContext and journaled; why
        each refused one refused (empty: the edge may be taken)."""
        state = self.pb.states.get(dest)
        if state is None or not state.requires:
            return []
        gate, refusals = self.gate_context(dest), []
        for req in state.requires:
            verdict = guards.evaluate(req, gate)
            self.emit(E.Requirement, durable=False, state=dest, requirement=req.describe(),
                       requirement_kind=req.kind, passed=verdict.passed,
                       detail=verdict.detail, simulated=verdict.simulated)
            self.display.gate(dest, req, verdict)
            if not verdict.passed:
                refusals.append(f"{dest}: {verdict.detail}")
        if not refusals:  # a sign-off passed on its emergency path is journaled as such
            from otpatch.engine.emergency import to_journal

            for fields in to_journal(state, gate, self.progress):
                self.emit(E.EmergencyOpened, **fields)
        return refusals

    def gate_context(self, dest: str) -> guards.GateContext:
        p, cfg = self.progress, self.progress.config
        evidence = {}
        for visit in p.path:
            stage = self._stage_of(visit.state)
            if stage is not None and visit.done_entry:
                evidence[stage.value] = visit.done_entry
        return guards.GateContext(
            policy=self.policy, now=self.ctx.clock.now(), params=cfg.params, facts=p.facts,
            windows=self.windows, state=dest, needs=self._window_needs,
            playbook_hash=cfg.playbook_hash,
            targets={t: tuple(h.name for h in hosts) for t, hosts in self.ctx.targets.items()},
            verified_firmware=dict(p.facts.get("verified") or {}), evidence=evidence,
            journal_head=self._head, **self._signoff_context(dest), **self._clock_context())

    def _clock_context(self) -> dict[str, Any]:
        """The site's time policy and, when it requires one, the OS's word on the clock."""
        policy = getattr(self.ctx.inventory, "time_sync", None)
        if policy is None or not policy.required or self.ctx.dry_run:
            return {"time_policy": policy}
        from otpatch.modules.contract.platform import clock_sync

        return {"time_policy": policy, "clock": clock_sync()}

    def _signoff_context(self, dest: str) -> dict[str, Any]:
        """What a sign-off gate at `dest` judges approvals against (engine/approvals.py)."""
        from otpatch.engine import approvals

        req = approvals.signoff_of(self.pb, dest)
        if req is None:
            return {}
        p = self.progress
        found = gather(p, self.pb, req, self._stage_of, self.evidence_runs,
                       self.ctx.inventory, utc(self.ctx.clock.now()))
        return {"binding": approvals.binding(p, self.pb, self.ctx.inventory, self.ctx.targets,
                                             dest, found),
                "evidence_problems": found.problems,
                "approvals": p.approvals, "revoked": p.revoked,
                "approvers": tuple(self.ctx.inventory.approvers),
                "operator": p.config.operator}

    # -- ends -----------------------------------------------------------------------------
    def _pause(self, message: str, step: dict | None = None) -> None:
        """Stop awaiting: at a refused gate, or mid-state at a `step` that needs a person."""
        self.emit(E.RunPaused, state=self.progress.state, message=message, step=step)
        self.display.ended(self.progress)

    def _end(self, action: decide.End) -> None:
        p = self.progress
        self.emit(E.RunEnded, status=action.status.value, state=p.state,
                   message=action.message,
                   budgets=budget_usage(self.pb, p, self.ctx.clock.elapsed()))
        self.display.ended(self.progress)

    # -- helpers --------------------------------------------------------------------------
    def emit(self, kind: type, durable: bool = True, **fields: Any) -> Any:
        """Journal one typed event at the run clock's now and fold it into the progress."""
        event = kind(elapsed=self.ctx.clock.elapsed(), **fields)
        entry = self.journal.record(self.progress.run_id, event, durable=durable)
        self._head = entry.hash
        self.progress = apply(self.progress, event, entry.hash)
        # the chain's head signed every CHECKPOINT_EVERY entries (engine/anchor.py)
        self.journal.checkpoint_if_due(self.progress.run_id, event.elapsed)
        return event

    def _module_record(self, event_type: str, payload: Any) -> None:
        event = E.ModuleRecord(event_type, jsonable(dict(payload)), self.ctx.clock.elapsed())
        entry = self.journal.record(self.progress.run_id, event,
                                    source=f"module:{self.ctx.module_name}")
        self._head = entry.hash
        self.progress = apply(self.progress, event, entry.hash)

    def _stage_of(self, name: str) -> Any:
        state = self.pb.states.get(name)
        return self.stages.stage(state) if state is not None else None

    def _namespace(self) -> dict[str, Any]:
        cfg, p = self.progress.config, self.progress
        ns = dict(p.results)
        ns.update(params=cfg.params, facts=p.facts, results=p.results,
                  checkpoints=p.checkpoints,
                  targets=self.ctx.namespace_targets,
                  run={"id": p.run_id, "mode": cfg.mode, "dry_run": self.ctx.dry_run})
        return ns


def _still_moving(check: Any, waited: float) -> Result:
    """The device was still mid-action when the module's own bound ran out: the step fails,
    as the module's own wait fails it, and takes its state's failure edge."""
    seen = check.result
    return Result(failed=True, changed=seen.changed, unreachable=seen.unreachable,
                  facts=seen.facts, msg=f"still under way after "
                                        f"{format_duration(waited)}: {seen.msg}")


def _window_needs(pb: Playbook) -> dict[str, float]:
    """Worst-case seconds of the path from each state that requires a window (plan's
    arithmetic): a window gate also needs that much time left in the window."""
    from otpatch.engine.plan import path_need

    return {s.name: path_need(pb, s.name, "window", 0).worst_case for s in pb.states.values()
            if any(r.kind == "window" for r in s.requires)}
