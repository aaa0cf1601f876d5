"""What each CLI command does; heavy libraries are imported only by the commands using them."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from otpatch.engine import runview
from otpatch.modules.contract.errors import (EXIT_BAD_INPUT, EXIT_GATE_REFUSED,
                                             EXIT_NOT_COMPLETED, EXIT_OK, InputError,
                                             NotImplementedFeature)


def _home() -> Path:
    from otpatch.engine.journal import default_home

    return default_home()


def _host_key(home: Path) -> Path | None:
    """$OTPATCH_HOST_KEY, else <home>/host.key if there is one (engine/keys.py)."""
    from otpatch.engine.keys import host_key_path

    return host_key_path(home)


def _register_keys() -> Path:
    """$OTPATCH_REGISTER_KEYS, else the platform's pinned register keys (registerkeys.py)."""
    from otpatch.engine.registerkeys import pinned_keys_path

    return pinned_keys_path()


def _print_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def validate(args) -> int:
    from otpatch.modules.contract.errors import PlaybookError
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.loader import check_playbook

    if args.rules:
        return rules(args)
    if not args.playbooks and not args.inventory:
        raise InputError("validate: give PLAYBOOK..., -i INVENTORY, or --rules")
    inventory, problems, report = None, [], []
    if args.inventory:
        try:
            inventory = load_inventory(args.inventory)
        except PlaybookError as e:
            problems += e.problems
        report.append({"file": args.inventory, "kind": "inventory", "valid": not problems,
                       "content_hash": inventory.content_hash if inventory else None,
                       "problems": [vars(p) for p in problems]})
    for path in args.playbooks if not problems else ():
        playbook, found = check_playbook(path, inventory)
        problems += found
        report.append({"file": path, "kind": "playbook", "valid": not found,
                       "content_hash": playbook.content_hash if playbook and not found else None,
                       "problems": [vars(p) for p in found],
                       "waivers": [{"rule": w.rule, "reason": w.reason}
                                   for w in (playbook.waivers if playbook else ())]})
    _validate_report(args, problems, report)
    return EXIT_BAD_INPUT if problems else EXIT_OK


def _validate_report(args, problems: list, report: list[dict]) -> None:
    if args.json:
        inventory = [r for r in report if r["kind"] == "inventory"]
        _print_json({"valid": not problems, "inventory": inventory[0] if inventory else None,
                     "playbooks": [r for r in report if r["kind"] == "playbook"]})
        return
    for p in problems:
        print(p, file=sys.stderr)
    against = f" against {args.inventory}" if args.inventory and args.playbooks else ""
    for item in report:
        if item["valid"]:
            print(f"{item['file']}: valid{against if item['kind'] == 'playbook' else ''} "
                  f"({item['content_hash']})")
        for w in item.get("waivers") or () if item["valid"] else ():
            print(f"{item['file']}: waived {w['rule']}: {w['reason']}")


def rules(args) -> int:
    """`validate --rules`: every rule id, what it finds, why, and whether it can be waived."""
    from otpatch.engine.loader import catalogue

    entries = catalogue()
    if args.json:
        _print_json({"rules": {rule: e._asdict() for rule, e in entries.items()}})
        return EXIT_OK
    for rule, e in entries.items():
        tags = [e.applies] if e.applies != "playbook" else []
        tags += ["waivable"] if e.waivable else []
        print(f"{rule}{' (' + ', '.join(tags) + ')' if tags else ''}: {e.description}"
              + (f". Why: {e.why}" if e.why else ""))
    return EXIT_OK


def graph(args) -> int:
    from otpatch.engine.graph import render
    from otpatch.engine.loader import load_playbook

    out = render(load_playbook(args.playbook), args.format)
    if args.output:
        from otpatch.modules.contract.files import write_atomic

        write_atomic(args.output, out if isinstance(out, bytes) else out.encode(), "graph -o")
    elif isinstance(out, bytes):
        sys.stdout.buffer.write(out)
    else:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return EXIT_OK


def plan(args) -> int:
    from otpatch.engine import api
    from otpatch.engine.params import parse_assignments
    from otpatch.engine.plantext import format_plan, plan_to_json

    the_plan = api.plan(api.PlanRequest(args.playbook, args.inventory,
                                        parse_assignments(args.extra), home=_home()))
    if args.json:
        _print_json(plan_to_json(the_plan))
    else:
        print(format_plan(the_plan))
    return EXIT_OK


def run(args) -> int:
    from otpatch.engine import api, display
    from otpatch.engine.params import parse_assignments

    given = parse_assignments(args.extra)
    home = _home()
    request = api.RunRequest(args.playbook, args.inventory, given, mode=args.mode, home=home,
                             host_key=_host_key(home), operator=args.operator,
                             stage=args.stage, evidence=tuple(args.evidence),
                             register_keys=_register_keys())
    shown = display.for_terminal(args.json)
    outcome = api.run(request, observer=shown, prompter=shown.prompter())
    return _finished(outcome.progress, args.json)


def resume(args) -> int:
    from otpatch.engine import api, display

    home = _home()
    shown = display.for_terminal(args.json)
    outcome = api.resume(api.ResumeRequest(args.run_id, home, _host_key(home),
                                           operator=args.operator,
                                           evidence=tuple(args.evidence),
                                           register_keys=_register_keys()),
                         observer=shown, prompter=shown.prompter())
    return _finished(outcome.progress, args.json)


def _finished(progress, as_json: bool) -> int:
    from otpatch.engine.record import RunStatus

    entries = runview.entries_of(_home(), progress.run_id)
    if as_json:
        _print_json(runview.run_document(progress, entries))
    else:
        for line in runview.device_lines(progress, entries):
            print(line)
        ended = runview.record_hash(progress, _home())
        named = f", record {ended} (--evidence names it)" if ended else ""
        print(f"record: journal {_home() / 'journal.sqlite'}, run {progress.run_id}{named} "
              f"(otpatch status {progress.run_id})")
    if progress.status is RunStatus.COMPLETED:
        return EXIT_OK
    if progress.status is RunStatus.AWAITING:
        return EXIT_GATE_REFUSED
    return EXIT_NOT_COMPLETED


def status(args) -> int:
    from otpatch.engine import api

    home = _home()
    if args.run_id:
        progress = api.status(home, args.run_id, host_key=_host_key(home))
        entries = runview.entries_of(home, args.run_id)  # checked by api.status just now
        if args.json:
            _print_json({**runview.run_document(progress, entries),
                         **runview.who_document(entries)})
        else:
            print(runview.format_status(progress, entries))
        return EXIT_OK
    rows = api.status(home, host_key=_host_key(home))
    if args.json:
        _print_json({"runs": [runview.run_document(p) for p in rows]})
    elif not rows:
        print(f"no runs in {home}")
    for p in rows if not args.json else ():
        cfg = p.config
        print(f"{p.run_id}  {p.status.value:<12} {cfg.mode:<8} "
              f"{cfg.playbook_name} {cfg.playbook_version}  state {p.state}")
    return EXIT_OK


def journal_verify(args) -> int:
    """Every hash, link and signed checkpoint; read-only; one line per problem, exit 1."""
    from otpatch.engine.anchor import trust_root
    from otpatch.engine.journal import Journal

    inventory = None
    if args.inventory:
        from otpatch.engine.inventory import load_inventory

        inventory = load_inventory(args.inventory)
    trust = trust_root(_host_key(_home()), inventory)
    against = Path(args.against) if args.against else None
    if against is not None and not against.exists():  # a FIFO or folder: refused on reading
        raise InputError(f"--against {against}: no such file")
    from otpatch.engine.journalfile import FILENAME

    sides = _side_journals_verified(inventory)  # the site record, the fleet journal
    side_ok = all(r.ok for r in sides.values() if r is not None)
    side_json = {key: _verify_json(r) if r is not None else None
                 for key, r in sides.items()}
    if any(r is not None for r in sides.values()) and not (_home() / FILENAME).exists():
        if args.json:  # they check; no run yet
            _print_json({"ok": side_ok, "runs_journal": None, **side_json})
        else:
            print(f"no runs' journal at {_home() / FILENAME} yet")
            _print_sides(sides, trust)
        return EXIT_OK if side_ok else EXIT_NOT_COMPLETED
    with Journal.open(_home(), read_only=True) as journal:
        report = journal.verify(trust=trust, against=against)
    ok = report.ok and side_ok
    if args.json:
        _print_json({**_verify_json(report), **side_json})
        return EXIT_OK if ok else EXIT_NOT_COMPLETED
    _print_verified("journal", report, trust)
    _print_sides(sides, trust)
    return EXIT_OK if ok else EXIT_NOT_COMPLETED


SIDE_JOURNALS = {"site_record": "site record", "fleet_journal": "fleet journal"}


def _side_journals_verified(inventory: Any) -> dict[str, Any]:
    """The verify reports of the site record (engine/siterecord.py) and the fleet journal
    (engine/fleetjournal.py), each None when there is none."""
    from otpatch.engine import fleetjournal, siterecord

    return {"site_record": siterecord.verify(_home(), inventory),
            "fleet_journal": fleetjournal.verify(_home(), inventory)}


def _print_sides(sides: dict[str, Any], trust: Any) -> None:
    for key, report in sides.items():
        if report is not None:
            _print_verified(SIDE_JOURNALS[key], report, trust)


def _verify_json(report: Any) -> dict[str, Any]:
    return {"ok": report.ok, "entries_checked": report.entries_checked,
            "checkpoints": report.checkpoints, "anchored": report.anchored,
            "problems": report.problems, "notes": list(report.notes)}


def _print_verified(what: str, report: Any, trust: Any) -> None:
    from otpatch.engine.anchor import signer

    for problem in report.problems:
        print(f"otpatch: {what}: {problem}", file=sys.stderr)
    if report.ok:
        newest = max(report.signed, key=lambda s: s.entries, default=None)
        print(f"{what} ok: {report.entries_checked} entries, hash chain intact"
              + (f"; {report.checkpoints} signed checkpoint(s), the newest covering "
                 f"#{report.anchored}, by {signer(newest, trust)}" if newest else ""))
    for note in report.notes:
        print(f"  note: {note}")


def journal_checkpoints(args) -> int:
    """Export the signed checkpoints (JSON lines) for safekeeping off the host."""
    from otpatch.engine.anchor import export_lines
    from otpatch.engine.journal import Journal
    from otpatch.engine.journal_verify import list_checkpoints

    with Journal.open(_home(), read_only=True) as journal:
        found = list_checkpoints(journal.path)
    text = export_lines(found)
    if args.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    from otpatch.modules.contract.files import write_atomic

    write_atomic(args.output, text.encode("utf-8"), "journal checkpoints -o")
    newest = f"; the newest covers {found[-1].entries} entries, signed {found[-1].signed_at}" \
        if found else " (the journal has none: is a host key configured?)"
    print(f"{args.output}: {len(found)} signed checkpoint(s){newest}")
    return EXIT_OK


def keygen(args) -> int:
    """`keygen --host`: the otpatch host's Ed25519 key, and its line for the inventory."""
    import socket

    from otpatch.engine import keys

    if not args.host:
        return _keygen_person(args)
    public = keys.generate(Path(args.output))
    print(f"wrote {args.output} (Ed25519 private key, mode 0600): point ${keys.HOST_KEY_ENV} "
          f"at it, or keep it at $OTPATCH_HOME/{keys.HOST_KEY_FILE}")
    print("trust it in the inventory, under all.vars.journal_hosts:")
    print(f"  - {{name: {socket.gethostname() or 'otpatch-host'}, public_key: {public}}}")
    return EXIT_OK


def _keygen_person(args) -> int:
    """`keygen --name NAME`: an approver's key; the line for the inventory's approvers."""
    import json as _json

    from otpatch.engine import keys

    name = " ".join(args.name.split())
    if not name:
        raise InputError("keygen --name: a person's name, as the inventory's approvers list it")
    public = keys.generate(Path(args.output))
    print(f"wrote {args.output} (Ed25519 private key, mode 0600): keep it on {name}'s own "
          "machine; it signs approvals (otpatch approve --key)")
    print("add them to the inventory, under all.vars.approvers (their roles as agreed):")
    print(f"  - {{name: {_json.dumps(name)}, roles: [ROLE], public_key: {public}}}")
    return EXIT_OK


def sim_up(args) -> int:
    import signal
    import threading

    from otpatch.engine.simup import serve
    from otpatch.modules.contract.platform import stop_signals

    stop, stops = threading.Event(), stop_signals()
    for sig in stops.signals:
        signal.signal(sig, lambda *_: stop.set())
    serve(args, _home(), stop, stops.words)
    print("simulators stopped")
    return EXIT_OK


def demo(args) -> int:
    from otpatch.engine.demo import run_demo

    home = _home()
    return run_demo(home, _host_key(home))


def not_built(args) -> int:
    raise NotImplementedFeature(args.what)
