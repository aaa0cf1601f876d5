"""`otpatch attest RUN_ID --role ROLE --key KEYFILE [--no]`: a signed answer to the
attestation a waiting run asks for, instead of an answer at its terminal (IEC 62443-3-3
SR 2.12: the person's own key says who confirmed what). The resumed step takes it; the
record shows it was signed, and by whose key."""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otpatch.modules.contract.errors import EXIT_OK, InputError, clip

ATTEST_MODULE = "core.attest"


def register(sub: Any) -> None:
    p = sub.add_parser("attest", help="sign the attestation a waiting run asks for")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--role", required=True, metavar="ROLE", help="the role you attest as")
    p.add_argument("--key", required=True, metavar="KEYFILE", help="your private key")
    p.add_argument("--statement", metavar="TEXT",
                   help="the statement you confirm (checked against what the run asks)")
    p.add_argument("--no", action="store_true", help="answer no: the step then fails")
    p.set_defaults(func=attest)


def attest(args: argparse.Namespace) -> int:
    from otpatch.engine import approvals, keys
    from otpatch.engine import events as E
    from otpatch.engine.journal import Journal, default_home

    home, progress = _waiting_run(args.run_id)
    step = _waiting_step(home, args.run_id)
    if args.role != step["role"]:
        raise InputError(f"attest --role {clip(args.role)}: the run asks {step['role']} "
                         f"to confirm: {step['statement']}")
    said = " ".join(str(args.statement).split())
    if args.statement is not None and said != " ".join(step["statement"].split()):
        raise InputError(f"attest --statement: the run asks to confirm {step['statement']!r}, "
                         f"not {clip(args.statement)!r}")
    key = keys.load(Path(args.key), "attester key")
    person = [a for a in _approvers(progress.config)
              if approvals.approver_key(a) == key.public_key and args.role in a.roles]
    if not person:
        raise InputError(f"attest: the key {keys.short(key.public_key)} is no inventory "
                         f"person's who holds {args.role}: not recorded")
    doc = approvals.sign_attestation(step, key, confirmed=not args.no,
                                     now=datetime.now(timezone.utc))
    signed = E.AttestationSigned(elapsed=step["elapsed"], attestation=doc)
    with Journal.open(default_home(), create=False) as journal:  # the entry names the signer
        journal.acting_as(person[0].name).record(args.run_id, signed,
                                                 source=f"approver:{key.public_key[:12]}")
    answer = "no" if args.no else "yes"
    print(f"attested ({answer}) by {person[0].name} as {args.role} for run {args.run_id} at "
          f"{step['state']}: {step['statement']}; otpatch resume {args.run_id} takes it")
    return EXIT_OK


def _waiting_run(run_id: str) -> tuple[Path, Any]:
    """The journal's home and the run's progress (the journal checked first); InputError
    unless it is an execute run waiting."""
    from otpatch.engine import runs
    from otpatch.engine.journal import default_home
    from otpatch.engine.keys import host_key_path
    from otpatch.engine.record import RunStatus

    home = default_home()
    progress = runs.view(run_id, home, host_key=host_key_path(home))
    if progress.status is not RunStatus.AWAITING or progress.config.mode != "execute":
        raise InputError(f"run {run_id} is not an execute run waiting for a person "
                         f"({progress.config.mode}, {progress.status.value})")
    return home, progress


def _waiting_step(home: Path, run_id: str) -> dict[str, Any]:
    """The attestation the run paused at: its place, statement and role as asked. A guided
    step of any module records what it asked (`asks`); a core.attest step paused by an
    older otpatch, its arguments."""
    from otpatch.engine.journal import Journal

    with Journal.open(home, read_only=True) as journal:
        paused = [e.event() for e in journal.entries(run_id) if e.event_type == "run_paused"]
    step = paused[-1].step if paused else None
    asks = _asked(step)
    if asks is None or "visit" not in step:
        raise InputError(f"run {run_id} is not waiting at an attestation (a person's "
                         "confirmation: core.attest or a guided step)")
    return {"run_id": run_id, "state": step["state"], "visit": step["visit"],
            "index": step["index"], "statement": asks["statement"], "role": asks["role"],
            "elapsed": paused[-1].elapsed}


def _asked(step: Any) -> dict[str, str] | None:
    if not isinstance(step, dict):
        return None
    asks = step.get("asks")
    if isinstance(asks, dict) and asks.get("statement") and asks.get("role"):
        return {"statement": str(asks["statement"]), "role": str(asks["role"])}
    args = step.get("args")
    if step.get("module") == ATTEST_MODULE and isinstance(args, dict):
        return {"statement": str(args["statement"]), "role": str(args["role"])}
    return None


def _approvers(cfg: Any) -> tuple[Any, ...]:
    """The people of the run's own inventory (refused if it changed since the run began,
    or, for an execute run, if its site register is not signed: engine/siteregister.py)."""
    from otpatch.engine import runs
    from otpatch.engine.registerkeys import pinned_keys_path
    from otpatch.engine.siteregister import require_register

    loaded = runs.load_files(cfg.playbook, cfg.inventory)
    runs.same_files(loaded, cfg)
    require_register(loaded.inventory, pinned_keys_path(), cfg.mode)
    return tuple(loaded.inventory.approvers)
