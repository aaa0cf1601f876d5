"""`otpatch firewall review|diff` (registered by the CLI; no heavy imports at module level)."""
from __future__ import annotations

import argparse
from typing import Any

FAIL_ON = ("critical", "high", "medium", "low", "info", "never")
EXIT_WORDS = ("Exit codes: 0 the review ran and found nothing at or above --fail-on "
              "(default high); 1 it found something there; 2 bad input (a profile that "
              "does not parse, is truncated or encrypted, a bad policy: one line with its "
              "file:line).")


def register(sub: argparse._SubParsersAction, host: Any = None) -> None:
    """Add `firewall` and its sub-commands to the otpatch CLI."""
    p = sub.add_parser("firewall", help="review an mGuard profile against a policy; "
                                        "compare two profiles")
    fsub = p.add_subparsers(dest="firewall_command", required=True, metavar="ACTION")
    r = fsub.add_parser(
        "review", help="findings of a saved mGuard profile against the firewall policy",
        description="Review a saved mGuard configuration profile (.atv, or the ECS .tar.gz "
                    "carrying it) against a firewall policy: S7 and Modbus into the control "
                    "zone, EtherNet/IP to or from any address (UDP 2222 implicit I/O, TCP "
                    "44818 explicit messaging, UDP 44818 ListIdentity), HTTP management, "
                    "ICMP, remote syslog to the SIEM, any-to-any and shadowed rules, "
                    "unlogged cross-zone accepts. Each finding with its location, why it "
                    "matters and the fix. Never prints a profile's keys. " + EXIT_WORDS)
    r.add_argument("profile", metavar="PROFILE", help="a saved profile: .atv, or the ECS "
                   ".tar.gz (an encrypted .ecs.p7e cannot be read)")
    r.add_argument("--policy", metavar="FILE", help="a firewall policy (YAML, "
                   "schemas/firewall-policy.schema.json); default: the shipped one")
    r.add_argument("--fail-on", choices=FAIL_ON, default="high", metavar="SEVERITY",
                   help=f"exit 1 when a finding is at least this severe ({', '.join(FAIL_ON)}"
                        "; default high; never: exit 0 whenever the review ran)")
    r.add_argument("--json", action="store_true", help="print one JSON document")
    r.set_defaults(func=review_command)
    d = fsub.add_parser("diff", help="the semantic difference of two saved profiles: "
                                     "which rules a change lost or changed")
    d.add_argument("before", metavar="BEFORE", help="the profile as found")
    d.add_argument("after", metavar="AFTER", help="the profile after the change")
    d.add_argument("--json", action="store_true", help="print one JSON document")
    d.set_defaults(func=diff_handler)


def review_command(args: argparse.Namespace) -> int:
    import json

    from otpatch.modules.firewall.finding import Severity
    from otpatch.modules.firewall.policy import load_policy
    from otpatch.modules.firewall.review import read_profile, review

    policy = load_policy(args.policy)
    found = review(read_profile(args.profile).ruleset, policy)
    failing = () if args.fail_on == "never" else found.at_least(Severity(args.fail_on))
    code = 1 if failing else 0
    if args.json:
        print(json.dumps({**found.to_json(), "fail_on": args.fail_on,
                          "failing": len(failing), "exit_code": code}, indent=2))
        return code
    from otpatch.modules.firewall.review_text import lines

    print("\n".join(lines(found, args.fail_on, len(failing))))
    return code


def diff_handler(args: argparse.Namespace) -> int:
    """`otpatch firewall diff`: diff_cli.py's, imported only when asked for."""
    try:
        from otpatch.modules.firewall.diff_cli import diff_command
    except ModuleNotFoundError as e:
        if e.name not in ("otpatch.modules.firewall.diff_cli", "otpatch.modules.firewall.diff"):
            raise
        from otpatch.modules.contract.errors import NotImplementedFeature

        raise NotImplementedFeature("otpatch firewall diff (modules/firewall/diff_cli.py "
                                    "is not installed)") from None
    return diff_command(args)
