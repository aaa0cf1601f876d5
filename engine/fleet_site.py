"""One site's side of a fleet rollout (issue 17): what the otpatch.fleet collection's
`site_rollout` and `site_status` modules return, computed here, AT the site, by the site's
own otpatch (engine/api.py), and printed as JSON by `otpatch fleet site-rollout|site-status
--json` for a site host that has only the CLI. Both give the same documents.

The fleet decides only when a site runs; the site decides whether it may: its playbook must
be the one the fleet pinned (its SHA-256), its window must be open and long enough for the
path's worst case, and its gates are its own (a sign-off is an Ed25519 approval recorded in
its journal; nothing the fleet sends can stand in for one). A closed or too-short window
defers the site (not a failure); a missing sign-off fails it with the roles missing, so the
rollout stops for the humans. The fleet follows the site's windows in both modes, so a fleet
dry run rehearses the schedule too (a site's own `otpatch run` assumes windows open)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.errors import InputError, clip

FLEET_MODES = ("observe", "execute")
SIGNOFF_WAIT = "awaiting_signoff"


@dataclass(frozen=True)
class SiteRollout:
    """What site_rollout was asked: the procedure, the site's files and home, how."""

    playbook: str
    inventory: str
    home: Path
    playbook_sha256: str | None = None  # the fleet's pin; None: not checked
    params: Mapping[str, str] = field(default_factory=dict)
    mode: str = "dry_run"  # dry_run | execute
    fleet_mode: str = "execute"  # observe: status only, never a run
    check: bool = False  # Ansible's check mode: plan only, nothing touched
    stage: str | None = None
    operator: str | None = None
    host_key: Path | None = None
    evidence: tuple[str, ...] = ()
    resume: bool = False
    run_id: str | None = None
    resume_paused: bool = False  # execute: continue the newest paused run of this playbook
    register_keys: Path | None = None

    def __post_init__(self) -> None:
        if self.fleet_mode not in FLEET_MODES:
            raise InputError(f"fleet_mode {clip(repr(self.fleet_mode))}: expected one of "
                             f"{', '.join(FLEET_MODES)}")
        if self.resume and not self.run_id:
            raise InputError("resume: true needs run_id (the site run to continue)")


def rollout(ask: SiteRollout, now: float | None = None) -> dict[str, Any]:
    """Run (or plan, observe, defer, resume) the procedure at this site; the module's
    result: changed, failed, state, msg, and run_id, status, devices, journal_head, record
    (and resumed) when a run went; an observing site's status."""
    now = time.time() if now is None else now
    pinned = _pin_refused(ask)
    if pinned:
        return {"changed": False, "failed": True, "state": "refused", "msg": pinned}
    if ask.fleet_mode == "observe":
        return _observed(ask, now)
    ask = _paused_run(ask)
    if ask.resume and ask.check:
        return {"changed": False, "failed": False, "state": "planned", "run_id": ask.run_id,
                "resumed": True,
                "msg": f"check mode: would resume run {ask.run_id}; nothing touched"}
    if ask.resume:  # its own gates judge its window again
        return _resumed(ask)
    deferred = window_deferral(_loaded(ask), ask.stage, now)
    if deferred:
        return {"changed": False, "failed": False, "state": "deferred", "msg": deferred}
    if ask.check:
        return _planned(ask)
    return _ran(ask)


def _pin_refused(ask: SiteRollout) -> str:
    from otpatch.engine.fleet_status import playbook_sha256

    if ask.playbook_sha256 is None:
        return ""
    held = playbook_sha256(ask.playbook)
    if held == ask.playbook_sha256:
        return ""
    return (f"{clip(ask.playbook)} here is {held}, the fleet pinned {ask.playbook_sha256}: "
            "not run")


def _observed(ask: SiteRollout, now: float) -> dict[str, Any]:
    """An observing site: its status (engine/fleet_status.py) and nothing started; the
    journal's head as journal_head, so the fleet journal records where the site stood."""
    from otpatch.engine.fleet_status import site_status

    status = site_status(ask.inventory, ask.home, now=now)
    return {**status, "changed": False, "failed": False, "state": "observed",
            "journal_head": status["journal"]["head"],
            "msg": "observing site: status and records only, no run started"}


def _paused_run(ask: SiteRollout) -> SiteRollout:
    """With resume_paused, an execute rollout continues the newest execute run of this
    playbook (its content hash) that has not ended, instead of starting another beside it;
    the ask unchanged when there is none (or a run id was given, or this is a dry run)."""
    from dataclasses import replace

    from otpatch.engine.fleet_status import playbook_sha256, resumable_runs

    if not ask.resume_paused or ask.resume or ask.mode != "execute":
        return ask
    pinned = ask.playbook_sha256 or playbook_sha256(ask.playbook)
    paused = [r for r in resumable_runs(ask.home) if r["playbook_sha256"] == pinned]
    return replace(ask, resume=True, run_id=paused[-1]["run_id"]) if paused else ask


def _loaded(ask: SiteRollout) -> Any:
    from otpatch.engine import runs

    return runs.load_files(ask.playbook, ask.inventory)


def window_deferral(loaded: Any, stage: str | None, now: float) -> str:
    """Why the site must wait for its window: the first window the run's path requires is
    not open now, or what is left of it cannot hold the path's worst case; "" when it can
    (or the procedure requires none)."""
    from otpatch.engine.plan import path_need
    from otpatch.engine.windows import requirements
    from otpatch.modules.contract.durations import format_duration

    at = datetime.fromtimestamp(now, timezone.utc)
    for state, req in requirements(loaded.playbook):
        if stage is not None and state.stage not in (stage, None):
            continue
        window = loaded.inventory.windows.get(req.window)
        if window is None:
            return ""  # load_files refused that already
        span = f"{window.start.isoformat()} .. {window.end.isoformat()}"
        if not window.contains(at):
            when = "opens" if at < window.start else "ended"
            return (f"window {window.name} ({span}) is not open at "
                    f"{at.isoformat(timespec='seconds')}: it {when} "
                    f"{(window.start if at < window.start else window.end).isoformat()}")
        left = (window.end - at).total_seconds()
        need = path_need(loaded.playbook, state.name, window.name, left).worst_case
        if need > left:
            return (f"window {window.name} ({span}) has {format_duration(left)} left, the "
                    f"path from {state.name} needs {format_duration(need)} in the worst case")
        return ""
    return ""


def _planned(ask: SiteRollout) -> dict[str, Any]:
    from otpatch.engine import api

    plan = api.plan(api.PlanRequest(ask.playbook, ask.inventory, dict(ask.params),
                                    home=ask.home))
    path = [p.name for p in plan.path]
    return {"changed": False, "failed": False, "state": "planned",
            "msg": f"check mode: planned {plan.name} {plan.version} ({' -> '.join(path)}); "
                   "no device touched", "path": path}


def _ran(ask: SiteRollout) -> dict[str, Any]:
    from otpatch.engine import api

    outcome = api.run(api.RunRequest(
        ask.playbook, ask.inventory, dict(ask.params), mode=ask.mode, operator=ask.operator,
        home=ask.home, host_key=ask.host_key, stage=ask.stage, evidence=ask.evidence,
        register_keys=ask.register_keys))
    return outcome_result(outcome, ask.home)


def _resumed(ask: SiteRollout) -> dict[str, Any]:
    from otpatch.engine import api

    outcome = api.resume(api.ResumeRequest(
        str(ask.run_id), ask.home, host_key=ask.host_key, operator=ask.operator,
        evidence=ask.evidence, register_keys=ask.register_keys))
    return {**outcome_result(outcome, ask.home), "resumed": True}


def outcome_result(outcome: Any, home: Path) -> dict[str, Any]:
    """A run's outcome as the module returns it."""
    from otpatch.engine import runview
    from otpatch.engine.record import RunStatus

    progress = outcome.progress
    devices = runview.device_outcomes(progress, runview.entries_of(home, outcome.run_id))
    base = {"run_id": outcome.run_id, "status": outcome.status.value, "devices": devices,
            "journal_head": {"seq": outcome.head.seq, "hash": outcome.head.hash},
            "record": runview.record_hash(progress, home), "msg": outcome.message}
    execute = progress.config.mode == "execute"
    changed = execute and any(d["outcome"] != "not_changed" for d in devices)
    if outcome.status is RunStatus.COMPLETED:
        return {**base, "changed": changed, "failed": False, "state": "completed",
                "firmware": _firmware_after(progress, home)}
    if outcome.status is RunStatus.AWAITING:
        return {**base, **_waiting(progress, home)}
    return {**base, "changed": changed, "failed": True, "state": outcome.status.value}


def _firmware_after(progress: Any, home: Path) -> dict[str, Any]:
    """The firmware each host of the site reads now that the run has ended, as site_status
    gives it (the fleet's post-task asserts the target versions on it)."""
    from otpatch.engine.fleet_status import firmware
    from otpatch.engine.inventory import load_inventory

    return firmware(home, load_inventory(progress.config.inventory))


def _waiting(progress: Any, home: Path) -> dict[str, Any]:
    """A run that waits: at a sign-off gate (failed, the roles missing: the rollout stops
    for the humans), at a window (deferred), or at something else a person must do."""
    from otpatch.engine.fleet_status import signoff_wait

    waits = signoff_wait(progress, home)
    if waits is not None:
        gate, missing = waits
        return {"changed": False, "failed": True, "state": SIGNOFF_WAIT, "gate": gate,
                "missing_roles": list(missing),
                "msg": f"gate {gate} waits for the sign-off of {', '.join(missing)} (sign at "
                       f"the site: otpatch approve {progress.run_id}): {progress.message}"}
    if progress.message.startswith("window "):
        return {"changed": False, "failed": False, "state": "deferred"}
    return {"changed": False, "failed": True, "state": "awaiting"}
