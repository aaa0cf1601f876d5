"""`otpatch backup [list|verify]`: configuration backups kept, hashed and restore-tested.

`backup` takes each device's backup into the store (engine/backup_take.py) and journals a
BackupStored per backup in the site record; `backup list` shows each with its provenance,
its last re-hash and its last restore test (engine/backup_index.py); `backup verify`
re-hashes every stored object, journals a BackupVerified for each, and exits 1 naming any
that is missing or differs. The restore test itself is a shipped playbook
(playbooks/backup-restore-test.yml) whose completed run counts as the backup's test."""
from __future__ import annotations

import argparse
import json
from typing import Any

from otpatch.modules.contract.errors import EXIT_NOT_COMPLETED, InputError

SHORT = 12  # hex digits of a SHA-256 shown in a listing (any unique 8+ prefix is accepted)


def register(sub: Any) -> None:
    p = sub.add_parser("backup", help="keep each device's configuration backup (mGuard "
                                      "profile, M580 application) hashed in the backup "
                                      "store; list, verify")
    p.add_argument("-i", "--inventory", metavar="INVENTORY")
    p.add_argument("--host", action="append", default=[], metavar="HOST",
                   help="only this host (repeatable; default: every host a backup applies to)")
    p.add_argument("--from", dest="from_file", metavar="FILE",
                   help="register a file a person exported from the device (web UI, vendor "
                        "tool) as its backup; needs one --host and --operator")
    p.add_argument("--artifact", choices=("mguard_profile", "m580_application"),
                   help="what the --from file is (default: the host's kind's)")
    p.add_argument("--sha256", metavar="HEX", help="the SHA-256 the person noted for the "
                                                   "--from file: it must match")
    p.add_argument("--operator", metavar="NAME", help="who takes or hands in the backup "
                                                      "(recorded)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=take)
    bsub = p.add_subparsers(dest="backup_command", metavar="ACTION")
    s = bsub.add_parser("list", help="every stored backup: provenance, last verify, last "
                                     "restore test")
    s.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=show)
    v = bsub.add_parser("verify", help="re-hash every stored backup (or those named); exit 1 "
                                       "when one is missing or differs")
    v.add_argument("-i", "--inventory", required=True, metavar="INVENTORY")
    v.add_argument("shas", nargs="*", metavar="SHA256")
    v.add_argument("--operator", metavar="NAME", help="who verifies (recorded)")
    v.add_argument("--json", action="store_true", help="print one JSON document")
    v.set_defaults(func=verify)


def take(args: argparse.Namespace) -> int:
    """Exit 0 when every backup asked for was stored (skipped hosts said); 1 when a read
    failed or a host named with --host could not be backed up; 2 for bad input."""
    from otpatch.engine import backup_take, siterecord
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.journal import default_home

    if not args.inventory:
        raise InputError("backup: -i INVENTORY is required")
    home, inventory = default_home(), load_inventory(args.inventory)
    if args.from_file is not None:
        if len(args.host) != 1:
            raise InputError("--from FILE: name the one host it is the backup of: --host HOST")
        taken = [backup_take.hand_in(home, inventory, args.host[0], args.from_file,
                                     args.artifact, args.sha256, args.operator)]
    else:
        if args.artifact or args.sha256:
            raise InputError("--artifact and --sha256 describe a --from FILE")
        taken = backup_take.take(home, inventory, args.host)
    stored = [t for t in taken if t.status == "stored"]
    record = siterecord.append(home, [_stored_event(t, args.inventory) for t in stored],
                               inventory=inventory, operator=args.operator) if stored else None
    _print_taken(args, taken, record, home)
    missed = [t for t in taken if t.status in ("failed", "unreachable")
              or (args.host and t.status != "stored")]
    return EXIT_NOT_COMPLETED if missed else 0


def _stored_event(t: Any, inventory: str) -> Any:
    from otpatch.engine.siteevents import BackupStored

    provenance = {**t.provenance, "object": "new" if t.new_object else "already stored"}
    return BackupStored(elapsed=0.0, host=t.host, artifact=t.artifact, sha256=t.sha256,
                        size=t.size, provenance=provenance, summary=dict(t.summary),
                        inventory=inventory)


def _print_taken(args: argparse.Namespace, taken: list, record: str | None, home: Any) -> None:
    if args.json:
        print(json.dumps({"inventory": args.inventory, "record": record, "hosts": [
            {"host": t.host, "status": t.status, "detail": t.detail,
             "artifact": t.artifact or None, "sha256": t.sha256 or None,
             "size": t.size or None, "summary": dict(t.summary) or None} for t in taken]},
            indent=2))
        return
    width = max((len(t.host) for t in taken), default=4)
    for t in taken:
        what = f"{t.artifact:<16}  {t.sha256[:SHORT]}  {t.size} bytes  " if t.sha256 else ""
        print(f"{t.host.ljust(width)}  {t.status.upper():<11}  {what}{t.detail}")
    stored = sum(t.status == "stored" for t in taken)
    where = f" in {home / 'backups'} (site record {record})" if record else ""
    print(f"{stored} backup(s) stored{where}; {sum(t.status == 'skipped' for t in taken)} "
          f"host(s) skipped; {sum(t.status in ('failed', 'unreachable') for t in taken)} "
          "failed")


def show(args: argparse.Namespace) -> int:
    from otpatch.engine.backup_index import backups
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.journal import default_home

    inventory = load_inventory(args.inventory)
    every = backups(default_home(), inventory)
    found = [b for b in every if b.host in inventory.hosts]  # this inventory's hosts only
    others = len(every) - len(found)
    if args.json:
        print(json.dumps({"inventory": args.inventory, "other_hosts_backups": others,
                          "backups": [b.to_json() for b in found]}, indent=2))
        return 0
    for b in found:
        print("\n".join(_listed(b, args.inventory)))
    print(f"{len(found)} backup(s) of {args.inventory}'s hosts"
          + (f"; {others} of hosts it does not list not shown" if others else "")
          + ("" if found else ": otpatch backup -i INVENTORY takes them"))
    return 0


def _listed(b: Any, inventory: str) -> list[str]:
    again = f", {b.times} times" if b.times > 1 else ""
    lines = [f"{b.host}  {b.artifact}  {b.sha256[:SHORT]}  {b.size} bytes  stored "
             f"{b.at[:19]}{again}",
             f"  from:          {b.provenance.get('said')} (site record {b.record})",
             f"  holds:         {_holds(b.artifact, b.summary)}"]
    v = b.last_verify
    lines.append("  last verify:   " + (f"{'ok' if v['ok'] else (v.get('status') or 'FAILED')}"
                                        f" {v['at'][:19]} (site record {v['record']}): "
                                        f"{v['detail']}" if v else "never"))
    lines.append("  restore test:  " + _restore_line(b, inventory))
    return lines


def _restore_line(b: Any, inventory: str) -> str:
    from otpatch.engine.backup_index import NO_RESTORE_TEST, RESTORE_TESTS

    if b.restore_tests:
        t = b.restore_tests[-1]
        return f"{t.said()} (ended {t.ended[:19]})"
    playbook = RESTORE_TESTS.get(b.artifact)
    if playbook is None:
        return (f"not implemented: no restore-test playbook for {b.artifact} "
                f"({NO_RESTORE_TEST.get(b.artifact, 'none ships')})")
    return (f"none yet: otpatch run {playbook} -i {inventory} --dry-run -e "
            f"backup={b.sha256[:SHORT]}")


def _holds(artifact: str, s: Any) -> str:
    if artifact == "mguard_profile" and s.get("rules") is not None:
        parts = [f"{s['rules']} firewall rules"]
        if s.get("rules_digest"):
            parts[0] += f" (rules digest {str(s['rules_digest'])[:19]}...)"
        if s.get("vlans") is not None:
            parts.append("VLANs " + (", ".join(str(v) for v in s["vlans"] if v is not None)
                                     or "none"))
        if s.get("tunnels") is not None:
            parts.append(f"{s['tunnels']} IPsec connection(s)")
        return ", ".join(parts) + f", written by {s.get('atv_version')}"
    if artifact == "m580_application" and (s.get("name") or s.get("checksum")):
        return f"application {s.get('name') or '(unnamed)'} {s.get('checksum') or ''}".strip()
    return "an archive read as bytes (its content is the vendor tool's)"


def verify(args: argparse.Namespace) -> int:
    """Exit 1 when a stored backup is missing or differs from its SHA-256, naming it."""
    from otpatch.engine import backupstore, siterecord
    from otpatch.engine.backup_index import backups
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.journal import default_home
    from otpatch.engine.siteevents import BackupVerified

    home, inventory = default_home(), load_inventory(args.inventory)
    index = backups(home, inventory)
    shas = _chosen(args.shas, sorted({b.sha256 for b in index}))
    checked = [backupstore.rehash(home, sha) for sha in shas]
    record = siterecord.append(home, [BackupVerified(elapsed=0.0, sha256=c.sha256, ok=c.ok,
                                                     detail=c.detail, status=c.status)
                                      for c in checked], inventory=inventory,
                               operator=args.operator) if checked else None
    of: dict[str, str] = {}
    for b in index:  # one object can be the backup of several hosts (identical profiles)
        of[b.sha256] = f"{of[b.sha256]}, {b.host}" if b.sha256 in of else \
            f"{b.artifact} of {b.host}"
    bad = [c for c in checked if not c.ok]
    if args.json:
        print(json.dumps({"inventory": args.inventory, "record": record, "ok": not bad,
                          "backups": [{"sha256": c.sha256, "of": of.get(c.sha256),
                                       "status": c.status, "detail": c.detail}
                                      for c in checked]}, indent=2))
    else:
        for c in checked:
            print(f"{c.sha256[:SHORT]}  {c.status.upper():<10}  {of.get(c.sha256)}: "
                  f"{c.detail}")
        print(f"{len(bad)} of {len(checked)} stored backup(s) missing or damaged"
              + (f" (site record {record})" if record else ""))
    return EXIT_NOT_COMPLETED if bad else 0


def _chosen(given: list[str], known: list[str]) -> list[str]:
    """The SHA-256s named (each a unique prefix of a recorded backup), else every one."""
    from otpatch.engine import backupstore

    out = []
    for text in given:
        prefix = backupstore.plain(text, prefix_ok=True)
        match = [k for k in known if k.startswith(prefix)]
        if len(match) != 1:
            raise InputError(f"backup {prefix}: " + ("no such backup in the site record "
                             "(otpatch backup list)" if not match else
                             f"names {len(match)} backups: give more digits"))
        out.append(match[0])
    return out or known
