"""Which sign-off gate a run waits at (or one an emergency opened whose roles are still
due), what is bound there, and how the approvals recorded for it stand: what `otpatch
approve` signs against and what `otpatch approvals RUN_ID` lists."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.errors import InputError

class Gate:
    """The sign-off gate a run waits at, or one an emergency opened whose roles are still
    due (`emergency`: its EmergencyOpened and standing): its progress, the state and what
    is bound there."""

    def __init__(self, progress: Any, dest: str | None, binding: dict | None, loaded: Any,
                 emergency: tuple[Any, Any] | None = None):
        self.progress, self.dest, self.binding, self.loaded = progress, dest, binding, loaded
        self.emergency = emergency

    @property
    def asks(self) -> tuple[str, ...]:
        """The roles it still asks for."""
        if self.emergency:
            return self.emergency[1].still_due
        return tuple(self.binding["roles"]) if self.binding else ()


def approvals_module() -> Any:
    from otpatch.engine import approvals

    return approvals


def journal_home() -> Path:
    from otpatch.engine.journal import default_home

    return default_home()


def view(run_id: str) -> Any:
    from otpatch.engine import runs
    from otpatch.engine.keys import host_key_path

    home = journal_home()
    return runs.view(run_id, home, host_key=host_key_path(home))


def gate_of(run_id: str, required: bool = True, *, named: str | None = None,
             role: str | None = None) -> Gate:
    """The sign-off to sign: the gate the run's next edge leads into or (required) a gate
    an emergency opened whose roles are still due, even after the run ended; an emergency
    comes first (its time runs), `named` (the gate a signed document names) and `role`
    choose among several."""
    from otpatch.engine import runs

    progress = view(run_id)
    cfg = progress.config
    loaded = runs.load_files(cfg.playbook, cfg.inventory)
    runs.same_files(loaded, cfg)
    if required and cfg.mode != "execute":
        raise InputError(f"run {run_id} is a dry run: its sign-offs are simulated (a "
                         "rehearsal, never an approval); nothing to sign")
    if required:  # the approver keys trusted here are the site register's: signed, or none
        require_register(loaded.inventory, cfg.mode)
    due = emergency_gates(progress, loaded) if required else []
    try:
        waiting = waiting_gate(run_id, progress, loaded, required)
    except InputError:
        if not due:
            raise
        waiting = None
    if not due:
        return waiting
    open_gates = due + [g for g in (waiting,) if g is not None and g.dest]
    fit = [g for g in open_gates if g.dest == named] if named else []
    return (fit or [g for g in open_gates if role in g.asks] or open_gates)[0]


def waiting_gate(run_id: str, progress: Any, loaded: Any, required: bool) -> Gate:
    """The run's next edge, if it leads into a sign-off gate, with what it binds."""
    from dataclasses import replace

    from otpatch.engine import stagerun
    from otpatch.engine.record import FINAL, RunStatus

    if progress.status in FINAL:
        if required:
            raise InputError(f"run {run_id} already ended ({progress.status.value}): "
                             "nothing to approve")
        return Gate(progress, None, None, loaded)
    waiting = replace(progress, status=RunStatus.RUNNING)
    action = stagerun.next_action(loaded, waiting)
    dest = getattr(action, "dest", None)
    if dest is None or approvals_module().signoff_of(loaded.playbook, dest) is None:
        if required:
            raise InputError(f"run {run_id} is not waiting at a sign-off gate (it stands at "
                             f"{progress.state}, {progress.status.value})")
        return Gate(progress, None, None, loaded)
    bound, missing = stagerun.gate_binding(progress, loaded, dest, journal_home(),
                                       datetime.now(timezone.utc).timestamp())
    req = approvals_module().signoff_of(loaded.playbook, dest)
    if required and req.over and bound["evidence"] is None:
        why = "; ".join(missing) or f"the evidence states {', '.join(req.over)} are not completed"
        raise InputError(f"run {run_id}, gate {dest}: no evidence to approve yet: {why}")
    return Gate(progress, dest, bound, loaded)


def emergency_gates(progress: Any, loaded: Any) -> list[Gate]:
    """The gates emergencies opened whose retrospective approval is not complete."""
    from otpatch.engine.emergency_record import due_openings

    return [Gate(progress, opened.gate, dict(opened.binding), loaded, (opened, standing))
            for opened, standing in due_openings(progress, loaded.inventory.approvers,
                                                 datetime.now(timezone.utc))]


def standings(gate: Gate) -> list[Any]:
    """Each emergency of the run, judged now (engine/emergency.py standing)."""
    from otpatch.engine.emergency_record import standing

    return standing(gate.progress, gate.loaded.inventory.approvers, datetime.now(timezone.utc))


def require_register(inventory: Any, mode: str) -> None:
    from otpatch.engine.registerkeys import pinned_keys_path
    from otpatch.engine.siteregister import require_register

    require_register(inventory, pinned_keys_path(), mode)


def judged(gate: Gate) -> list[Any]:
    ap = approvals_module()
    if gate.binding is None:
        return []
    now = datetime.now(timezone.utc)
    return [ap.judge(d, gate.binding, gate.loaded.inventory.approvers,
                     gate.progress.config.operator, now, set(gate.progress.revoked))
            for d in gate.progress.approvals]


def judged_json(j: Any) -> dict:
    return {"role": j.role, "person": j.person, "counts": not j.refused,
            "refused": j.refused or None, "reason": j.doc.get("reason"),
            "signed_at": j.doc.get("signed_at"), "expires": j.doc.get("expires")}


def judgement(run_id: str) -> str:
    """What stands and what is missing at the gate the run waits at (what the gate says)."""
    from otpatch.modules.contract.errors import InputError as _Refused

    try:
        gate = gate_of(run_id, required=False)
    except _Refused as e:
        return f"run {run_id}: {e}"
    from otpatch.engine.emergency_record import describe

    emergencies = describe(standings(gate))
    if gate.binding is None:
        return "\n".join([f"run {run_id}: not waiting at a sign-off gate "
                          f"({gate.progress.status.value} at {gate.progress.state}); "
                          f"{len(gate.progress.approvals)} approval(s) recorded", *emergencies])
    ap = approvals_module()
    lines = [f"run {run_id}: gate {gate.dest} needs {' + '.join(gate.binding['roles'])}",
             *evidence_lines(gate.binding)]
    for j in judged(gate):
        state = "counts" if not j.refused else f"does not count: {j.refused}"
        lines.append(f"  {j.role} by {j.person or 'an unknown key'}, signed "
                     f"{j.doc.get('signed_at')}, until {j.doc.get('expires')}: {state}")
    passed, detail = ap.evaluate(gate.binding["roles"], gate.progress.approvals, gate.binding,
                                 gate.loaded.inventory.approvers, gate.progress.config.operator,
                                 datetime.now(timezone.utc), set(gate.progress.revoked))
    lines.append(f"  ready: otpatch resume {run_id}" if passed
                 else f"  {emergency_path(gate, detail)}")
    return "\n".join(lines + emergencies)


def evidence_lines(bound: Mapping[str, Any]) -> list[str]:
    """What the approval approves: each evidence state, the run that completed it, where
    that run's record was found and the devices it ran on."""
    out = []
    for item in bound.get("evidence") or ():
        where = (f"run {item['run_id']}, record {item['record']}, ended {item.get('ended')}, "
                 f"{item.get('source')}" if item.get("record") else "this run")
        devices = ", ".join(f"{d['asset']} ({d['serial']})" for d in item.get("devices", ()))
        out.append(f"  evidence {item['state']} ({item.get('stage') or 'no stage'}): {where}"
                   + (f"; on {devices}" if devices else ""))
    return out


def emergency_path(gate: Gate, detail: str) -> str:
    """What the waiting gate's emergency path would do on resume, after `detail` (the
    normal dual approval's refusal); `detail` alone when it declares none."""
    from otpatch.engine.emergency import path

    req = approvals_module().signoff_of(gate.loaded.playbook, gate.dest)
    if req is None or req.emergency is None:
        return detail
    p = gate.progress
    opened, why = path(req, p.approvals, gate.binding, gate.loaded.inventory.approvers,
                       p.config.operator, datetime.now(timezone.utc), set(p.revoked), p.facts)
    if opened is None:
        return f"{detail}; {why}"
    return f"ready on the emergency path ({opened.preview()}): otpatch resume {p.run_id}"
