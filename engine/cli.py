"""The otpatch command line: parse, dispatch, print one clear line per problem, exit codes."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from otpatch.modules.contract.errors import (EXIT_BAD_INPUT, EXIT_NOT_COMPLETED, InputError,
                                             OtpatchError, clip)

COMMANDS_NOT_BUILT: dict[str, str] = {}


PLUGINS_ENV = "OTPATCH_MODULE_PLUGINS"  # site plugins: importable module names, comma-separated


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command: the engine's, then each package's (its CLI
    declaration, modules/registry.py), from the registry load_registry made."""
    from otpatch.engine import commands as c
    from otpatch.engine import (approve_cli, attest_cli, bundle_cli, evidence_cli, moduledoc,
                                register_cli, report_cli, baseline_cli)
    from otpatch.engine import backup_cli, fleet_cli
    from otpatch.engine.host import PackageHost
    from otpatch.modules.registry import current, resolve

    parser = _Parser(
        prog="otpatch", description="IEC 62443-2-3 patch procedures as guarded, journaled "
                                    "state machines. Exit codes: 0 success, 1 run not "
                                    "completed, 2 bad input, 3 refused by a gate.")
    parser.add_argument("--debug", action="store_true",
                        help="log debug messages and print the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("demo", help="dry-run the shipped procedures end to end")
    p.set_defaults(func=c.demo)
    _playbook_commands(sub, c)
    _run_commands(sub, c)
    _lab_and_journal_commands(sub, c)
    moduledoc.register(sub)
    approve_cli.register(sub)
    attest_cli.register(sub)
    evidence_cli.register(sub)
    bundle_cli.register(sub)
    register_cli.register(sub)
    report_cli.register(sub)
    baseline_cli.register(sub)
    backup_cli.register(sub)
    fleet_cli.register(sub)
    for where in current().cli:
        resolve(where)(sub, PackageHost())
    for name, what in COMMANDS_NOT_BUILT.items():
        p = sub.add_parser(name, help=f"not implemented yet: {what}")
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(func=c.not_built, what=what)
    return parser


def _playbook_commands(sub: Any, c: Any) -> None:
    """validate, graph, plan: they read files and touch no device."""
    p = sub.add_parser("validate", help="schema and safety lint; exit 2 with file:line:col")
    p.add_argument("playbooks", nargs="*", metavar="PLAYBOOK")
    p.add_argument("-i", "--inventory", metavar="INVENTORY",
                   help="check against this inventory (stages, approvers, windows); alone, "
                        "validate the inventory")
    p.add_argument("--rules", action="store_true", help="list every rule id and why")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=c.validate)
    p = sub.add_parser("graph", help="draw a playbook's state machine")
    p.add_argument("playbook", metavar="PLAYBOOK")
    p.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid")
    p.add_argument("-o", "--output", metavar="FILE")
    p.set_defaults(func=c.graph)
    p = sub.add_parser("plan", help="path, gates and time budget; touches nothing")
    _run_inputs(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=c.plan)


def _run_commands(sub: Any, c: Any) -> None:
    """run, resume, status."""
    p = sub.add_parser("run", help="run a playbook (dry run against simulators, or execute)")
    _run_inputs(p)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", dest="mode", action="store_const", const="dry_run")
    mode.add_argument("--execute", dest="mode", action="store_const", const="execute")
    _operator(p)
    p.add_argument("--stage", choices=("lab", "staging", "production"),
                   help="a stage run: only this stage's states (the others are skipped); a "
                        "change is a lab run, a staging run, then a production run")
    p.add_argument("--evidence", action="append", default=[], metavar="RECORD",
                   help="record hash of a run whose states the sign-offs approve (repeat "
                        "for each: the lab run, the staging run)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=c.run)
    p = sub.add_parser("resume", help="continue an interrupted or waiting run")
    p.add_argument("run_id", metavar="RUN_ID")
    _operator(p)
    p.add_argument("--evidence", action="append", default=[], metavar="RECORD",
                   help="add the record hash of an evidence run its sign-off waits for")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=c.resume)
    p = sub.add_parser("status", help="list runs, or show one")
    p.add_argument("run_id", nargs="?", metavar="RUN_ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=c.status)


def _lab_and_journal_commands(sub: Any, c: Any) -> None:
    """sim up, keygen, journal verify, journal checkpoints."""
    p = sub.add_parser("sim", help="device simulators for an inventory's lab hosts")
    ssub = p.add_subparsers(dest="sim_command", required=True, metavar="ACTION")
    up = ssub.add_parser("up", help="run the simulators on 127.0.0.1 until Ctrl-C or SIGTERM")
    up.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    up.add_argument("--fault", action="append", default=[], metavar="NAME[@HOST|@STAGE]",
                    help="make the simulators fail this way: all of them, one host's, or "
                         "one stage's (repeatable)")
    up.add_argument("--time-scale", type=float, metavar="X",
                    help="also let simulated time pass with wall time (wall s per simulated s)")
    up.add_argument("--free-ports", action="store_true",
                    help="every simulator on a port the system says is free, not the "
                         "inventory's (it never collides with other local traffic)")
    up.add_argument("--write-inventory", metavar="FILE",
                    help="with --free-ports: write the inventory copy that points at the bound "
                         "ports here (default: OTPATCH_HOME/sim-up/)")
    up.add_argument("--syslog", metavar="HOST:PORT",
                    help="where the firewall simulators send syslog (default: all.vars.siem if "
                         "on loopback, else 127.0.0.1:15090, a free port with --free-ports)")
    up.set_defaults(func=c.sim_up)
    p = sub.add_parser("journal", help="the run journal")
    jsub = p.add_subparsers(dest="journal_command", required=True, metavar="ACTION")
    v = jsub.add_parser("verify", help="check the hash chain and the signed checkpoints; "
                                       "name any tampered or lost entry (read-only)")
    v.add_argument("--against", metavar="FILE",
                   help="also check an exported list of checkpoints (or the SIEM's lines)")
    v.add_argument("-i", "--inventory", metavar="INVENTORY",
                   help="check that each checkpoint is signed by a journal host it trusts")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=c.journal_verify)
    x = jsub.add_parser("checkpoints", help="export the signed checkpoints (JSON lines)")
    x.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE, or - for stdout")
    x.set_defaults(func=c.journal_checkpoints)
    k = sub.add_parser("keygen", help="make an Ed25519 key: --host for this otpatch host")
    who = k.add_mutually_exclusive_group(required=True)
    who.add_argument("--host", action="store_true",
                     help="the key this host signs journal checkpoints with")
    who.add_argument("--name", metavar="NAME", help="a person's key (signed approvals)")
    k.add_argument("-o", "--output", required=True, metavar="KEYFILE",
                   help="where to write the private key (0600; never overwritten)")
    k.set_defaults(func=c.keygen)


def _operator(p: argparse.ArgumentParser) -> None:
    p.add_argument("--operator", metavar="NAME",
                   help="who runs it (recorded; an operator cannot approve their own run; "
                        "execute runs at a sign-off gate need it)")


def _run_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("playbook", metavar="PLAYBOOK")
    p.add_argument("-i", "--inventory", metavar="INVENTORY")
    p.add_argument("-e", "--extra", action="append", default=[], metavar="NAME=VALUE",
                   help="set a playbook param (repeatable)")


MAX_LINE = 1000  # characters of one printed problem line; longer ones are clipped


class _Parser(argparse.ArgumentParser):
    """argparse, echoing at most a clipped copy of a bad argument (a 100 KB one too)."""

    def error(self, message: str):
        super().error(clip(message, MAX_LINE))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="otpatch: %(levelname)s: %(message)s")
    # pymodbus logs what otpatch reports itself (a port in use, a peer gone): one line, ours
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    # python-gnupg logs every signature that is not valid; the report says it, in one line
    logging.getLogger("gnupg").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # a retried GET across a reboot
    try:
        load_plugins()
    except OtpatchError as e:
        for line in e.lines():
            print(clip(line, MAX_LINE), file=sys.stderr)
        return e.exit_code
    args = build_parser().parse_args(argv)
    if args.debug:
        logging.getLogger("otpatch").setLevel(logging.DEBUG)
    try:
        _require_text(args)
        return args.func(args)
    except OtpatchError as e:
        for line in e.lines():
            print(clip(line, MAX_LINE), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("otpatch: interrupted; `otpatch resume RUN_ID` continues a run", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_BAD_INPUT
    except Exception as e:  # a bug: one line, and the traceback only with --debug
        if args.debug:
            raise
        print(f"otpatch: internal error (a bug in otpatch): {type(e).__name__}: "
              f"{clip(str(e))}; --debug shows the traceback", file=sys.stderr)
        return EXIT_NOT_COMPLETED


def load_plugins() -> None:
    """The registry: the built-in packages and the site plugins $OTPATCH_MODULE_PLUGINS names."""
    import os

    from otpatch.modules.registry import load_registry

    load_registry(os.environ.get(PLUGINS_ENV, "").split(","), label=PLUGINS_ENV)


def _require_text(args: argparse.Namespace) -> None:
    """Arguments are recorded in the UTF-8 journal: bytes that are not UTF-8 (in a path or
    an -e value) are refused before anything starts, so no run is left half-begun."""
    for name, value in vars(args).items():
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str):
                continue
            if "\x00" in item:  # no command line carries one; a caller in Python can
                shown = _printable(item).replace("\x00", "\\x00")
                raise InputError(f"{_option(name)} {clip(shown)}: holds a NUL "
                                 f"character (at {item.index(chr(0)) + 1})")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as e:
                raise InputError(f"{_option(name)} {clip(_printable(item))}: not UTF-8 text "
                                 f"(character {e.start + 1}): rename the file or re-type "
                                 "the value") from None


def _printable(text: str) -> str:
    """Text with the bytes that are not UTF-8 shown as \\xff escapes."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def _option(dest: str) -> str:
    return {"extra": "-e", "inventory": "-i", "output": "-o"}.get(dest, dest.upper())


if __name__ == "__main__":
    sys.exit(main())
