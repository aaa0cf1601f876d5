"""The run API: plan, run, resume and status over typed requests; what the CLI, the tests,
the fleet module and the web page call.

Everything a run needs arrives in its request or as an argument: the files, the params
(`-e NAME=VALUE` already parsed into a mapping), the journal's home, the host key's path,
who operates, whom to tell (an observer: engine/display.py's protocol) and whom to ask (a
Prompter: engine/prompt.py). Nothing here prints or reads the environment; the caller
loads the site's plugins once (`load_registry`) and resolves $OTPATCH_HOME and
$OTPATCH_HOST_KEY itself, as the CLI does. One exception, for tests only: the journal's
fault hook $OTPATCH_FAULT_KILL (engine/journal.py) still kills the process at a commit.

Bad input, a refusal before the run starts, or a damaged journal raise the OtpatchError
the CLI prints (each carries its exit code); a run that starts returns a RunOutcome,
whatever its end: completed, rolled back, aborted, halted, or awaiting a gate or a person."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from otpatch.engine import runs
from otpatch.engine.display import NullDisplay, Observer
from otpatch.engine.plan import Plan
from otpatch.engine.prompt import NOBODY, Prompter
from otpatch.engine.record import RunProgress, RunStatus
from otpatch.modules.registry import load_registry
from otpatch.modules.contract.errors import InputError, clip

__all__ = ["PlanRequest", "RunRequest", "ResumeRequest", "RunOutcome", "JournalHead",
           "plan", "run", "resume", "status", "load_registry", "Observer", "Prompter"]

LOG = logging.getLogger(__name__)

MODES = runs.MODES


# -- requests -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanRequest:
    """What `plan` needs: the playbook, the inventory (if it has targets), the params, and
    the journal's home, whose baseline a firmware's prerequisites are judged against
    (engine/qualify_check.py; None: refused when the playbook's firmware has any)."""

    playbook: str | os.PathLike[str]
    inventory: str | os.PathLike[str] | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    home: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _frozen_params(self.params))
        if self.home is not None:
            object.__setattr__(self, "home", Path(self.home))


@dataclass(frozen=True)
class RunRequest:
    """A new run: PlanRequest's inputs, the mode, the journal's home, the host key file
    that signs the journal's head (None: unanchored), and who operates (None: unnamed)."""

    playbook: str | os.PathLike[str]
    inventory: str | os.PathLike[str] | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    _: KW_ONLY
    mode: str = "dry_run"  # dry_run | execute
    operator: str | None = None
    home: Path
    host_key: Path | None = None
    stage: str | None = None  # a stage run: only that stage's states (lab|staging|production)
    evidence: tuple[str, ...] = ()  # record hashes of the runs its sign-offs approve
    register_keys: Path | None = None  # the pinned register keys (None: none, so an
    # execute run is refused; the CLI passes engine/registerkeys.py pinned_keys_path())

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode {clip(repr(self.mode))}: expected one of "
                             f"{', '.join(MODES)}")
        object.__setattr__(self, "params", _frozen_params(self.params))
        _set_paths(self)
        _check_operator(self.operator)


@dataclass(frozen=True)
class ResumeRequest:
    """Continue run `run_id` from the journal under `home`."""

    run_id: str
    home: Path
    host_key: Path | None = None
    operator: str | None = None
    evidence: tuple[str, ...] = ()  # record hashes of evidence runs to add
    register_keys: Path | None = None  # as RunRequest's

    def __post_init__(self) -> None:
        _set_paths(self)
        _check_operator(self.operator)


def _frozen_params(params: Mapping[str, str]) -> Mapping[str, str]:
    """A read-only copy; names and values are text, as `-e NAME=VALUE` gives them."""
    if not isinstance(params, Mapping):
        raise InputError(f"params: a mapping of names to text, not {type(params).__name__}")
    for name, value in params.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InputError(f"param {clip(repr(name))}: names and values are text (as -e "
                             f"NAME=VALUE gives them), not {type(value).__name__}")
    return MappingProxyType(dict(params))


def _set_paths(request: Any) -> None:
    object.__setattr__(request, "home", Path(request.home))
    if request.host_key is not None:
        object.__setattr__(request, "host_key", Path(request.host_key))
    if request.register_keys is not None:
        object.__setattr__(request, "register_keys", Path(request.register_keys))


def _check_operator(operator: str | None) -> None:
    if operator is not None and (not isinstance(operator, str) or not operator.strip()):
        raise InputError(f"operator {clip(repr(operator))}: a person's name, or None")


# -- outcomes -------------------------------------------------------------------------------

@dataclass(frozen=True)
class JournalHead:
    """The journal's newest committed entry: its seq and hash (`otpatch journal verify`
    checks the chain up to it)."""

    seq: int
    hash: str


@dataclass(frozen=True)
class RunOutcome:
    """Where a run stopped: its status (completed, rolled_back, aborted, halted, or
    awaiting a gate or a person), state and message, its whole progress, and the journal's
    head when it stopped (in a home shared with other runs, theirs may be newer)."""

    run_id: str
    status: RunStatus
    state: str
    message: str
    progress: RunProgress
    head: JournalHead


def _outcome(progress: RunProgress, home: Path) -> RunOutcome:
    from otpatch.engine.journal import Journal

    with Journal.open(home, read_only=True) as journal:
        seq, head_hash, _ = journal.last_committed()
    LOG.debug("run %s stopped %s in state %s; journal head #%d", progress.run_id,
              progress.status.value, progress.state, seq)
    return RunOutcome(progress.run_id, progress.status, progress.state, progress.message,
                      progress, JournalHead(seq, head_hash))


# -- the calls ------------------------------------------------------------------------------

def plan(request: PlanRequest) -> Plan:
    """The path, gates, budgets, windows and rollback paths (engine/plan.py); touches
    nothing. Refuses what `run` would refuse before starting: bad files, bad params, a
    window that is over, a firmware whose prerequisites the baseline does not meet."""
    from otpatch.engine import params as run_params
    from otpatch.engine.plan import make_plan

    loaded = runs.load_files(os.fspath(request.playbook), _optional_path(request.inventory))
    runs.refuse_ended_windows(loaded, time.time())
    qualified = runs.refuse_unqualified(loaded, request.home, "plan")
    values = run_params.resolve(loaded.playbook, request.params)
    return make_plan(loaded.playbook, loaded.targets, values, loaded.inventory.windows,
                     qualification=qualified)


def run(request: RunRequest, *, observer: Observer | None = None,
        prompter: Prompter | None = None) -> RunOutcome:
    """Start a run and conduct it until it ends or waits. `observer` is told each state,
    gate, step and result (default: nobody); `prompter` answers attestations in execute
    mode (default: nobody, so the run pauses awaiting a person)."""
    progress = runs.start(
        os.fspath(request.playbook), _optional_path(request.inventory), request.mode,
        dict(request.params), request.home, observer or NullDisplay(),
        host_key=request.host_key, prompter=prompter or NOBODY, operator=request.operator,
        stage=request.stage, evidence=tuple(request.evidence),
        register_keys=request.register_keys)
    return _outcome(progress, request.home)


def resume(request: ResumeRequest, *, observer: Observer | None = None,
           prompter: Prompter | None = None) -> RunOutcome:
    """Continue an interrupted or waiting run from its journal (checked first); InputError
    if it already ended, if its files changed, or another process is running it."""
    progress = runs.resume(request.run_id, request.home, observer or NullDisplay(),
                           host_key=request.host_key, prompter=prompter or NOBODY,
                           operator=request.operator, evidence=tuple(request.evidence),
                           register_keys=request.register_keys)
    return _outcome(progress, request.home)


def status(home: Path, run_id: str | None = None, *, host_key: Path | None = None
           ) -> RunProgress | list[RunProgress]:
    """One run's progress, or every run's in the order they started ([] with no journal).
    Read-only; the journal is checked first (JournalError if damaged, or signed by a key
    other than `host_key`'s when no inventory names the trusted ones)."""
    from otpatch.engine.journal import FILENAME

    home = Path(home)
    key = Path(host_key) if host_key is not None else None
    if run_id is not None:
        return runs.view(run_id, home, host_key=key)
    if not (home / FILENAME).exists():
        return []
    return runs.view_all(home, host_key=key)


def _optional_path(path: str | os.PathLike[str] | None) -> str | None:
    return os.fspath(path) if path is not None else None
