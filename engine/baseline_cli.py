"""`otpatch baseline show|check`: what each device runs, where each value came from, and drift."""
from __future__ import annotations

import argparse
import json
from typing import Any

from otpatch.modules.contract.errors import InputError

COLUMNS = ("HOST", "FIRMWARE", "FROM")


def register(sub: Any) -> None:
    p = sub.add_parser("baseline", help="what each device runs now, and where each value "
                                        "came from (typed, or a run's verified as-left)")
    bsub = p.add_subparsers(dest="baseline_command", required=True, metavar="ACTION")
    s = bsub.add_parser("show", help="the baseline of an inventory's hosts (reads the "
                                     "journal and the inventory; touches no device)")
    s.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=show)
    c = bsub.add_parser("check", help="read each device now (read-only, public reads only) "
                                      "and report drift from its baseline: exit 1 on drift")
    c.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    c.add_argument("--accept", metavar="REASON",
                   help="record the drifts found as accepted, with this reason (e.g. the "
                        "change record that explains them): the baseline takes them up")
    c.add_argument("--operator", metavar="NAME", help="who checks (named in the record)")
    c.add_argument("--json", action="store_true", help="print one JSON document")
    c.set_defaults(func=check)


def show(args: argparse.Namespace) -> int:
    from otpatch.engine.baseline import baseline
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.journal import default_home

    current = baseline(default_home(), load_inventory(args.inventory))
    if args.json:
        print(json.dumps({"inventory": args.inventory, "hosts": current.to_json(),
                          "full": current.to_json_full()}, indent=2))
        return 0
    rows = [(host, values["firmware"].value if "firmware" in values else "-",
             values["firmware"].provenance() if "firmware" in values else "no firmware known")
            for host, values in sorted(current.hosts.items())]
    widths = [max(len(r[c]) for r in rows + [COLUMNS]) for c in range(2)]
    pad = " " * (widths[0] + widths[1] + 4)
    print(f"{COLUMNS[0].ljust(widths[0])}  {COLUMNS[1].ljust(widths[1])}  {COLUMNS[2]}")
    for row in rows:
        print(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}".rstrip())
        for line in _extra(current, row[0]):
            print(pad + line)
    return 0


def _extra(current: Any, host: str) -> list[str]:
    """The lines under a host: its other device-read values, services, backups."""
    values = current.hosts[host]
    read = [f"{k} {v.value}" for k, v in sorted(values.items())
            if k != "firmware" and v.source != "typed"]
    out = [f"also read: {', '.join(read)}"] if read else []
    services = current.services.get(host)
    if services:
        out.append(f"services open: {_open(services['ports'])} (check {services['record']})")
    for artifact, b in sorted((current.backups.get(host) or {}).items()):
        out.append(f"backup {artifact} sha256:{b['sha256'][:16]}... ({b['size']} bytes, "
                   f"{b['at'][:19]}Z)")
    return out


def check(args: argparse.Namespace) -> int:
    """Exit 1 when a device drifted from its baseline, else 0 (hosts not read are said)."""
    from otpatch.engine.baseline_check import check as check_hosts
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.journal import default_home

    if args.accept is not None and not args.accept.strip():
        raise InputError("baseline check --accept: give the reason the drift is accepted "
                         "(e.g. the change record): nothing read")
    checks, record = check_hosts(default_home(), load_inventory(args.inventory),
                                 accept=args.accept, operator=args.operator)
    drifted = [c for c in checks if c.status == "drift"]
    if args.json:
        print(json.dumps({"inventory": args.inventory, "drift": bool(drifted),
                          "record": record, "hosts": [c.to_json() for c in checks]},
                         indent=2))
    else:
        _print_checks(checks, drifted, record)
    return 1 if drifted else 0


def _open(ports: Any) -> str:
    opened = [f"{p} {s['service']}" for p, s in sorted(ports.items(), key=lambda i: int(i[0]))
              if s["state"] == "open"]
    return ", ".join(opened) or "none"


def _print_checks(checks: list, drifted: list, record: str) -> None:
    width = max(len(c.host) for c in checks) if checks else 4
    for c in checks:
        print(f"{c.host.ljust(width)}  {c.status.upper():<11}  {c.detail}")
        pad = f"{' ' * width}  {'':<11}  "
        if c.services is not None:
            print(f"{pad}services open: {_open(c.services)}")
        elif c.services_why:
            print(f"{pad}services not checked: {c.services_why}")
    print(f"{len(drifted)} of {len(checks)} host(s) drifted from the baseline; "
          f"{sum(c.status == 'same' for c in checks)} read as the baseline, "
          f"{sum(c.status == 'accepted' for c in checks)} accepted, "
          f"{sum(c.status not in ('same', 'drift', 'accepted') for c in checks)} not read; "
          f"readings recorded as site record {record}")
