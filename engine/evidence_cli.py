"""`otpatch evidence export|import|list`: a run's record carried from the host that ran it
to the host whose production gate names it (engine/evidence_store.py says what travels and
how it is checked)."""
from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otpatch.engine import evidence_store as store
from otpatch.modules.contract.errors import EXIT_OK, InputError, OtpatchError


def register(sub: Any) -> None:
    p = sub.add_parser("evidence", help="a run's record as evidence: export, import, list")
    esub = p.add_subparsers(dest="evidence_command", required=True, metavar="ACTION")
    x = esub.add_parser("export", help="an ended run's signed record, for another host")
    x.add_argument("run_id", metavar="RUN_ID")
    x.add_argument("-o", "--output", required=True, metavar="FILE")
    x.set_defaults(func=export)
    i = esub.add_parser("import", help="verify an exported record and keep it here")
    i.add_argument("file", metavar="FILE")
    _inventory(i)
    i.set_defaults(func=import_)
    ls = esub.add_parser("list", help="the imported records, each checked again")
    _inventory(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=list_)


def _inventory(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--inventory", metavar="INVENTORY",
                   help="the journal hosts whose signed records count (its journal_hosts)")


# -- export ---------------------------------------------------------------------------------

def export(args: argparse.Namespace) -> int:
    """The run's span of the chain and the first signed checkpoint covering its end (the
    one its end signed: the smallest export, the same whenever it is made), written
    atomically; refused for a run that has not ended or is not yet anchored."""
    from otpatch.engine import runs
    from otpatch.engine.journal import Journal, default_home
    from otpatch.engine.keys import host_key_path
    from otpatch.engine.record import FINAL
    from otpatch.modules.contract.files import write_atomic

    home, doing = default_home(), f"evidence export {args.run_id}"
    progress = runs.view(args.run_id, home, host_key=host_key_path(home))  # checked first
    if progress.status not in FINAL:
        raise InputError(f"{doing}: the run has not ended ({progress.status.value} at "
                         f"{progress.state}): only an ended run's record travels")
    with Journal.open(home, read_only=True) as journal:
        mine = journal.entries(args.run_id)
        record = store.record_entry(mine)
        signed = _covering(journal, record, doing, host_key_path(home) is not None)
        span = journal.entries(seqs=(mine[0].seq, signed.entries))
    doc = export_document(args.run_id, span, signed)
    text = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomic(args.output, text.encode("utf-8"), "evidence export -o")
    others = sum(e.run_id != args.run_id for e in span)
    print(f"{args.output}: run {args.run_id} ({progress.status.value}), record "
          f"{doc['record_hash']}: entries #{span[0].seq}-#{span[-1].seq} ({others} of other "
          f"runs), signed {signed.signed_at}; on the other host: otpatch evidence import "
          f"{args.output} -i INVENTORY")
    return EXIT_OK


def _covering(journal: Any, record: Any, doing: str, has_key: bool) -> Any:
    """The oldest signed checkpoint (the file's or its copy's) that covers the record entry
    and still matches the file; InputError saying what to do when there is none."""
    from otpatch.engine.journal_verify import list_checkpoints

    found = sorted(list_checkpoints(journal.path), key=lambda s: s.entries)
    for signed in (s for s in found if s.entries >= record.seq):
        at = journal.entries(seqs=(signed.entries, signed.entries))
        if at and at[0].hash == signed.head_hash and signed.signature_valid():
            return signed
    if not has_key:
        raise InputError(f"{doing}: the run is not covered by a signed checkpoint: this host "
                         "signs none (no host key): make one with `otpatch keygen --host`; "
                         "the next run's end then signs the journal")
    newest = f"the newest covers #{found[-1].entries}" if found else "there is none yet"
    raise InputError(f"{doing}: the run is not covered by a signed checkpoint yet (it ended "
                     f"at #{record.seq}, {newest}): the next run's end on this host signs one")


def export_document(run_id: str, span: list[Any], signed: Any) -> dict[str, Any]:
    """The export: `span`, the chain from the run's first entry to the entry `signed`
    signs (other runs' entries come along: the links need them), every entry in full,
    and the checkpoint; checked as an import would check it, so no export that would be
    refused is ever written."""
    from otpatch.engine.journalfile import this_host
    from otpatch.modules.contract.errors import JournalError

    record = store.record_entry(e for e in span if e.run_id == run_id)
    doc = {"kind": store.KIND, "run_id": run_id,
           "record_hash": store.shown(record.hash) if record else None,
           "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "exported_from": this_host(), "checkpoint": signed.to_dict(),
           "entries": [{**e.content(), "hash": e.hash, "operator": e.operator,
                        "host": e.host} for e in span]}
    problems = store.check_document(doc, None).problems
    if problems:
        raise JournalError(f"evidence export {run_id}: refused: the journal's span does not "
                           f"verify: {problems[0]}; run otpatch journal verify")
    return doc


# -- import and list ------------------------------------------------------------------------

def import_(args: argparse.Namespace) -> int:
    """Verify an export against the journal hosts the inventory trusts, then store it."""
    from otpatch.engine.journal import default_home
    from otpatch.modules.contract.files import read_regular

    home = default_home()
    trust = _trust(args.inventory, home)
    if trust is None:
        raise InputError(f"evidence import {args.file}: refused, nothing stored: no journal "
                         "hosts to check its signer against: give -i INVENTORY (its "
                         "all.vars.journal_hosts)")
    raw = read_regular(args.file, store.MAX_EXPORT_BYTES, "evidence import")
    path, checked, new = store.import_record(home, raw, f"evidence import {args.file}", trust)
    progress = _progress(checked.run_id, checked.run_entries())
    cfg = progress.config
    print(f"{'imported' if new else 'already imported'}: run {checked.run_id} "
          f"({cfg.playbook_name} {cfg.playbook_version}, {cfg.mode}, {progress.status.value}), "
          f"record {store.shown(checked.record.hash)}, signed by "
          f"{store.signer_name(checked, trust)}: {path}")
    return EXIT_OK


def list_(args: argparse.Namespace) -> int:
    """Every imported record, re-verified now (a stored file may have been edited)."""
    from otpatch.engine.journal import default_home

    home = default_home()
    trust = _trust(args.inventory, home)
    rows = sorted((_row(path, trust) for path in store.stored(home)),
                  key=lambda r: (r["ended"] or "", r["record_hash"]))
    if args.json:
        print(json.dumps({"evidence": rows}, indent=2, sort_keys=True))
        return EXIT_OK
    if not rows:
        print(f"no imported evidence in {store.folder(home)}")
    for r in rows:
        print(f"{r['run_id'] or '?'}  {r['status'] or '?':<11} {r['mode'] or '?':<8} "
              f"{r['playbook'] or '?'} {r['playbook_version'] or ''}  ended "
              f"{(r['ended'] or '?')[:19]}  signed by {r['signer']}")
        print(f"  record {r['record_hash']}")
        for problem in r["problems"]:
            print(f"  not verified: {problem}")
    return EXIT_OK


def _row(path: Path, trust: Any) -> dict[str, Any]:
    found, signer = store.imported_run(path, trust)
    row = {"run_id": found.run_id or None, "record_hash": store.shown(found.record_hash),
           "signer": signer, "file": str(path), "verified": found.verified,
           "problems": list(found.problems), "playbook": None, "playbook_version": None,
           "mode": None, "status": None,
           "ended": found.entries[-1].ts if found.entries else None}
    if not found.entries:
        return row
    try:
        progress = _progress(found.run_id, found.entries)
    except OtpatchError as e:
        row["problems"].append(str(e))
        return row
    cfg = progress.config
    return {**row, "playbook": cfg.playbook_name, "playbook_version": cfg.playbook_version,
            "mode": cfg.mode, "status": progress.status.value}


def _progress(run_id: str, entries: Any) -> Any:
    from otpatch.engine.record import fold

    return fold(run_id, entries)


def _trust(inventory_path: str | None, home: Path) -> Any:
    """The journal hosts the inventory trusts, else this host's own key (engine/anchor.py)."""
    from otpatch.engine.anchor import trust_root
    from otpatch.engine.keys import host_key_path

    inventory = None
    if inventory_path:
        from otpatch.engine.inventory import load_inventory

        inventory = load_inventory(inventory_path)
    return trust_root(host_key_path(home), inventory)
