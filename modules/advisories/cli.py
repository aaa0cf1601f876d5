"""`otpatch advisories ...` commands (registered by the CLI; no heavy imports at module level)."""
from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction, host: Any) -> None:
    """Add `advisories` and its sub-commands to the otpatch CLI; `host` (the contract's Host)
    loads the inventory and the playbooks."""
    p = sub.add_parser("advisories", help="CSAF 2.0 advisories matched against an inventory")
    asub = p.add_subparsers(dest="advisories_command", required=True, metavar="ACTION")
    m = asub.add_parser(
        "match", help="affected assets, most urgent first",
        description="Validate CSAF 2.0 advisories against the official schema (offline), "
                    "match them against the inventory by vendor, part number or model and "
                    "firmware version, and list the affected assets most urgent first: CVE, "
                    "CVSS base and effective score (with the compensating controls that "
                    "cover each asset), due date, fixed version, remediation and the "
                    "playbook that applies. Every match says how firmly the asset is "
                    "identified (part_number, part_pattern, model, name), how sure the version "
                    "verdict is (exact, range_parsed, uncertain), the two combined (confidence: "
                    "high, medium, low) and why. Software products match software assets "
                    "only; a family name matches an asset only if its part number is of that "
                    "family. The same CVE from several providers is shown once, naming each. "
                    "Broken advisory files are reported and skipped; the exit code stays 0.")
    m.add_argument("paths", nargs="+", metavar="PATH",
                   help="CSAF JSON files, or folders searched for *.json")
    m.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    m.add_argument("--controls", metavar="FILE", help="compensating controls (YAML)")
    m.add_argument("--playbooks", metavar="DIR",
                   help="folder of playbooks whose metadata.applies_to is matched "
                        "(default: the first of ./playbooks, playbooks/ beside the "
                        "inventory, and playbooks/ beside the inventory's folder)")
    m.add_argument("--due-from", choices=("initial", "current"), default="initial",
                   help="count due dates from the advisory's initial (default) or current "
                        "release date")
    m.add_argument("--next-cycle", metavar="DATE",
                   help="the next planned patch cycle: the deadline of low scores")
    m.add_argument("--near-misses", action="store_true",
                   help="also list, per asset, the products named but judged not to affect "
                        "it, and why")
    m.add_argument("--json", action="store_true", help="print one JSON document")
    m.set_defaults(func=partial(match_command, host=host))


def match_command(args: argparse.Namespace, host: Any) -> int:
    import json
    from dataclasses import replace

    from otpatch.modules.advisories.load import load_advisories
    from otpatch.modules.advisories.match import match
    from otpatch.modules.advisories.playbooks import load_playbooks
    from otpatch.modules.advisories.report import Run, document, text
    from otpatch.modules.advisories.signatures import advisory_keys_path, load_advisory_keys
    from otpatch.modules.advisories.sources import merge, signed
    from otpatch.modules.advisories.urgency import DUE_BASIS
    from otpatch.modules.advisories.verdicts import CACHE_FILE
    from otpatch.modules.risk.controls import load_controls
    from otpatch.modules.risk.due import parse_when

    inventory = host.load_inventory(args.inventory)
    controls = load_controls(args.controls) if args.controls else {}
    cycle = parse_when(args.next_cycle, "--next-cycle") if args.next_cycle else None
    keys = load_advisory_keys(advisory_keys_path())  # before any work: a bad key exits 2
    loaded = signed(load_advisories(args.paths, cache=host.home() / CACHE_FILE), keys)
    args.playbooks = args.playbooks or str(default_playbooks(args.inventory))
    refs, problems = load_playbooks(args.playbooks, host.load_playbook)
    misses: list = []
    current = host.baseline_firmware(inventory)  # a verified run's as-left over the typed
    hosts = [replace(h, firmware=current[h.name][0]) if h.name in current else h
             for h in inventory.hosts.values()]
    matches = merge(match(inventory, loaded.advisories, controls, playbooks=refs,
                          due_from=args.due_from, next_cycle=cycle, hosts=hosts,
                          near_misses=misses,
                          firmware_sources={h: why for h, (_, why) in current.items()}),
                    loaded.advisories)
    run = Run(args.inventory, loaded, tuple(matches), DUE_BASIS[args.due_from],
              args.controls, args.playbooks, tuple(r.label for r in refs), tuple(problems),
              near_misses=tuple(misses) if args.near_misses else None)
    print(json.dumps(document(run), indent=2) if args.json else text(run))
    return 0


def default_playbooks(inventory: str) -> Path:
    """Where a site keeps its playbooks when --playbooks does not say: ./playbooks, else
    beside the inventory, else beside the inventory's folder (this project's layout:
    inventory/lab.yml and playbooks/); ./playbooks when none exists (the note says so)."""
    here = Path(inventory).resolve().parent
    for folder in (Path("playbooks"), here / "playbooks", here.parent / "playbooks"):
        if folder.is_dir():
            return folder
    return Path("playbooks")
