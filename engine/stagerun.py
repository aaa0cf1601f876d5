"""Stage runs and their evidence (issue 11): a change is a chain of separate runs, a lab
run, a staging run and a production run (`otpatch run --stage S`), each passing over the
states of the other stages; a production sign-off names the lab and staging runs by their
record hashes (`--evidence RECORD`). What engine/runs.py, the conductor and `otpatch
approve` share: the checks before a stage run starts, what it does next, and what its
sign-off binds (the evidence gathered by engine/evidence.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from otpatch.modules.contract.errors import InputError, clip

STAGES = ("lab", "staging", "production")


def check(loaded: Any, stage: str | None, evidence: tuple[str, ...]) -> None:
    """A stage run names a stage the playbook has states of; an evidence record is a
    sha256 hash (hex, `sha256:` optional): InputError before anything is journaled."""
    from otpatch.engine.stages import effective_stages

    if stage is not None:
        if stage not in STAGES:
            raise InputError(f"--stage {clip(repr(stage))}: expected one of {', '.join(STAGES)}")
        stages = effective_stages(loaded.playbook, loaded.inventory)
        if not any(getattr(stages.stage(s), "value", None) == stage
                   for s in loaded.playbook.states.values()):
            raise InputError(f"--stage {stage}: {loaded.playbook.path} has no {stage} states")
    for record in evidence:
        record_text(record)


def record_text(record: str) -> str:
    """An --evidence record hash in its one shown form (sha256:<hex>); InputError if not."""
    from otpatch.engine.evidence_store import plain, shown

    try:
        return shown(plain(record))
    except InputError:
        raise InputError(f"--evidence {clip(repr(record))}: not a record hash (sha256:<64 hex "
                         "digits>, as `otpatch status RUN_ID` shows it)") from None


def next_action(loaded: Any, progress: Any) -> Any:
    """What the run would do next from `progress` (engine/decide.py), its stage run's
    skipped states taken into account, as the conductor decides it."""
    from otpatch.engine import decide
    from otpatch.engine.stages import effective_stages
    from otpatch.modules import registry

    stages = effective_stages(loaded.playbook, loaded.inventory)
    return decide.next_action(loaded.playbook, progress,
                              lambda m: registry.get(m).changes_device,
                              out_of_stage(loaded.playbook, stages, progress.config.stage))


def gate_binding(progress: Any, loaded: Any, gate: str, home: Path,
                 now: float) -> tuple[dict[str, Any], tuple[str, ...]]:
    """What an approval at `gate` binds now, and why any evidence is missing: computed as
    the conductor computes it (for `otpatch approve` and `approvals`)."""
    from otpatch.engine import approvals
    from otpatch.engine.evidence import gather, utc
    from otpatch.engine.stages import effective_stages

    stages = effective_stages(loaded.playbook, loaded.inventory)
    found = gather(progress, loaded.playbook, approvals.signoff_of(loaded.playbook, gate),
                   lambda name: stages.stage(loaded.playbook.states[name])
                   if name in loaded.playbook.states else None,
                   evidence_runs(home, progress, loaded), loaded.inventory, utc(now))
    return (approvals.binding(progress, loaded.playbook, loaded.inventory, loaded.targets,
                              gate, found), found.problems)


def evidence_runs(home: Path, progress: Any, loaded: Any) -> dict[str, Any]:
    """The evidence runs the run was given, loaded once (engine/evidence.py)."""
    from otpatch.engine.anchor import trust_root
    from otpatch.engine.evidence import load_runs

    records = progress.config.evidence or []
    return load_runs(home, list(records), trust_root(None, loaded.inventory)) if records \
        else {}


def out_of_stage(pb: Any, stages: Any, run_stage: str | None) -> frozenset[str]:
    """The states a stage run passes over: each whose stage is another one (a state that
    touches no device and names no stage runs in every stage run)."""
    if run_stage is None:
        return frozenset()
    return frozenset(name for name, state in pb.states.items()
                     if stages.stage(state) is not None
                     and stages.stage(state).value != run_stage)
