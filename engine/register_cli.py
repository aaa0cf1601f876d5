"""`otpatch register sign|verify|show -i INVENTORY`: sign the inventory's site register with
a pinned key, and say whether execute runs may trust it (engine/siteregister.py).

`sign` refuses, before writing anything, a key the pinned register keys do not hold in the
role claimed; signatures over an older register are dropped (and said so), a person signing
again replaces their own. `verify` exits 0 when the register is valid, 3 when it is not
(what is missing is people's signatures: the exit code of a run waiting for a person), 2
for bad input."""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otpatch.modules.contract.errors import EXIT_GATE_REFUSED, EXIT_OK, InputError, clip


def register(sub: Any) -> None:
    p = sub.add_parser("register", help="the site register: sign it, verify it, show it")
    rsub = p.add_subparsers(dest="register_command", required=True, metavar="ACTION")
    s = rsub.add_parser("sign", help="sign the inventory's register with a pinned key")
    _inventory(s)
    s.add_argument("--key", required=True, metavar="KEYFILE", help="your private key")
    s.add_argument("--role", required=True, metavar="ROLE",
                   help="ot_security_officer or process_owner, as your key is pinned")
    s.set_defaults(func=sign)
    v = rsub.add_parser("verify", help="whether execute runs may trust the register "
                                       "(exit 0 valid, 3 not signed)")
    _inventory(v)
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=verify)
    w = rsub.add_parser("show", help="print the register as it would be signed")
    _inventory(w)
    w.set_defaults(func=show)


def _inventory(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")


# -- sign -----------------------------------------------------------------------------------

def sign(args: argparse.Namespace) -> int:
    from otpatch.engine import keys
    from otpatch.engine import siteregister as sr
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.registerdiff import differences
    from otpatch.modules.contract.files import write_atomic

    inventory = load_inventory(args.inventory)
    if args.role not in sr.SIGNING_ROLES:
        raise InputError(f"register sign --role {clip(args.role)}: a register is signed as "
                         f"{' or '.join(sr.SIGNING_ROLES)}: nothing written")
    pinned = _pinned()
    key = keys.load(Path(args.key), "signer key")
    person = _pinned_person(pinned, key, args.role)
    file = sr.register_file(inventory.path)
    previous = _previous(file)
    current = sr.site_register(inventory)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    doc, dropped, replaced = sr.signed_document(previous, current, key, person.name,
                                                args.role, now)
    write_atomic(file, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(),
                 "register sign")
    print(f"signed: {file} by {person.name} as {args.role} (register {doc['register_hash']})")
    if dropped:
        changed = differences(previous["register"], current)
        print(f"dropped {dropped} signature(s) over an older register ({'; '.join(changed[:3])}"
              f"{' ...' if len(changed) > 3 else ''})")
    if replaced:
        print(f"replaced {person.name}'s earlier signature")
    print(_verdict(sr.check_register(inventory, _keys_path())))
    return EXIT_OK


def _keys_path() -> Path:
    from otpatch.engine.registerkeys import pinned_keys_path

    return pinned_keys_path()


def _pinned() -> Any:
    from otpatch.engine.registerkeys import UNSIGNED, RegisterUnsigned, load_pinned

    try:
        return load_pinned(_keys_path())
    except RegisterUnsigned as e:
        raise InputError(f"register sign: {str(e).removeprefix(UNSIGNED)}: nothing "
                         "written") from None


def _pinned_person(pinned: Any, key: Any, role: str) -> Any:
    """The pinned signer holding `key` in `role`; InputError otherwise (nothing written)."""
    from otpatch.engine.keys import short

    person = pinned.by_key(key.public_key)
    if person is None:
        raise InputError(f"register sign: the key {short(key.public_key)} ({key.path}) is "
                         f"not pinned in {pinned.path}: nothing written")
    if role not in person.roles:
        raise InputError(f"register sign: {person.name} is pinned without {role} in "
                         f"{pinned.path} (pinned roles: {', '.join(person.roles)}): "
                         "nothing written")
    return person


def _previous(file: Path) -> dict | None:
    from otpatch.engine.registerkeys import UNSIGNED, RegisterUnsigned
    from otpatch.engine.siteregister import read_signed

    try:
        return read_signed(file)
    except RegisterUnsigned as e:
        raise InputError(f"register sign: {str(e).removeprefix(UNSIGNED)}: nothing written "
                         "(move it aside to sign afresh)") from None


def _verdict(status: Any) -> str:
    from otpatch.engine.siteregister import SIGNING_ROLES

    if not status.valid:
        return status.reason
    people = " and ".join(f"{name} ({role})" for name, role in zip(status.signers,
                                                                  SIGNING_ROLES))
    return f"site register: valid, signed by {people}"


# -- verify and show ------------------------------------------------------------------------

def verify(args: argparse.Namespace) -> int:
    from otpatch.engine import siteregister as sr
    from otpatch.engine.inventory import load_inventory

    inventory = load_inventory(args.inventory)
    status = sr.check_register(inventory, _keys_path())
    current = sr.site_register(inventory)
    if args.json:
        _print_json({"inventory": args.inventory, "valid": status.valid,
                     "reason": status.reason or None, "hash": status.hash,
                     "signers": list(status.signers), "register": current,
                     "file": status.file, "signatures": [_verdict_json(v)
                                                         for v in status.verdicts],
                     "pinned_keys": {"path": status.pinned_keys,
                                     "protection": status.protection},
                     "note": status.note or None})
    else:
        print("\n".join(_report(args.inventory, current, status)))
    return EXIT_OK if status.valid else EXIT_GATE_REFUSED


def _report(inventory: str, register: dict, status: Any) -> list[str]:
    from otpatch.engine.keys import short

    lines = [f"site register of {inventory}: {status.hash}", "  approvers:"]
    lines += [f"    {a['name']}: {', '.join(a['roles'])}, key "
              f"{short(a['public_key']) if a['public_key'] else '(none)'}"
              for a in register["approvers"]] or ["    none"]
    lines.append("  hosts:")
    lines += [f"    {h['name']}: {h['stage']}, serial {h['serial'] or '(none)'}, part number "
              f"{h['part_number'] or '(none)'}{', simulator' if h['simulator'] else ''}"
              for h in register["hosts"]] or ["    none"]
    lines.append("  journal hosts: " + (", ".join(
        f"{j['name']} ({short(j['public_key'])})" for j in register["journal_hosts"])
        or "none"))
    ts = register["time_sync"]
    lines.append("  time policy: " + (f"{'required' if ts['required'] else 'not required'}, "
                                      f"max_error {ts['max_error']}s" if ts else "none"))
    lines.append(f"signed register: {status.file}")
    lines += [f"  {v.signer} as {v.role}, signed {v.signed_at}: "
              f"{'counts' if v.counts else 'does not count: ' + v.why}"
              for v in status.verdicts] or ["  no signatures"]
    lines.append(f"pinned keys: {status.pinned_keys}: {status.protection}")
    lines += [f"  note: {status.note}"] if status.note else []
    lines.append(f"verdict: {_verdict(status)}")
    return lines


def _verdict_json(v: Any) -> dict:
    return {"signer": v.signer, "role": v.role, "public_key": v.public_key,
            "signed_at": v.signed_at, "counts": v.counts, "why": v.why or None}


def show(args: argparse.Namespace) -> int:
    from otpatch.engine import siteregister as sr
    from otpatch.engine.inventory import load_inventory

    register = sr.site_register(load_inventory(args.inventory))
    _print_json({"register": register, "register_hash": sr.register_hash(register)})
    return EXIT_OK


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, sort_keys=True))
