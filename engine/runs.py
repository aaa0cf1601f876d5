"""Start, resume and inspect runs: the glue between files, the journal and the conductor.

Underneath engine/api.py (which callers use): everything arrives as an argument (paths,
the host key's path, the observer, the prompter); nothing here reads the environment."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from otpatch.engine import events as E
from otpatch.engine import stagerun
from otpatch.engine.clock import VirtualClock, WallClock
from otpatch.engine.context import RunContext
from otpatch.modules.contract.platform import RunLock, lock_held
from otpatch.engine.prompt import Prompter
from otpatch.engine.record import FINAL, RunProgress, RunStatus, apply, fold
from otpatch.modules.contract.errors import InputError

MODES = ("dry_run", "execute")


@dataclass
class Loaded:
    """The files a run is made of, loaded and validated."""

    playbook: Any
    inventory: Any
    targets: dict[str, tuple[Any, ...]]


def load_files(playbook_path: str, inventory_path: str | None) -> Loaded:
    """Inventory first, then the playbook checked against it (each state's stage is its
    hosts' stage, sign-off roles are held, windows declared and long enough), then targets."""
    from otpatch.engine.inventory import empty_inventory, load_inventory, resolve_targets
    from otpatch.engine.loader import load_playbook

    inventory = load_inventory(inventory_path) if inventory_path else None
    playbook = load_playbook(playbook_path, inventory)
    if inventory is None and playbook.targets:
        raise InputError(f"{playbook_path}: the playbook has targets "
                         f"({', '.join(playbook.targets)}): give an inventory with -i")
    inventory = inventory or empty_inventory()
    return Loaded(playbook, inventory, resolve_targets(playbook, inventory))


def refuse_ended_windows(loaded: Loaded, now: float) -> None:
    """`plan` and `run` (dry runs too) refuse a window that is over: a gate could never open."""
    from datetime import datetime, timezone

    from otpatch.modules.contract.errors import PlaybookError
    from otpatch.engine.windows import ended_windows

    problems = ended_windows(loaded.playbook, loaded.inventory,
                             datetime.fromtimestamp(now, timezone.utc))
    if problems:
        raise PlaybookError(problems)


def refuse_unqualified(loaded: Loaded, home: Path | None, doing: str,
                       stage: str | None = None) -> Any:
    """`plan` and `run` (dry runs too) refuse a firmware whose prerequisites the baseline
    does not meet, or does not know (engine/qualify_check.py), before anything is journaled
    or sent; a stage run judges the hosts of its own stage. The qualification otherwise."""
    from otpatch.engine.qualify_check import refuse_unqualified as check
    from otpatch.engine.stages import effective_stages

    skip = stagerun.out_of_stage(loaded.playbook, effective_stages(
        loaded.playbook, loaded.inventory), stage) if stage else frozenset()
    return check(loaded.playbook, loaded.inventory, loaded.targets, home, doing, skip)


def refuse_non_simulators(loaded: Loaded) -> None:
    """A dry run never reaches a device that is not a simulator: every target host must be
    marked `simulator: true` AND answer as one when its device package can ask (a typo in
    an inventory must not flash a production PLC). Hosts no device package knows (an
    engineering workstation reached by Ansible) stand on the inventory's mark alone."""
    from otpatch.modules.registry import simulator_probe

    hosts = {h.name: h for hosts in loaded.targets.values() for h in hosts}
    problems = [f"{name} is not marked `simulator: true` in the inventory"
                for name, h in sorted(hosts.items()) if not h.simulator]
    for name, host in sorted(hosts.items()):
        answer = simulator_probe(host) if host.simulator else None
        if answer is not None and not answer[0]:
            problems.append(f"{name} does not answer as a simulator: {answer[1]}")
    if problems:
        raise InputError("dry run refused: " + "; ".join(problems))


def start(playbook_path: str, inventory_path: str | None, mode: str, params_given: dict,
          home: Path, display: Any, *, host_key: Path | None = None,
          prompter: Prompter | None = None, operator: str | None = None,
          stage: str | None = None, evidence: tuple[str, ...] = (),
          register_keys: Path | None = None) -> RunProgress:
    """A new run: files loaded and checked, refused before anything is journaled if a
    window is over, (execute) the site register is not signed by keys pinned in
    `register_keys` (engine/siteregister.py), or (dry run) a target is no simulator, then
    conducted until it ends or waits. `host_key`: the key file that signs the journal's
    head (None: unanchored).
    `stage`: a stage run, which runs only that stage's states (and those of none);
    `evidence`: record hashes of the runs its sign-offs approve (engine/evidence.py)."""
    from functools import partial

    from otpatch.engine import params as run_params
    from otpatch.engine.anchor import Anchor
    from otpatch.engine.backup_index import param_value
    from otpatch.engine.journal import FILENAME, Journal, new_run_id
    from otpatch.engine.siteregister import require_register

    assert mode in MODES, mode
    loaded = load_files(playbook_path, inventory_path)
    register = require_register(loaded.inventory, register_keys, mode)
    refuse_ended_windows(loaded, time.time())
    refuse_unqualified(loaded, home, "run", stage)
    if mode == "dry_run":
        refuse_non_simulators(loaded)
    params = run_params.resolve(loaded.playbook, params_given,  # a backup: from the store
                                backups=partial(param_value, home, loaded.inventory))
    stagerun.check(loaded, stage, evidence)
    run_id = new_run_id()
    clock = VirtualClock() if mode == "dry_run" else WallClock()
    config = replace(_config(loaded, mode, params, clock.now(), operator), stage=stage,
                     evidence=[stagerun.record_text(r) for r in evidence] or None,
                     register=register.record())
    anchor = Anchor.for_run(host_key, loaded.inventory)
    if (home / FILENAME).exists():  # adding to a damaged journal would bury the damage
        with Journal.open(home, read_only=True) as journal:
            journal.require_intact((), "run")
    with Journal.open(home) as journal, _run_lock(home, run_id):
        journal.anchor_with(anchor)
        journal.acting_as(operator)  # every entry of the run names who and where (SR 2.8)
        journal.record(run_id, config)
        progress = RunProgress(run_id=run_id, config=config)
        return _conduct(loaded, progress, journal, clock, home, display, prompter,
                        resumed=False)


def resume(run_id: str, home: Path, display: Any, *, host_key: Path | None = None,
           prompter: Prompter | None = None, operator: str | None = None,
           evidence: tuple[str, ...] = (), register_keys: Path | None = None) -> RunProgress:
    """Continue a run that was interrupted or waits, from its journal, with exactly the
    files it started with; the journal is checked (read-only) and trusted first, and an
    execute run's site register again (by the keys pinned in `register_keys`).
    `evidence`: record hashes of evidence runs to add (a production run waiting for them)."""
    from otpatch.engine.anchor import Anchor, require_trusted, trust_root
    from otpatch.engine.journal import Journal, check_run_id
    from otpatch.engine.siteregister import require_register

    check_run_id(run_id)
    added = [stagerun.record_text(r) for r in evidence] or None
    doing = f"resume {run_id}"
    # checked read-only first: a read-write open could fold a damaged WAL into the file
    with Journal.open(home, read_only=True) as journal:
        checked = journal.require_intact([run_id], doing)
    with Journal.open(home, create=False) as journal, _run_lock(home, run_id):
        progress = fold(run_id, journal.entries(run_id))
        if progress.status in FINAL:
            raise InputError(f"run {run_id} already ended ({progress.status.value}): "
                             "nothing to resume")
        cfg = progress.config
        loaded = load_files(cfg.playbook, cfg.inventory)
        same_files(loaded, cfg)
        require_register(loaded.inventory, register_keys, cfg.mode)
        require_trusted(checked.signed, trust_root(host_key, loaded.inventory), doing,
                        journal.path)
        journal.anchor_with(Anchor.for_run(host_key, loaded.inventory))
        # who resumes, when named; else the run's own operator, on whose behalf it goes on
        journal.acting_as(operator if operator is not None else cfg.operator)
        if cfg.mode == "dry_run":
            refuse_non_simulators(loaded)
        clock = (VirtualClock(cfg.clock_start, progress.elapsed) if cfg.mode == "dry_run"
                 else WallClock(cfg.clock_start))
        resumed = E.RunResumed(elapsed=progress.elapsed, pid=os.getpid(),
                               from_status=progress.status.value, operator=operator,
                               evidence=added)
        progress = apply(progress, resumed, journal.record(run_id, resumed).hash)
        return _conduct(loaded, progress, journal, clock, home, display, prompter,
                        resumed=True)


def _conduct(loaded: Loaded, progress: RunProgress, journal: Any, clock: Any, home: Path,
             display: Any, prompter: Prompter | None, resumed: bool) -> RunProgress:
    from otpatch.engine.conductor import Conductor

    # absolute: what a module saves there is recorded by path, and a later step resolves a
    # relative path against the playbook's folder (OTPATCH_HOME may be ./.otpatch)
    run_dir = (home / "runs" / progress.run_id).absolute()
    ctx = RunContext(mode=progress.config.mode, clock=clock, run_id=progress.run_id,
                     run_dir=run_dir, inventory=loaded.inventory,
                     playbook_dir=Path(loaded.playbook.path).resolve().parent,
                     targets=loaded.targets, facts=progress.facts,
                     namespace_targets=_targets_namespace(loaded.targets), prompter=prompter)
    display.attach_clock(clock)
    display.started(progress, loaded.playbook, resumed=resumed)
    conductor = Conductor(loaded.playbook, progress, journal, ctx, display,
                          loaded.inventory.windows,
                          stagerun.evidence_runs(home, progress, loaded))
    progress = conductor.conduct()
    journal.checkpoint_run_end(progress.run_id, progress.elapsed)  # the head signed (anchor.py)
    return progress


def _config(loaded: Loaded, mode: str, params: dict, clock_start: float,
            operator: str | None) -> E.RunStarted:
    pb, inv = loaded.playbook, loaded.inventory
    return E.RunStarted(
        elapsed=0.0, playbook=str(Path(pb.path).resolve()), playbook_hash=pb.content_hash,
        playbook_name=pb.metadata.name, playbook_version=pb.metadata.version,
        inventory=str(Path(inv.path).resolve()) if inv.path else None,
        inventory_hash=inv.content_hash, mode=mode, params=params,
        targets={t: [h.name for h in hosts] for t, hosts in loaded.targets.items()},
        assets={h.name: {"stage": h.stage.value, "serial": h.serial,
                         "part_number": h.part_number, "simulator": h.simulator}
                for hosts in loaded.targets.values() for h in hosts},
        waivers=[{"rule": w.rule, "reason": w.reason} for w in pb.waivers],
        pid=os.getpid(), clock_start=clock_start, operator=operator,
        clock=_clock() if mode == "execute" else None)


def _clock() -> dict[str, Any]:
    """The host clock's synchronisation as the OS reports it (IEC 62443-3-3 SR 2.11)."""
    from otpatch.modules.contract.platform import clock_sync

    return clock_sync()._asdict()


def same_files(loaded: Loaded, cfg: E.RunStarted) -> None:
    """A resumed run must run exactly what it started with."""
    if loaded.playbook.content_hash != cfg.playbook_hash:
        raise InputError(f"{cfg.playbook}: changed since the run started "
                         f"({cfg.playbook_hash} then, {loaded.playbook.content_hash} now)")
    if loaded.inventory.content_hash != cfg.inventory_hash:
        raise InputError(f"{cfg.inventory}: inventory changed since the run started")


def _targets_namespace(targets: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    def host(h: Any) -> dict[str, Any]:
        return {"name": h.name, "vendor": h.vendor, "model": h.model,
                "part_number": h.part_number, "firmware": h.firmware, "serial": h.serial}
    return {name: [host(h) for h in hosts] if len(hosts) != 1 else host(hosts[0])
            for name, hosts in targets.items()}


def _lock_path(home: Path, run_id: str) -> Path:
    return home / "runs" / run_id / "lock"


def _run_lock(home: Path, run_id: str) -> RunLock:
    """One process per run: an exclusive lock on the run's folder
    (modules/contract/platform.py; freed by the OS when the process dies, so a killed run
    can be resumed at once)."""
    return RunLock(_lock_path(home, run_id), f"run {run_id} is running in another process")


def is_running(home: Path, run_id: str) -> bool:
    """Whether some process holds the run's lock right now."""
    return lock_held(_lock_path(home, run_id))


def view(run_id: str, home: Path, *, host_key: Path | None = None) -> RunProgress:
    """A run's progress from the journal, with `interrupted` for a dead, unfinished run.
    Read-only; JournalError if the journal is damaged (checked before the fold), or its
    checkpoints are signed by a key other than the one at `host_key`."""
    from otpatch.engine.journal import Journal, check_run_id

    check_run_id(run_id)
    with Journal.open(home, read_only=True) as journal:
        _require_trusted_intact(journal, [run_id], f"status {run_id}", host_key)
        progress = fold(run_id, journal.entries(run_id))
    return _interrupted(progress, home)


def view_all(home: Path, *, host_key: Path | None = None) -> list[RunProgress]:
    """Every run's progress, in the order they started (read-only, checked first)."""
    from otpatch.engine.journal import Journal

    with Journal.open(home, read_only=True) as journal:
        _require_trusted_intact(journal, None, "status", host_key)
        folded = [fold(r.run_id, journal.entries(r.run_id)) for r in journal.runs()]
    return [_interrupted(p, home) for p in folded]


def _require_trusted_intact(journal: Any, run_ids: list[str] | None, doing: str,
                            host_key: Path | None) -> None:
    """The quick check, and its checkpoints signed by this host's key when it has one."""
    from otpatch.engine.anchor import require_trusted, trust_root

    checked = journal.require_intact(run_ids, doing)
    require_trusted(checked.signed, trust_root(host_key), doing, journal.path)


def _interrupted(progress: RunProgress, home: Path) -> RunProgress:
    """A running run whose process is gone is interrupted (what `status` says; never
    journaled: resume makes it running again)."""
    if progress.status is RunStatus.RUNNING and not is_running(home, progress.run_id):
        return replace(progress, status=RunStatus.INTERRUPTED)
    return progress
