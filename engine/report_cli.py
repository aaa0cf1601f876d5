"""`otpatch report RUN_ID | --change RUN_ID --format json|md|html [-o FILE]`: the
change-control record of an ended run, or of a change (the run and the evidence runs its
sign-offs named), from the journal alone (engine/report/)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from otpatch.modules.contract.errors import EXIT_OK, InputError


def register(sub: Any) -> None:
    from otpatch.engine.report.render import FORMATS

    p = sub.add_parser("report", help="the change-control record of an ended run or change")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("run_id", nargs="?", metavar="RUN_ID")
    which.add_argument("--change", metavar="RUN_ID",
                       help="the change this run ends: it and the evidence runs its "
                            "sign-offs named (lab, staging), followed through theirs")
    p.add_argument("--format", choices=FORMATS, default="md")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write it here (atomically: all of it or nothing); else stdout")
    p.set_defaults(func=report)


def report(args: argparse.Namespace) -> int:
    from otpatch.engine.journal import default_home
    from otpatch.engine.report.render import render

    doc, notes = report_document(default_home(), args.run_id, args.change)
    text = render(doc, args.format)
    if args.output:
        from otpatch.modules.contract.files import write_atomic

        write_atomic(args.output, text.encode("utf-8"), "report -o")
        runs = ", ".join(r["run_id"] for r in doc["runs"])
        print(f"{args.output}: {args.format} record of {runs} "
              f"({doc['runs'][-1]['status']})")
    else:
        sys.stdout.write(text)
    for note in notes:
        print(f"otpatch: note: {note}", file=sys.stderr)
    return EXIT_OK


def report_document(home: Path, run_id: str | None, change: str | None
                    ) -> tuple[dict[str, Any], list[str]]:
    """The report document, and notes for the user (evidence named but not found here);
    InputError for a run that has not ended."""
    from otpatch.engine.report import build, source

    if change:
        records, missing = source.load_change(home, change)
    else:
        records, missing = [source.load_run(home, run_id)], []
    for record in records:
        require_ended(record)
    notes = [f"evidence {m} is named by the change but neither this journal nor the imported "
             "records hold it (otpatch evidence import FILE)" for m in missing]
    return build.build(records, change=bool(change), missing=missing), notes


def require_ended(record: Any) -> None:
    """A record is made of an ended run: InputError for one still going or waiting."""
    from otpatch.engine.record import FINAL, fold

    if record.record is not None:
        return
    progress = fold(record.run_id, record.entries)
    if progress.status not in FINAL:
        raise InputError(f"report {record.run_id}: the run has not ended ({progress.status.value}"
                         f" at {progress.state}): a record is made of an ended run; `otpatch "
                         f"status {record.run_id}` shows where it stands")
