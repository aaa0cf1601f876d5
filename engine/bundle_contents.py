"""What an evidence bundle holds, derived from its runs' journal entries: the member
names, how a JSON member is written, the journal slices, the firmware, profile and
signed-document rows, and the report. Export (engine/bundle.py) calls these on the
journal and verify-bundle (engine/bundle_verify.py, engine/bundle_checks.py) again on
the bundle's own slices: one place says what a bundle holds, and the check compares with
exactly that."""
from __future__ import annotations

import json
from typing import Any, Iterable

from otpatch.engine import evidence_store as store
from otpatch.modules.contract.canonical import canonical_json

KIND = "otpatch-bundle/1"
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
REPORTS = {"json": "report.json", "md": "report.md", "html": "report.html"}
APPROVALS, ATTESTATIONS = "approvals.json", "attestations.json"
FIRMWARE, PROFILES = "firmware.json", "profiles.json"
APPROVAL_EVENTS = {"approval_added": "approval", "approval_revoked": "revocation"}
ATTESTATION_EVENTS = {"attestation_signed": "attestation"}
PROFILE_FIELDS = ("host", "label", "container", "path", "sha256", "size")


def json_bytes(doc: Any) -> bytes:
    """How the bundle writes a JSON file: indented, keys sorted, UTF-8, one newline."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def slice_names(run_id: str) -> tuple[str, str]:
    """The journal slice of a run and its signed checkpoint, as bundle members."""
    return f"journal/{run_id}.jsonl", f"journal/{run_id}.checkpoint.json"


def slice_lines(entries: Iterable[dict[str, Any]]) -> bytes:
    """One entry a line, each as an evidence export writes it, in canonical JSON."""
    return "".join(canonical_json(e) + "\n" for e in entries).encode("utf-8")


def slice_document(run_id: str, record_hash: Any, entries: list[Any], checkpoint: Any
                   ) -> dict[str, Any]:
    """The otpatch-evidence/1 document a slice stands for (what check_document checks)."""
    return {"kind": store.KIND, "run_id": run_id, "record_hash": record_hash,
            "checkpoint": checkpoint, "entries": entries}


def own_entries(records: Iterable[Any], event_type: str) -> list[tuple[str, Any]]:
    """(run id, entry) of every entry of that type among the runs' own entries."""
    return [(r.run_id, e) for r in records for e in r.entries if e.event_type == event_type]


def firmware_rows(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Each image firmware.verify verified: its param, path, algorithm, hash, sha256, size."""
    rows = []
    for run_id, e in own_entries(records, "step_result"):
        if e.payload.get("module") != "firmware.verify":
            continue
        verified = ((e.payload.get("result") or {}).get("facts") or {}).get("verified") or {}
        for param, fact in sorted(verified.items()):
            rows.append({"run_id": run_id, "entry": e.seq, "param": param,
                         **{k: fact.get(k) for k in ("path", "algorithm", "hash", "sha256",
                                                     "size")}})
    return rows


def signed_documents(records: Iterable[Any], kinds: dict[str, str]) -> list[dict[str, Any]]:
    """The signed documents the runs recorded: event type -> the payload field holding it."""
    records = list(records)
    rows = [{"run_id": run_id, "entry": e.seq, "event": kind, "document": e.payload.get(field)}
            for kind, field in kinds.items() for run_id, e in own_entries(records, kind)]
    return sorted(rows, key=lambda r: r["entry"])


def profile_rows(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Each mGuard profile backup the runs saved, as their profile_saved entries say."""
    return [{"run_id": run_id, "entry": e.seq, **{k: e.payload.get(k) for k in PROFILE_FIELDS}}
            for run_id, e in own_entries(records, "profile_saved")
            if e.category == "module"]


def report_files(records: list[Any], change: bool, missing: list[str]) -> dict[str, bytes]:
    """The report of these runs in every format, as the report package renders it
    (`missing`: evidence the change named that the exporting host did not hold)."""
    from otpatch.engine.report.build import build
    from otpatch.engine.report.render import render

    doc = build(records, change=change, missing=missing)
    return {name: render(doc, fmt).encode("utf-8") for fmt, name in REPORTS.items()}


def records_of(slices: list[tuple[dict[str, Any], str]]) -> list[Any]:
    """The report's records from slice documents and their sources (signatures checked,
    not their signer: a report does not change with who verifies it)."""
    from otpatch.engine.report.source import from_export

    return [from_export(doc, None, source) for doc, source in slices]


def started(record: Any) -> dict[str, Any]:
    """The run_started payload of a run's record (its first own entry)."""
    first = record.entries[0] if record.entries else None
    return first.payload if first is not None and first.event_type == store.RUN_STARTED else {}
