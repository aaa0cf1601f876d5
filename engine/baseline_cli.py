"""`otpatch baseline show`: what each inventory device runs now, and where each value came from."""
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
