"""`otpatch approve` and `otpatch approvals`: sign a run's sign-off gate, list, add and
revoke approvals (engine/approvals.py says what is signed and what a gate accepts).

On the run's host: `approve RUN_ID --role R --key K --reason T` signs and records at once.
A private key need not travel: `approve RUN_ID --request-out FILE` writes the request,
`approve --request FILE --role R --key K --reason T -o SIGNED` signs it on the approver's own
machine, and `approvals add SIGNED` records it on the run's host."""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from otpatch.engine import gates
from otpatch.modules.contract.errors import EXIT_OK, InputError, clip

DEFAULT_EXPIRY = "24h"
MAX_DOCUMENT = 256 * 1024  # bytes of a request or signed approval file


def register(sub: Any) -> None:
    p = sub.add_parser("approve", help="sign the sign-off gate a run waits at (Ed25519)")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID")
    p.add_argument("--role", metavar="ROLE", help="the role you sign as")
    p.add_argument("--key", metavar="KEYFILE", help="your private key (otpatch keygen --name)")
    p.add_argument("--reason", metavar="TEXT", help="why you approve (recorded and signed)")
    p.add_argument("--expires", default=DEFAULT_EXPIRY, metavar="DURATION",
                   help=f"how long the approval stands (default {DEFAULT_EXPIRY})")
    p.add_argument("--request-out", metavar="FILE", help="write the request to sign elsewhere")
    p.add_argument("--request", metavar="FILE", help="sign a request file (no journal needed)")
    p.add_argument("-o", "--output", metavar="FILE", help="where --request writes the signed one")
    p.set_defaults(func=approve)
    a = sub.add_parser("approvals", help="a run's approvals: RUN_ID | add SIGNED | revoke RUN_ID")
    a.add_argument("words", nargs="+", metavar="RUN_ID | add FILE | revoke RUN_ID")
    a.add_argument("--key", metavar="KEYFILE", help="revoke: the key that signed it")
    a.add_argument("--reason", metavar="TEXT", help="revoke: why")
    a.add_argument("--role", metavar="ROLE", help="revoke: only the approval for this role")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=approvals_command)


# -- approve --------------------------------------------------------------------------------

def approve(args: argparse.Namespace) -> int:
    if args.request:
        return _sign_offline(args)
    if not args.run_id:
        raise InputError("approve: give RUN_ID (or --request FILE -o SIGNED)")
    gate = gates.gate_of(args.run_id, role=args.role)
    req = gates.approvals_module().request(gate.binding)
    if args.request_out:
        _write(args.request_out, req, "approve --request-out")
        print(f"{args.request_out}: the request for {gate.dest} of run {args.run_id} "
              f"(roles {', '.join(gate.asks)}"
              f"{', retrospectively, for the emergency change' if gate.emergency else ''}); "
              "sign it with otpatch approve "
              "--request FILE --role ROLE --key KEYFILE --reason TEXT -o SIGNED")
        return EXIT_OK
    signed = _sign(req, args)
    _record(gate, signed)
    after = " (retrospectively, for the emergency change)" if gate.emergency else ""
    print(f"approved: run {args.run_id} at {gate.dest} as {args.role}{after}, until "
          f"{signed['expires']}")
    print(gates.judgement(args.run_id))
    return EXIT_OK


def _sign_offline(args: argparse.Namespace) -> int:
    if not args.output:
        raise InputError("approve --request FILE: give -o SIGNED (where the signed approval goes)")
    req = _read(args.request, "approve --request")
    kind = gates.approvals_module().REQUEST_KIND
    if req.get("kind") != kind or not isinstance(req.get("binding"), dict):
        raise InputError(f"approve --request {args.request}: not an otpatch approval request")
    signed = _sign(req, args)
    _write(args.output, signed, "approve -o")
    b = req["binding"]
    print(f"{args.output}: signed as {args.role} for run {b.get('run_id')} at {b.get('gate')}, "
          f"until {signed['expires']}; record it on the run's host with otpatch approvals add")
    return EXIT_OK


def _sign(req: dict, args: argparse.Namespace) -> dict:
    from otpatch.engine import keys
    from otpatch.modules.contract.durations import parse_duration

    for flag in ("role", "key", "reason"):
        if not getattr(args, flag) or not str(getattr(args, flag)).strip():
            raise InputError(f"approve: --{flag} is required to sign")
    roles = req["binding"].get("roles")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InputError("approve: the request names no roles: not an otpatch request")
    if args.role not in roles:
        raise InputError(f"approve --role {clip(args.role)}: the gate asks for "
                         f"{', '.join(roles) or 'no role'}")
    try:
        lasts = parse_duration(args.expires)
    except ValueError as e:
        raise InputError(f"approve --expires: {e}") from None
    if lasts <= 0:
        raise InputError("approve --expires: a duration longer than 0s")
    key = keys.load(Path(args.key), "approver key")
    now = datetime.now(timezone.utc)
    return gates.approvals_module().sign_approval(req, key, role=args.role, reason=" ".join(
        args.reason.split()), expires=now + timedelta(seconds=lasts), now=now)


# -- approvals --------------------------------------------------------------------------------

def approvals_command(args: argparse.Namespace) -> int:
    words = args.words
    if words[0] == "add" and len(words) == 2:
        return _add(words[1])
    if words[0] == "revoke" and len(words) == 2:
        return _revoke(words[1], args)
    if len(words) == 1 and words[0] not in ("add", "revoke"):
        return _list(words[0], args.json)
    raise InputError("approvals: expected RUN_ID, add SIGNED, or revoke RUN_ID")


def _list(run_id: str, as_json: bool) -> int:
    if as_json:
        gate = gates.gate_of(run_id, required=False)
        progress = gate.progress
        doc = {"run_id": run_id, "gate": gate.dest, "roles": gate.binding["roles"]
               if gate.binding else [],
               "approvals": [gates.judged_json(j) for j in gates.judged(gate)],
               "revoked": sorted(progress.revoked),
               "emergencies": [e.to_json() for e in gates.standings(gate)]}
        print(json.dumps(doc, indent=2, sort_keys=True))
        return EXIT_OK
    print(gates.judgement(run_id))
    return EXIT_OK


def _add(path: str) -> int:
    signed = _read(path, "approvals add")
    ap = gates.approvals_module()
    if signed.get("kind") != ap.APPROVAL_KIND or not isinstance(signed.get("binding"), dict):
        raise InputError(f"approvals add {path}: not a signed otpatch approval")
    if not ap.signature_ok(signed):
        raise InputError(f"approvals add {path}: its signature does not verify (altered?)")
    run_id = str(signed["binding"].get("run_id"))
    _record(gates.gate_of(run_id, named=str(signed["binding"].get("gate")),
                     role=str(signed.get("role"))), signed)
    print(f"recorded: {path} for run {run_id}")
    print(gates.judgement(run_id))
    return EXIT_OK


def _revoke(run_id: str, args: argparse.Namespace) -> int:
    from otpatch.engine import events as E
    from otpatch.engine import keys

    if not args.key or not args.reason:
        raise InputError("approvals revoke RUN_ID: --key KEYFILE and --reason TEXT are required")
    ap = gates.approvals_module()
    progress = gates.view(run_id)
    key = keys.load(Path(args.key), "approver key")
    mine = [a for a in progress.approvals if a.get("public_key") == key.public_key
            and (not args.role or a.get("role") == args.role)
            and ap.document_id(a) not in progress.revoked]
    if not mine:
        raise InputError(f"approvals revoke {run_id}: no standing approval signed by "
                         f"{keys.short(key.public_key)}"
                         + (f" as {clip(args.role)}" if args.role else ""))
    now = datetime.now(timezone.utc)
    for approval in mine:
        revocation = ap.sign_revocation(approval, key, reason=" ".join(args.reason.split()),
                                        now=now)
        _append(run_id, E.ApprovalRevoked(elapsed=progress.elapsed, revocation=revocation),
                f"approver:{key.public_key[:12]}", _person_of(progress.config, key.public_key))
    print(f"revoked: {len(mine)} approval(s) of run {run_id} signed by "
          f"{keys.short(key.public_key)}")
    print(gates.judgement(run_id))
    return EXIT_OK


# -- recording ------------------------------------------------------------------------------

def _record(gate: gates.Gate, signed: dict) -> None:
    """Record a signed approval for the run waiting at `gate` (every verifiable one is kept:
    who tried to approve what is part of the record); InputError (exit 2) after recording
    one the gate would not accept now, saying why: a wrong key, role, operator, binding or
    expiry."""
    from otpatch.engine import events as E

    run_id = gate.progress.run_id
    if signed["binding"].get("run_id") != run_id:
        raise InputError(f"the approval is for run {signed['binding'].get('run_id')}, "
                         f"not {run_id}: not recorded")
    if not gates.approvals_module().signature_ok(signed):
        raise InputError(f"approval for run {run_id}: its signature does not verify: "
                         "not recorded")
    judged = gates.approvals_module().judge(signed, gate.binding, gate.loaded.inventory.approvers,
                                gate.progress.config.operator, datetime.now(timezone.utc),
                                set(gate.progress.revoked))
    why = judged.refused
    if gate.emergency:  # judged when signed, over the binding the emergency passed with
        from otpatch.engine.emergency_record import refusal

        why = refusal(signed, gate.emergency[0], gate.progress, gate.loaded.inventory.approvers)
    _append(run_id, E.ApprovalAdded(elapsed=gate.progress.elapsed, approval=signed),
            f"approver:{str(signed.get('public_key'))[:12]}", judged.person)
    if why:
        raise InputError(f"approval for run {run_id} at {gate.dest} recorded, but it does "
                         f"not count: {why}")


def _append(run_id: str, event: Any, source: str, person: str | None) -> None:
    """Journal `event`, naming the person whose key signed it (None: no inventory person
    has the key) as the entry's operator."""
    from otpatch.engine.journal import Journal

    with Journal.open(gates.journal_home(), create=False) as journal:
        journal.acting_as(person).record(run_id, event, source=source)


def _person_of(cfg: Any, public_key: str) -> str | None:
    """Who the run's inventory says holds `public_key`, for the revocation's entry. A
    revocation must not wait on the inventory: one that cannot be read, or that changed
    since the run started, names nobody (the entry's source still names the key)."""
    from otpatch.engine.inventory import load_inventory
    from otpatch.modules.contract.errors import OtpatchError

    try:
        inventory = load_inventory(cfg.inventory) if cfg.inventory else None
    except OtpatchError:
        return None
    if inventory is None or inventory.content_hash != cfg.inventory_hash:
        return None
    return next((a.name for a in inventory.approvers
                 if gates.approvals_module().approver_key(a) == public_key), None)


def _read(path: str, what: str) -> dict:
    from otpatch.modules.contract.files import read_regular

    try:
        raw = read_regular(path, MAX_DOCUMENT, what)
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{what} {path}: not UTF-8 text") from None
    except ValueError as e:
        raise InputError(f"{what} {path}: not JSON ({clip(str(e))})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{what} {path}: not a JSON object")
    return doc


def _write(path: str, doc: dict, what: str) -> None:
    from otpatch.modules.contract.files import write_atomic

    write_atomic(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), what)
