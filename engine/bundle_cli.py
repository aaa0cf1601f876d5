"""`otpatch export` and `otpatch verify-bundle`: a run's or a change's evidence bundle,
written on the host that ran it (engine/bundle.py) and checked by an auditor on another
machine with public keys only (engine/bundle_verify.py)."""
from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from otpatch.modules.contract.errors import EXIT_GATE_REFUSED, EXIT_OK, InputError

LOG = logging.getLogger(__name__)
EXIT_NOT_VERIFIED = EXIT_GATE_REFUSED  # a refusal: the bundle does not prove what it says


def register(sub: Any) -> None:
    x = sub.add_parser("export", help="an ended run's evidence bundle (tar.gz), for audit")
    x.add_argument("run_id", nargs="?", metavar="RUN_ID")
    x.add_argument("--change", metavar="RUN_ID",
                   help="the whole change: the run and the evidence runs its sign-offs named")
    x.add_argument("-o", "--output", required=True, metavar="FILE.tar.gz")
    x.add_argument("--without-profiles", action="store_true",
                   help="carry the mGuard profile backups' hashes only, not the files (a "
                        "profile can hold VPN keys)")
    x.set_defaults(func=export)
    v = sub.add_parser("verify-bundle", help="check an evidence bundle offline (public keys)")
    v.add_argument("file", metavar="FILE.tar.gz")
    v.add_argument("--keys", metavar="INVENTORY",
                   help="the journal hosts whose keys may sign it (its all.vars.journal_hosts);"
                        " default: this host's own key")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=verify_bundle)


def export(args: argparse.Namespace) -> int:
    """Gather, sign and write the bundle; one summary line, and a warning line for what
    it carries that needs care (profile backups) or leaves out."""
    from otpatch.engine import bundle, bundle_tar, keys
    from otpatch.engine.journal import default_home

    if bool(args.run_id) == bool(args.change):
        raise InputError("export: give RUN_ID, or --change RUN_ID for the whole change "
                         "(not both)")
    run_id = args.change or args.run_id
    made = bundle.gather(default_home(), run_id, change=bool(args.change),
                         with_profiles=not args.without_profiles)
    size = bundle_tar.write(made, args.output)
    for warning in made.warnings:
        LOG.warning("%s", warning)
    runs = made.manifest["runs"]
    what = (f"change {run_id} ({len(runs)} runs: {', '.join(r['run_id'] for r in runs)})"
            if args.change else f"run {run_id}")
    print(f"{args.output}: evidence bundle of {what}, {runs[-1]['status']}: "
          f"{len(made.manifest['files'])} files and the manifest, {size} bytes, signed by "
          f"this host ({keys.short(made.manifest['public_key'])}); check it with otpatch "
          f"verify-bundle {args.output} --keys INVENTORY")
    return EXIT_OK


def verify_bundle(args: argparse.Namespace) -> int:
    """Every check, one line each, and the verdict: exit 0 verified, 3 not verified."""
    from otpatch.engine.bundle_checks import NOT_CHECKED
    from otpatch.engine.bundle_verify import verify

    verdict = verify(args.file, _trust(args.keys))
    if args.json:
        print(json.dumps({"kind": "otpatch-bundle-check/1", "bundle": args.file,
                          "verified": verdict.verified, "runs": verdict.runs,
                          "change": verdict.change, "signer": verdict.signer,
                          "checks": [{"file": c.file, "status": c.status, "detail": c.detail}
                                     for c in verdict.checks]}, indent=2, sort_keys=True))
    else:
        for check in verdict.checks:
            print(check.line())
        unchecked = any(c.status == NOT_CHECKED for c in verdict.checks)
        print(_last_line(args.file, verdict, unchecked))
    return EXIT_OK if verdict.verified else EXIT_NOT_VERIFIED


def _last_line(file: str, verdict: Any, unchecked: bool) -> str:
    what = (f"change {verdict.change}" if verdict.change
            else f"run {', '.join(verdict.runs) or '?'}")
    if verdict.verified:
        return f"verified: {file}: {what}, signed by {verdict.signer}"
    failed = len(verdict.failed())
    why = [f"{failed} check{'s' * (failed != 1)} failed"] if failed else []
    why += ["its signer was not checked (give --keys INVENTORY)"] if unchecked else []
    return f"NOT verified: {file}: {what}: {'; '.join(why)}"


def _trust(inventory_path: str | None) -> Any:
    """The inventory's journal hosts; else this host's own key; else None."""
    from otpatch.engine.anchor import Trust, trust_root, trusted_keys
    from otpatch.engine.keys import host_key_path

    if inventory_path:
        from otpatch.engine.inventory import load_inventory

        named = trusted_keys(load_inventory(inventory_path))
        if not named:
            raise InputError(f"verify-bundle --keys {inventory_path}: it lists no "
                             "all.vars.journal_hosts: no key to check the signer against")
        return Trust(named, "the inventory")
    from otpatch.engine.journal import default_home

    return trust_root(host_key_path(default_home()), None)
