"""`otpatch export`: a run's (or a change's) evidence bundle for an auditor: the journal
slices with their signed checkpoints, the report in its three formats, the profile
backups, the firmware hashes, the approvals and attestations, the playbook and the
inventory's relevant part without secrets; every file listed with its SHA-256 in a
manifest the host key signs, written as one deterministic tar.gz, atomically.

What is carried is derived from the journal by engine/bundle_contents.py, which
engine/bundle_verify.py calls again on the bundle's own slices; the inventory is reduced
by engine/bundle_inventory.py, the tar written by engine/bundle_tar.py. Here: gathering
the bundle in memory, and the files the journal names, each checked against its entry."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otpatch.engine import evidence_store as store
from otpatch.engine.approvals import canonical
from otpatch.engine.bundle_contents import (APPROVAL_EVENTS, APPROVALS, ATTESTATION_EVENTS,
                                            ATTESTATIONS, FIRMWARE, KIND, MANIFEST,
                                            PROFILES, SIGNATURE, firmware_rows, json_bytes,
                                            profile_rows, records_of, report_files,
                                            signed_documents, slice_document, slice_lines,
                                            slice_names, started)
from otpatch.engine.bundle_inventory import (INVENTORY_KIND, REDUCED, reduced_inventory,
                                             scrubbed, secret_paths)
from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.errors import InputError

MAX_PROFILE_BYTES = 64 * 1024 * 1024  # an mGuard profile is kilobytes; an ECS container MB
MAX_PLAYBOOK_BYTES = 4 * 1024 * 1024
PROFILE_WARNING = ("{n} mGuard profile backup(s) are in the bundle as they were saved: a "
                   "profile can hold VPN pre-shared keys, private keys and password hashes; "
                   "keep the bundle as confidential as the devices' configuration "
                   "(--without-profiles carries their hashes only)")


@dataclass(frozen=True)
class Bundle:
    """A bundle made in memory: its top folder, its files (relative path -> bytes, the
    manifest and its signature among them), the manifest, the tar mtime, the warnings."""

    top: str
    files: dict[str, bytes]
    manifest: dict[str, Any]
    mtime: int
    warnings: tuple[str, ...]


# -- gathering --------------------------------------------------------------------------------

def gather(home: Path, run_id: str, *, change: bool, with_profiles: bool) -> Bundle:
    """The bundle of run `run_id` (with `change`: of it and its evidence runs), made in
    memory and signed; InputError naming what is missing or not yet exportable."""
    from otpatch.engine import keys

    doing = f"export {run_id}"
    key = keys.host_key(home)
    if key is None:
        raise InputError(f"{doing}: this host has no host key to sign the bundle's manifest: "
                         "make one with `otpatch keygen --host`")
    records, missing = _records(home, run_id, change, doing)
    files: dict[str, bytes] = {}
    slices = [_slice(r, files) for r in records]
    files.update(report_files(records_of(slices), change, missing))
    rows, left_out = _profiles(records, files, with_profiles, doing)
    runs = [_run_row(r, doc, source, files, left_out, doing)
            for r, (doc, source) in zip(records, slices)]
    files.update({PROFILES: json_bytes(rows), FIRMWARE: json_bytes(firmware_rows(records)),
                  APPROVALS: json_bytes(signed_documents(records, APPROVAL_EVENTS)),
                  ATTESTATIONS: json_bytes(signed_documents(records, ATTESTATION_EVENTS))})
    manifest = _manifest(key, runs, run_id if change else None, missing, left_out, files)
    files[MANIFEST] = json_bytes(manifest)
    files[SIGNATURE] = (key.sign(canonical(manifest)) + "\n").encode("ascii")
    return Bundle(f"otpatch-bundle-{run_id}", files, manifest, _ended_at(records[-1]),
                  _warnings(rows, left_out, missing))


def _manifest(key: Any, runs: list[dict[str, Any]], change: str | None, missing: list[str],
              left_out: list[dict[str, str]], files: dict[str, bytes]) -> dict[str, Any]:
    """What the host key signs: the runs, what was left out, every file's sha256 and size."""
    from otpatch.engine.journalfile import this_host

    return {"kind": KIND, "created_at": datetime.now(timezone.utc).isoformat(
        timespec="seconds"), "host": this_host(), "runs": runs, "change": change,
        "missing": missing, "left_out": left_out, "public_key": key.public_key,
        "files": {n: {"sha256": sha256_hex(b), "size": len(b)} for n, b in sorted(files.items())}}


def _warnings(rows: list[dict[str, Any]], left_out: list[dict[str, str]],
              missing: list[str]) -> tuple[str, ...]:
    """What export says on stderr: the secrets profiles carry, what it left out."""
    carried = sum(bool(r["file"]) for r in rows)
    return tuple(([PROFILE_WARNING.format(n=carried)] if carried else [])
                 + [f"left out: {item['what']}: {item['why']}" for item in left_out]
                 + [f"evidence named but not found here: {m}" for m in missing])


def _records(home: Path, run_id: str, change: bool, doing: str) -> tuple[list[Any], list[str]]:
    """The run (checked, ended) and, for a change, its evidence runs; each anchored by a
    signed checkpoint and verified, or InputError saying which is not and why."""
    from otpatch.engine import runs
    from otpatch.engine.keys import host_key_path
    from otpatch.engine.record import FINAL
    from otpatch.engine.report.source import load_change, load_run

    progress = runs.view(run_id, home, host_key=host_key_path(home))  # journal checked first
    if progress.status not in FINAL:
        raise InputError(f"{doing}: the run has not ended ({progress.status.value} at "
                         f"{progress.state}): only an ended run's evidence is bundled; "
                         f"`otpatch resume {run_id}` continues it")
    records, missing = load_change(home, run_id) if change else ([load_run(home, run_id)], [])
    for r in records:
        if r.checkpoint is None or not r.span:
            raise InputError(f"{doing}: run {r.run_id} is not covered by a signed checkpoint "
                             "yet: the next run's end on this host signs one")
        if not r.verified:
            raise InputError(f"{doing}: run {r.run_id} ({r.source}) does not verify: "
                             f"{r.problems[0]}")
    return records, list(missing)


def _slice(record: Any, files: dict[str, bytes]) -> tuple[dict[str, Any], str]:
    """The run's journal slice and checkpoint as members; its evidence document."""
    from otpatch.engine.evidence_cli import export_document

    entries = export_document(record.run_id, list(record.span), record.checkpoint)["entries"]
    lines, checkpoint = slice_names(record.run_id)
    files[lines] = slice_lines(entries)
    files[checkpoint] = json_bytes(record.checkpoint.to_dict())
    doc = slice_document(record.run_id, store.shown(record.record.hash), entries,
                         record.checkpoint.to_dict())
    return doc, record.source


def _run_row(record: Any, doc: dict[str, Any], source: str, files: dict[str, bytes],
             left_out: list[dict[str, str]], doing: str) -> dict[str, Any]:
    """The manifest's line for one run, its playbook and inventory added as members."""
    local = source == store.LOCAL
    playbook, why = _playbook(record, files, local, doing)
    if why:
        left_out.append({"what": f"the playbook of run {record.run_id}", "why": why})
    inventory, why = _inventory(record, files, local)
    if why:
        left_out.append({"what": f"the inventory of run {record.run_id}", "why": why})
    lines, checkpoint = slice_names(record.run_id)
    return {"run_id": record.run_id, "record_hash": doc["record_hash"], "source": source,
            "status": record.record.payload.get("status"), "journal": lines,
            "checkpoint": checkpoint, "playbook": playbook, "inventory": inventory}


def _ended_at(record: Any) -> int:
    """The tar's mtime: the run's end (its record entry's time), whole seconds."""
    return int(datetime.fromisoformat(record.record.ts).timestamp())


def _member(files: dict[str, bytes], folder: str, run_id: str, name: str, data: bytes) -> str:
    """`folder/name`, or `folder/run_id/name` when that name holds other bytes already."""
    member = f"{folder}/{name}"
    if files.get(member, data) != data:
        member = f"{folder}/{run_id}/{name}"
    files[member] = data
    return member


# -- the files the journal names ----------------------------------------------------------------

def _profiles(records: list[Any], files: dict[str, bytes], carry: bool, doing: str
              ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The profile_saved entries' files: each read and checked against its entry (this
    host's runs: refused if gone or changed; an imported run's: left out if not here)."""
    rows, left_out = [], []
    local = {r.run_id for r in records if r.source == store.LOCAL}
    for row in profile_rows(records):
        data, why = _profile_bytes(row) if carry else (None, "--without-profiles: its "
                                                        "hash only")
        if why and row["run_id"] in local and carry:
            raise InputError(f"{doing}: the profile backup {row['path']} (run "
                             f"{row['run_id']}, entry #{row['entry']}) {why}: the bundle "
                             "carries only the file the journal hashed")
        member = None
        if data is not None:
            member = _member(files, "profiles", row["run_id"], Path(row["path"]).name, data)
        else:
            left_out.append({"what": f"profile {Path(str(row['path'])).name}", "why": why})
        rows.append({**row, "file": member, "left_out": why or None})
    return rows, left_out


def _profile_bytes(row: dict[str, Any]) -> tuple[bytes | None, str]:
    """The saved profile's bytes, or None and why they cannot be carried."""
    from otpatch.modules.contract.files import read_regular

    try:
        data = read_regular(str(row["path"]), MAX_PROFILE_BYTES, "profile backup")
    except InputError as e:
        return None, f"cannot be read here ({str(e).rpartition(': ')[2]})"
    if len(data) != row["size"] or sha256_hex(data) != row["sha256"]:
        return None, (f"has changed since it was saved (sha256 {sha256_hex(data)}, "
                      f"{len(data)} bytes; the journal recorded {row['sha256']}, "
                      f"{row['size']} bytes)")
    return data, ""


def _playbook(record: Any, files: dict[str, bytes], local: bool, doing: str
              ) -> tuple[str | None, str]:
    """The playbook file the run ran, added if its content still hashes to the recorded
    playbook_hash (refused for this host's run, left out for an imported one)."""
    from otpatch.modules.contract.errors import PlaybookError
    from otpatch.modules.contract.files import read_regular
    from otpatch.modules.contract.yamlsrc import parse_yaml

    first = started(record)
    path, recorded = str(first.get("playbook")), first.get("playbook_hash")
    try:
        data = read_regular(path, MAX_PLAYBOOK_BYTES, "playbook")
        now = parse_yaml(data, path).content_hash
    except (InputError, PlaybookError) as e:
        data, now, why = None, None, f"{path} cannot be read here ({e})"
    if data is not None and now != recorded:
        why = f"{path} has changed since the run started ({recorded} then, {now} now)"
    if data is not None and now == recorded:
        return _member(files, "playbooks", record.run_id, Path(path).name, data), ""
    if local:
        raise InputError(f"{doing}: the playbook of run {record.run_id}: {why}: the bundle "
                         "carries only the file the run ran")
    return None, why


def _inventory(record: Any, files: dict[str, bytes], local: bool) -> tuple[str | None, str]:
    """The run's inventory reduced to its targets, secrets removed; left out (with why)
    when the file is not here or no longer the one the run read."""
    from otpatch.engine.inventory import load_inventory
    from otpatch.modules.contract.errors import PlaybookError
    from otpatch.modules.contract.yamlsrc import read_yaml

    first = started(record)
    path = first.get("inventory")
    if not path:
        return None, ""
    try:
        source, inventory = read_yaml(path), load_inventory(path)
    except PlaybookError as e:
        return None, f"{path} cannot be read here ({e.problems[0].message})"
    if source.content_hash != first.get("inventory_hash"):
        return None, (f"{path} has changed since the run started ({first.get('inventory_hash')}"
                      f" then, {source.content_hash} now)")
    hosts = {h for names in (first.get("targets") or {}).values() for h in names}
    content = reduced_inventory(source.data, hosts, inventory)
    doc = {"kind": INVENTORY_KIND, "run_id": record.run_id, "inventory": path,
           "inventory_hash": source.content_hash, "reduced": REDUCED,
           "removed": secret_paths(content), "hosts": sorted(hosts),
           "content": scrubbed(content)}
    name = f"inventory/{record.run_id}.json"
    files[name] = json_bytes(doc)
    return name, ""
