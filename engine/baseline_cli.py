"""`otpatch baseline show|check`: what each device runs, where each value came from, and drift."""
from __future__ import annotations

import argparse
import json
from typing import Any

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
    c.add_argument("--json", action="store_true", help="print one JSON document")
    c.set_defaults(func=check)


def show(args: argparse.Namespace) -> int:
    from otpatch.engine.baseline import baseline
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.journal import default_home

    current = baseline(default_home(), load_inventory(args.inventory))
    if args.json:
        print(json.dumps({"inventory": args.inventory, "hosts": current.to_json()}, indent=2))
        return 0
    rows = [(host, values["firmware"].value if "firmware" in values else "-",
             values["firmware"].provenance() if "firmware" in values else "no firmware known")
            for host, values in sorted(current.hosts.items())]
    widths = [max(len(r[c]) for r in rows + [COLUMNS]) for c in range(2)]
    for row in [COLUMNS] + rows:
        print(f"{row[0].ljust(widths[0])}  {row[1].ljust(widths[1])}  {row[2]}".rstrip())
    return 0


def check(args: argparse.Namespace) -> int:
    """Exit 1 when a device drifted from its baseline, else 0 (hosts not read are said)."""
    from otpatch.engine.baseline_check import check as check_hosts
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.journal import default_home

    checks = check_hosts(default_home(), load_inventory(args.inventory))
    drifted = [c for c in checks if c.status == "drift"]
    if args.json:
        print(json.dumps({"inventory": args.inventory, "drift": bool(drifted),
                          "hosts": [c.to_json() for c in checks]}, indent=2))
    else:
        width = max(len(c.host) for c in checks) if checks else 4
        for c in checks:
            print(f"{c.host.ljust(width)}  {c.status.upper():<11}  {c.detail}")
        print(f"{len(drifted)} of {len(checks)} host(s) drifted from the baseline; "
              f"{sum(c.status == 'same' for c in checks)} read as the baseline, "
              f"{sum(c.status not in ('same', 'drift') for c in checks)} not read")
    return 1 if drifted else 0
