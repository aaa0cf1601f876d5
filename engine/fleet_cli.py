"""`otpatch fleet run|status|report`: a rollout over many plants, scheduled by Ansible, run by
each site's own otpatch (engine/fleet.py), and what the fleet journal kept of it."""
from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from otpatch.modules.contract.errors import EXIT_NOT_COMPLETED, EXIT_OK, InputError, clip


def register(sub: Any) -> None:
    p = sub.add_parser("fleet", help="roll a procedure out over many sites with Ansible "
                                     "(canary, then waves); each site's otpatch runs it")
    fsub = p.add_subparsers(dest="fleet_command", required=True, metavar="ACTION")
    r = fsub.add_parser(
        "run", help="run the rollout playbook over a fleet inventory",
        description="Run fleet/rollout.yml (or --rollout) with ansible-runner over the fleet "
                    "inventory (one Ansible host per site: otpatch_site, its otpatch "
                    "inventory; otpatch_home, its OTPATCH_HOME; otpatch_fleet_mode observe | "
                    "execute, default observe). Each site runs PLAYBOOK through its own "
                    "otpatch (the otpatch.fleet collection's site_rollout); the fleet only "
                    "schedules and records. --check is Ansible's check mode: each site plans "
                    "only and no device is touched. Every site event is journaled in the "
                    "fleet journal under OTPATCH_HOME/fleet. Exit 0 when Ansible reports the "
                    "rollout successful, 1 otherwise (a site failed, or awaits a sign-off), "
                    "2 bad input.")
    r.add_argument("fleet_inventory", metavar="FLEET_INVENTORY")
    r.add_argument("playbook", metavar="PLAYBOOK", help="the otpatch procedure the sites run")
    r.add_argument("--check", action="store_true", help="check mode: the sites plan only")
    r.add_argument("--execute", action="store_true",
                   help="run in execute mode at the sites (default: dry run against the "
                        "sites' simulators)")
    r.add_argument("-e", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a param of the procedure (repeatable)")
    r.add_argument("--operator", metavar="NAME", help="who runs the rollout")
    r.add_argument("--rollout", metavar="FILE", help="another Ansible rollout playbook")
    r.add_argument("--worker", metavar="COMMAND",
                   help="send the job as ansible-runner's transmit stream to this command "
                        "(e.g. 'ansible-runner worker', or ssh to an execution node running "
                        "it) and process its events here, as AWX does over receptor")
    r.add_argument("--json", action="store_true", help="print one JSON document at the end")
    r.set_defaults(func=run)
    s = fsub.add_parser("status", help="the fleet runs the fleet journal holds")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=status)
    t = fsub.add_parser("report", help="one line per site of a fleet run (default: the newest)")
    t.add_argument("run_id", nargs="?", metavar="FLEET_RUN_ID")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=report)
    _register_site(fsub)


def _register_site(fsub: Any) -> None:
    """The site side, for a site host that has only the CLI: the documents the
    otpatch.fleet modules return (engine/fleet_site.py, engine/fleet_status.py)."""
    r = fsub.add_parser(
        "site-rollout", help="(at a site) run a fleet's procedure here; JSON result",
        description="What the otpatch.fleet site_rollout module does, at this site, under "
                    "OTPATCH_HOME: check the playbook is the one the fleet pinned, defer when "
                    "the window is closed or too short, then run it (or plan it with "
                    "--check, or resume a run), and print the module's result as JSON. "
                    "Exit 0 unless the result is failed (1) or the input is bad (2).")
    r.add_argument("playbook", metavar="PLAYBOOK")
    r.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    r.add_argument("--playbook-sha256", metavar="HASH", help="the fleet's pin")
    r.add_argument("-e", "--param", action="append", default=[], metavar="NAME=VALUE")
    r.add_argument("--execute", action="store_true", help="execute (default: dry run)")
    r.add_argument("--fleet-mode", choices=("observe", "execute"), default="execute")
    r.add_argument("--check", action="store_true", help="plan only, touch nothing")
    r.add_argument("--stage", choices=("lab", "staging", "production"))
    r.add_argument("--operator", metavar="NAME")
    r.add_argument("--evidence", action="append", default=[], metavar="RECORD")
    r.add_argument("--resume", metavar="RUN_ID", help="continue this run instead")
    r.add_argument("--resume-paused", action="store_true",
                   help="with --execute: continue the newest paused run of this playbook "
                        "here, if there is one, instead of starting another")
    r.add_argument("--json", action="store_true", required=True,
                   help="print the result as JSON (required: this is for machines)")
    r.set_defaults(func=site_rollout)
    s = fsub.add_parser("site-status", help="(at a site) the site's status; JSON")
    s.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    s.add_argument("--playbook", metavar="PLAYBOOK", help="also give its SHA-256")
    s.add_argument("--json", action="store_true", required=True)
    s.set_defaults(func=site_status)


def site_rollout(args: argparse.Namespace) -> int:
    from otpatch.engine import fleet_site
    from otpatch.engine.journal import default_home
    from otpatch.engine.keys import host_key_path
    from otpatch.engine.registerkeys import pinned_keys_path

    home = default_home()
    ask = fleet_site.SiteRollout(
        args.playbook, args.inventory, home, playbook_sha256=args.playbook_sha256,
        params=dict(_param(p) for p in args.param),
        mode="execute" if args.execute else "dry_run", fleet_mode=args.fleet_mode,
        check=args.check, stage=args.stage, operator=args.operator,
        host_key=host_key_path(home), evidence=tuple(args.evidence),
        resume=bool(args.resume), run_id=args.resume, resume_paused=args.resume_paused,
        register_keys=pinned_keys_path())
    result = fleet_site.rollout(ask)
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return EXIT_NOT_COMPLETED if result.get("failed") else EXIT_OK


def site_status(args: argparse.Namespace) -> int:
    from otpatch.engine.fleet_status import site_status as status_of
    from otpatch.engine.journal import default_home

    print(json.dumps(status_of(args.inventory, default_home(), args.playbook), indent=2,
                     sort_keys=True, default=str))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    from otpatch.engine.fleet import run_fleet
    from otpatch.engine.journal import default_home

    params = dict(_param(p) for p in args.param)
    if args.execute and not args.operator:
        raise InputError("fleet run --execute needs --operator NAME: each site checks its "
                         "sign-offs against the person who runs the change")
    show = None if args.json else _Progress()
    outcome = run_fleet(args.fleet_inventory, args.playbook, home=default_home(),
                        check=args.check, mode="execute" if args.execute else "dry_run",
                        params=params, operator=args.operator, rollout=args.rollout,
                        worker=shlex.split(args.worker) if args.worker else None,
                        on_event=show)
    summary = summarize(default_home(), outcome.run_id)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("\n".join(report_lines(summary)))
    return EXIT_OK if outcome.status == "successful" else EXIT_NOT_COMPLETED


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise InputError(f"-e {clip(text)}: expected NAME=VALUE")
    return name, value


class _Progress:
    """A line per site as its tasks report (rich, so a terminal shows it styled)."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console, self.batch = Console(highlight=False), 0

    def __call__(self, event: Any, site: Any) -> None:
        """One line per task result: the site, the task, what Ansible said of it (ok,
        changed, failed, skipped) and, from site_rollout, the site's state and run."""
        if site.batch != self.batch:
            self.batch = site.batch
            self.console.print(f"[bold]batch {site.batch}[/bold]")
        said = event.event.removeprefix("runner_on_").replace("ok", "changed" if event.changed
                                                              else "ok")
        style = "red" if event.failed else "green" if said in ("ok", "changed") else "yellow"
        run = (f" -> {event.state}" + (f", run {event.site_run_id}" if event.site_run_id
                                       else "")) if event.state else ""
        self.console.print(f"  {site.site}: {event.task}: [{style}]{said}[/{style}]{run}",
                           soft_wrap=True)


def summarize(home: Any, run_id: str | None) -> dict[str, Any]:
    """A fleet run as the fleet journal holds it: its start, end and each site's last word."""
    from otpatch.engine.fleetjournal import entries, run_ids

    found = entries(home)
    ids = run_ids(found)
    if not ids:
        raise InputError(f"no fleet run in {home}/fleet (otpatch fleet run)")
    wanted = run_id or ids[-1]
    if wanted not in ids:
        raise InputError(f"no fleet run {clip(wanted)} (fleet runs: {', '.join(ids[-5:])})")
    mine = [e for e in found if e.run_id == wanted]
    started = next(e.payload for e in mine if e.event_type == "fleet_run_started")
    ended = next((e for e in mine if e.event_type == "fleet_run_ended"), None)
    sites = {s["site"]: {"site": s["site"], "groups": s["groups"], "fleet_mode": s["fleet_mode"],
                         "batch": None, "state": "not reached", "failed": False,
                         "site_run_id": None, "journal_head": None, "record": None, "msg": ""}
             for s in started["sites"]}
    for e in mine:
        if e.event_type == "fleet_site_event":
            _fold(sites.setdefault(e.payload["site"], {"site": e.payload["site"]}), e.payload)
    return {"fleet_run": wanted, "started": mine[0].ts, "operator": mine[0].operator,
            "playbook": started["playbook"], "playbook_sha256": started["playbook_sha256"],
            "fleet_inventory": started["fleet_inventory"], "check": started["check"],
            "status": ended.payload["status"] if ended else "not ended",
            "ended": ended.ts if ended else None, "sites": list(sites.values())}


def _fold(site: dict[str, Any], p: dict[str, Any]) -> None:
    site["batch"] = p["batch"]
    if site.get("state", "not reached") == "not reached":
        site["state"] = "reached"  # until a task of the site says more
    if p.get("state") or p.get("site_run_id") or p["failed"]:
        site["state"] = p.get("state") or ("failed: " + p["task"] if p["failed"]
                                           else site.get("state"))
        for key in ("site_run_id", "journal_head", "record"):
            site[key] = p.get(key) or site.get(key)
    site["failed"] = bool(site.get("failed")) or p["failed"]
    site["msg"] = p.get("msg") or site.get("msg", "")


def report_lines(s: dict[str, Any]) -> list[str]:
    check = " (check mode)" if s["check"] else ""
    out = [f"fleet run {s['fleet_run']}{check}: {s['status']}; {s['playbook']} "
           f"({s['playbook_sha256'][:19]}...) over {s['fleet_inventory']}"]
    for site in s["sites"]:
        head = site.get("journal_head") or {}
        where = (f"  run {site['site_run_id']}, site journal #{head.get('seq')} "
                 f"{str(head.get('hash', ''))[:12]}") if site.get("site_run_id") else ""
        rec = f", record {site['record'][:19]}..." if site.get("record") else ""
        batch = f"batch {site['batch']}" if site.get("batch") else "no batch"
        out.append(f"{site['site']:<16} {batch:<8} {site['state']:<18}{where}{rec}")
        if (site.get("failed") or site["state"] == "deferred") and site.get("msg"):
            out.append(f"{'':<16} {clip(site['msg'], 200)}")
    return out


def report(args: argparse.Namespace) -> int:
    from otpatch.engine.journal import default_home

    summary = summarize(default_home(), args.run_id)
    print(json.dumps(summary, indent=2) if args.json else "\n".join(report_lines(summary)))
    return EXIT_OK


def status(args: argparse.Namespace) -> int:
    from otpatch.engine.fleetjournal import entries, run_ids
    from otpatch.engine.journal import default_home

    home = default_home()
    runs = [summarize(home, rid) for rid in run_ids(entries(home))]
    if args.json:
        print(json.dumps({"fleet_runs": runs}, indent=2))
        return EXIT_OK
    if not runs:
        print(f"no fleet run in {home}/fleet")
    for r in runs:
        states: dict[str, int] = {}
        for site in r["sites"]:
            states[site["state"]] = states.get(site["state"], 0) + 1
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        print(f"{r['fleet_run']}  {r['started'][:19]}  {r['status']:<10} "
              f"{'check ' if r['check'] else ''}{r['playbook']}: {counts}")
    return EXIT_OK
