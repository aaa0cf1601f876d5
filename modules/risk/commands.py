"""`otpatch risk accept` and `otpatch risk cycle` (added to `otpatch risk` by cli.py): the
register's decisions accepted (signed) and the patch evaluation cycle reported. What they
need of the engine (inventories, OTPATCH_HOME, the baseline's firmware, keys, signatures, the
site record) comes through the contract's Host."""
from __future__ import annotations

import argparse
import json
from functools import partial
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otpatch.modules.contract.errors import EXIT_NOT_COMPLETED, EXIT_OK, InputError, clip

CYCLE_DAYS = 35  # NERC CIP-007 R2.2: at least once every 35 calendar days


def register(actions: Any, host: Any) -> None:
    """Add `accept` and `cycle` to the `risk` command's actions."""
    _accept_parser(actions, host)
    _cycle_parser(actions, host)


def _accept_parser(actions: Any, host: Any) -> None:
    from otpatch.modules.risk.decisions import ACCEPTING_ROLES

    p = actions.add_parser(
        "accept", help="accept (sign) a defer or mitigate decision of a risk register",
        description="Sign a register entry's defer or mitigate decision with your Ed25519 key "
                    "(otpatch keygen --name): the signature binds the asset, the advisory and "
                    "the revision decided on, the CVEs, scores, controls, decision, "
                    "rationale, owner, deadline, review date and plan; changing any of them "
                    "re-opens the decision. You must be an approver in the inventory holding "
                    f"an accepting role ({', '.join(ACCEPTING_ROLES)}) and not the entry's "
                    "owner. The acceptance is written into the register (atomically, comments "
                    "kept) and journaled in the site record under OTPATCH_HOME. Exit 0 "
                    "accepted, 2 refused (nothing written).")
    p.add_argument("register_file", metavar="REGISTER")
    p.add_argument("--entry", required=True, metavar="N|ASSET:ADVISORY",
                   help="the entry: its number (1 is the first) or asset:advisory")
    p.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    p.add_argument("--key", required=True, metavar="KEYFILE", help="your private key")
    p.add_argument("--role", required=True, metavar="ROLE", help="the role you accept as")
    p.add_argument("--advisories", action="append", required=True, metavar="PATH",
                   help="CSAF files or folders holding the entry's advisory (repeatable): "
                        "the revision the entry was decided on must be the advisory's "
                        "revision at the time of acceptance, else nothing is signed")
    p.add_argument("--at", metavar="DATETIME",
                   help="when the risk was accepted, if not now (e.g. transcribing a signed "
                        "paper form); the site record keeps when it was recorded")
    p.set_defaults(func=partial(accept_command, host=host))


def _cycle_parser(actions: Any, host: Any) -> None:
    p = actions.add_parser(
        "cycle", help="the patch evaluation cycle: per source, what was evaluated and decided",
        description="Report a patch evaluation cycle (NERC CIP-007 R2.2, IEC 62443-2-3): for "
                    "each patch source the site tracks (--sources), the advisories it "
                    "released or revised in the DAYS days up to --as-of, which apply to which "
                    "assets (matched against the inventory, the baseline's firmware over the "
                    "typed one), the register's decision on each judged now (decided, open: "
                    "not accepted, re-opened: and why, overdue, closed: no longer applies), "
                    "what is undecided, and what from earlier cycles is re-opened or "
                    "overdue. A source with nothing in the cycle is listed too. Exit 0 when "
                    "everything is decided and stands; 1 when something is undecided, open, "
                    "re-opened or overdue, a source has no document among the advisories "
                    "given, or an asset is covered by no source; 2 bad input. The report is "
                    "journaled in the signed site record under OTPATCH_HOME (a "
                    "cycle_evaluated entry holding the whole report) unless --no-record.")
    p.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    p.add_argument("--days", type=int, default=CYCLE_DAYS,
                   help=f"the cycle's length in calendar days (default {CYCLE_DAYS})")
    p.add_argument("--as-of", metavar="DATE", help="the cycle's last day (default today, UTC)")
    p.add_argument("--register", metavar="FILE",
                   help="the risk register (default: NAME-risk-register.yml beside the "
                        "inventory NAME.yml)")
    p.add_argument("--sources", metavar="FILE",
                   help="the patch sources (default: NAME-patch-sources.yml beside it)")
    p.add_argument("--advisories", action="append", default=[], metavar="PATH",
                   help="CSAF files or folders (repeatable; at least one)")
    p.add_argument("--controls", metavar="FILE",
                   help="compensating controls (default: NAME-controls.yml beside the "
                        "inventory, if there is one)")
    p.add_argument("--profile", action="append", default=[], metavar="[HOST=]FILE",
                   help="an mGuard's exported profile: the cited controls' claims are checked "
                        "against it, and a control whose claims it refutes loses its credit, "
                        "re-opening the decisions that cite it (repeatable); without one the "
                        "claims are not checked, and the report says so")
    p.add_argument("--policy", metavar="FILE",
                   help="the firewall policy the claims' names are in (default: the shipped one)")
    p.add_argument("--operator", metavar="NAME",
                   help="who evaluated the cycle (named in the site record)")
    p.add_argument("--no-record", action="store_true",
                   help="a look only: do not journal the report in the site record")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=partial(cycle_command, host=host))


# -- accept ------------------------------------------------------------------------------------

def accept_command(args: argparse.Namespace, host: Any) -> int:
    from otpatch.modules.risk.accept import accept
    from otpatch.modules.risk.due import parse_when
    from otpatch.modules.risk.scoring import RiskError

    inventory = host.load_inventory(args.inventory)
    key = host.signing_key(args.key)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    try:
        at = parse_when(args.at, "--at") if args.at else now
    except RiskError as e:
        raise InputError(f"risk accept: {e}") from None
    if at > now:
        raise InputError(f"risk accept --at {clip(args.at)}: in the future")
    done = accept(args.register_file, args.entry, inventory, key, args.role, at, host,
                  trackings=_trackings(args.advisories, host))
    e = done.entry
    review = e.review_by.date().isoformat() if e.review_by else "-"
    print(f"accepted: entry {done.number} ({e.label}, {e.decision.value}) by "
          f"{e.accepted.by} as {e.accepted.role} at {done.document['at']}; review by {review}")
    if done.revision_said:
        print(done.revision_said)
    print(f"written to {args.register_file}; site record {done.record_id}")
    return EXIT_OK


def _trackings(paths: list[str], host: Any) -> dict[str, Any]:
    """advisory id -> its tracking (version, revision history), of every advisory under
    `paths` (checked as `advisories match` checks them)."""
    from otpatch.modules.advisories.load import load_advisories
    from otpatch.modules.advisories.verdicts import CACHE_FILE
    from otpatch.modules.risk.cycle import tracking_of

    loaded = load_advisories(paths, cache=host.home() / CACHE_FILE)
    return {a.id: tracking_of(a.file) for a in loaded.advisories}


# -- cycle -------------------------------------------------------------------------------------

def cycle_command(args: argparse.Namespace, host: Any) -> int:
    from otpatch.modules.risk.cycletext import document, text

    report = evaluate(args, host)
    doc = document(report)
    record = None if args.no_record else host.record_cycle(
        doc, inventory=host.load_inventory(args.inventory), operator=args.operator)
    said = (f"recorded in the site record: {record} (otpatch journal verify checks it)"
            if record else "not recorded (--no-record): a look, not the cycle's record")
    print(json.dumps({**doc, "site_record": record}, indent=2) if args.json
          else text(report) + "\n" + said)
    return EXIT_OK if report.clean else EXIT_NOT_COMPLETED


def beside(inventory: str, suffix: str) -> Path:
    """NAME-suffix beside the inventory NAME.yml (inventory/lab.yml -> lab-risk-register.yml)."""
    path = Path(inventory)
    return path.with_name(f"{path.stem}-{suffix}")


def evaluate(args: argparse.Namespace, host: Any) -> Any:
    """Gather everything the cycle needs, each file checked at load, and decide."""
    from otpatch.modules.advisories.load import load_advisories
    from otpatch.modules.advisories.match import match
    from otpatch.modules.advisories.verdicts import CACHE_FILE
    from otpatch.modules.risk.accept import signature_problem
    from otpatch.modules.risk.cycle import cycle_report, tracking_of, window_of
    from otpatch.modules.risk.patchsources import load_sources
    from otpatch.modules.risk.register import load_register

    if not args.advisories:
        raise InputError("risk cycle: give --advisories PATH (the CSAF files of the sources)")
    window = window_of(args.days, args.as_of, datetime.now(timezone.utc))
    inventory = host.load_inventory(args.inventory)
    register_file = args.register or str(beside(args.inventory, "risk-register.yml"))
    sources = load_sources(args.sources or beside(args.inventory, "patch-sources.yml"))
    register = load_register(register_file)
    controls_file, controls = _controls(args)
    _check_register(register, inventory, controls, controls_file)
    withdrawn, profiles = _withdrawn(args, register, controls, inventory, host)
    loaded = load_advisories(args.advisories, cache=host.home() / CACHE_FILE)
    current = host.baseline_firmware(inventory)
    hosts = [_with_firmware(h, current) for h in inventory.hosts.values()]
    matches = match(inventory, loaded.advisories, controls, hosts=hosts,
                    firmware_sources={h: why for h, (_, why) in current.items()})
    firmware = {h.name: f"firmware {h.firmware}, " + (current[h.name][1] if h.name in current
                                                      else "typed in the inventory")
                for h in hosts}
    return cycle_report(
        window, inventory=inventory, loaded=loaded, matches=matches, register=register,
        sources=sources, trackings={a.id: tracking_of(a.file) for a in loaded.advisories},
        withdrawn=withdrawn, firmware=firmware, profiles=profiles,
        signatures={n: signature_problem(e, inventory.approvers, host)
                    for n, e in enumerate(register.entries, 1)},
        files={"inventory": args.inventory, "register": register_file,
               "controls": controls_file})


def _with_firmware(host: Any, current: dict) -> Any:
    from dataclasses import replace

    return replace(host, firmware=current[host.name][0]) if host.name in current else host


def _controls(args: argparse.Namespace) -> tuple[str | None, dict]:
    from otpatch.modules.risk.claims import policy_zones
    from otpatch.modules.risk.controls import load_controls

    file = args.controls or (str(beside(args.inventory, "controls.yml"))
                             if beside(args.inventory, "controls.yml").is_file() else None)
    if file is None:
        return None, {}
    zones = policy_zones(args.policy) if args.profile or args.policy else None
    return file, load_controls(file, zones)


def _check_register(register: Any, inventory: Any, controls: dict, file: str | None) -> None:
    """Refuse (exit 2, every problem located) acceptances the inventory cannot stand behind
    and controls the controls file does not define."""
    from otpatch.modules.risk.accept import acceptor_problems
    from otpatch.modules.contract.errors import PlaybookError

    problems = acceptor_problems(register, inventory.approvers)
    for control in controls.values():
        for name in control.enforced_by:
            kind = getattr(inventory.hosts.get(name), "device", None)
            if kind != "mguard":
                problems.append(_problem(control.source, "control-enforcer", (
                    f"control {control.id}: enforced_by {clip(name)}: " + (
                        f"a {kind or 'host of unknown kind'}, not an mGuard" if name in
                        inventory.hosts else "no such host in the inventory"))))
    for entry in register.entries:
        cited = entry.controls + tuple(c for s in entry.plan for c in s.controls)
        for c in dict.fromkeys(cited):
            if c not in controls:
                where = f"{file} defines {', '.join(sorted(controls)) or 'none'}" if file \
                    else "no controls file given (--controls FILE)"
                problems.append(_problem(entry.where, "register-control",
                                         f"{entry.label}: unknown control {c!r}: {where}"))
    if problems:
        raise PlaybookError(problems)


def _problem(where: str, rule: str, message: str) -> Any:
    from otpatch.modules.contract.errors import Problem

    file, line, col = where.rsplit(":", 2)
    return Problem(file, int(line), int(col), rule, message)


def _withdrawn(args: argparse.Namespace, register: Any, controls: dict, inventory: Any,
               host: Any) -> tuple[dict[str, str], tuple[str, ...]]:
    """control id -> why the firewall review withdraws its credit; and the profiles the
    claims were checked against, as the report names them. With --profile: every cited
    control against every profile given. Without: each cited control that names the mGuards
    enforcing it (`enforced_by`) against each one's newest stored backup (otpatch backup);
    a host with none, or a damaged one, is named as not checked."""
    from otpatch.modules.firewall.review import read_profile
    from otpatch.modules.risk.claims import judge, policy_zones

    cited = {c for e in register.entries
             for c in e.controls + tuple(c for s in e.plan for c in s.controls)}
    chosen = [controls[c] for c in sorted(cited) if c in controls]
    if args.profile:
        checks = [(_named(given), chosen) for given in args.profile]
    else:
        checks = _stored_checks(chosen, inventory, host)
    zones = policy_zones(args.policy) if any(file for (_, file), _ in checks) else None
    out: dict[str, str] = {}
    for (label, file), against in checks:
        if file is None:
            continue
        for v in judge(against, read_profile(file), zones):
            if not v.credited:
                out.setdefault(v.control, f"credit withdrawn by the firewall review of "
                               f"{label}: {v.witnesses[0].describe()}")
    return out, tuple(label for (label, _), _ in checks)


def _named(given: str) -> tuple[str, str]:
    name, sep, file = given.rpartition("=")
    return (f"{name} ({file})" if sep else file), file


def _stored_checks(chosen: list, inventory: Any, host: Any) -> list:
    """((label, file or None), controls) per mGuard some cited control is enforced by."""
    enforcers: dict[str, list] = {}
    for control in chosen:
        if control.claims:
            for name in control.enforced_by:
                enforcers.setdefault(name, []).append(control)
    out = []
    for name, against in sorted(enforcers.items()):
        stored = host.stored_backup(name, "mguard_profile", inventory)
        if isinstance(stored, str):
            out.append(((f"{name}: not checked: {stored}", None), against))
        else:
            out.append(((f"{name} (stored backup {stored['sha256'][:12]} of "
                         f"{stored['at'][:10]})", stored["path"]), against))
    return out
