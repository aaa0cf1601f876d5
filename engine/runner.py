"""The module runner: enforces the module contract so modules need not.

Arguments are rendered and validated before any module runs (bad arguments fail even in a
dry run); a module without dry-run support is never called in a dry run; an unreachable
device is its own outcome; a step that needs a person who is not there is awaiting, neither
success nor failure; a module that raises becomes a failed result, never a crash."""
from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

from otpatch.engine import templating
from otpatch.modules.contract.errors import DeviceUnreachable, OtpatchError, PersonNeeded
from otpatch.engine.model import Step
from otpatch.modules.contract.values import thaw
from otpatch.modules import registry
from otpatch.modules.contract.module import Module, ReadBack, Result
from otpatch.modules.polling import poll_until

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedStep:
    """A step ready to run: its module, its rendered arguments, or why it cannot run."""

    step: Step
    module: type[Module]
    args: dict[str, Any]
    problem: str | None = None

    @property
    def changes_device(self) -> bool:
        return self.module.changes_device

    @property
    def replayable(self) -> bool:
        return self.module.replayable


_validated: set[tuple[str, str]] = set()


def prepare(step: Step, namespace: Mapping[str, Any], *, templated: bool = True
            ) -> PreparedStep:
    """Render the step's templates and check the arguments against the module's schema.

    Arguments without templates were checked in full when the playbook loaded (rule
    module-args), so only rendered arguments are checked again here (templated=False skips)."""
    module = registry.get(step.module)
    if not templated:
        return PreparedStep(step, module, thaw(step.args))
    raw = getattr(module, "raw_args", frozenset())
    try:
        args = {k: (thaw(v) if k in raw else templating.render(thaw(v), namespace))
                for k, v in step.args.items()}
    except templating.TemplateProblem as e:
        return PreparedStep(step, module, thaw(step.args), problem=str(e))
    problems = _arg_problems(step.module, args)
    if problems:
        return PreparedStep(step, module, args, problem="bad arguments: " + "; ".join(problems))
    return PreparedStep(step, module, args)


def has_templates(value: Any) -> bool:
    """Whether any string inside a step's arguments is a template."""
    if isinstance(value, Mapping):
        return any(has_templates(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_templates(v) for v in value)
    return templating.is_template(value)


def _arg_problems(name: str, args: dict[str, Any]) -> list[str]:
    try:
        key = (name, json.dumps(args, sort_keys=True, default=str))
    except (TypeError, ValueError):
        key = None
    if key in _validated:
        return []
    problems = [f"{'.'.join(map(str, path)) or '(args)'}: {msg}"
                for path, msg in registry.arg_problems(name, args)]
    if not problems and key is not None:
        _validated.add(key)
    return problems


def invoke(prepared: PreparedStep, ctx: Any) -> Result:
    """Run a prepared step under the contract; always answers with a Result."""
    if prepared.problem:
        return Result(failed=True, msg=prepared.problem)
    module = prepared.module
    if ctx.dry_run and not module.supports_dry_run:
        return Result(msg=f"skipped: {module.name} does not support dry run")
    try:
        return module().run(prepared.args, ctx)
    except DeviceUnreachable as e:
        return Result(failed=True, unreachable=True, msg=str(e))
    except PersonNeeded as e:
        return Result(awaiting=str(e), msg=str(e), asks=e.asks)
    except OtpatchError as e:
        return Result(failed=True, msg=str(e))
    except Exception as e:  # a module bug must not kill a run halfway through a change
        LOG.debug("module %s raised", module.name, exc_info=True)  # the traceback: --debug
        return Result(failed=True, msg=f"{module.name} raised {type(e).__name__}: {e}")


@dataclass(frozen=True)
class Reverified:
    """A read-back once the device stopped moving: the last answer (still moving only if
    the module's own bound ran out), the run-clock seconds waited on the device, and what
    it showed when first found mid-action ("" if it was not)."""

    check: ReadBack
    waited: float = 0.0
    moving: str = ""


def read_back(module_name: str, args: Mapping[str, Any], ctx: Any) -> Reverified:
    """Ask a device-changing module whether an interrupted action took effect. While it
    answers still moving, wait on the run's clock (a dry run passes the simulator's time
    with it, through the module) up to the module's bound, and ask again."""
    module = registry.get(module_name)()
    first = _ask(module, args, ctx)
    if not first.moving:
        return Reverified(first)
    LOG.info("read-back of %s: still moving (%s): waiting up to %.0f s", module_name,
             first.result.msg, first.timeout)
    looks = itertools.chain([first], iter(lambda: _ask(module, args, ctx), None))
    last = first

    def settled() -> ReadBack | None:
        nonlocal last
        last = next(looks)
        return None if last.moving else last

    try:
        _, waited = poll_until(ctx, settled, timeout=first.timeout, interval=first.interval,
                               advance=lambda seconds: module.advance_sim_clock(args, ctx,
                                                                                seconds))
    except Exception as e:  # passing the simulator's time failed: cannot tell
        LOG.debug("waiting on the read-back of %s raised", module_name, exc_info=True)
        return Reverified(_cannot_tell(e, "while waiting on the device, "), 0.0,
                          first.result.msg)
    return Reverified(last, waited, first.result.msg)


def _ask(module: Module, args: Mapping[str, Any], ctx: Any) -> ReadBack:
    try:
        return module.read_back(args, ctx)
    except Exception as e:  # cannot tell: a human decides
        LOG.debug("read-back of %s raised", module.name, exc_info=True)
        return _cannot_tell(e)


def _cannot_tell(e: Exception, when: str = "") -> ReadBack:
    return ReadBack(applied=None, result=Result(
        failed=True, msg=f"{when}read-back raised {type(e).__name__}: {e}"))
