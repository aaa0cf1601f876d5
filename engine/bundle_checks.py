"""verify-bundle's verdict (one line a check: ok | FAILED | not checked | note) and its
checks of the members the journal slices name: the approvals' and attestations'
signatures, the profiles, firmware hashes, playbooks and inventories, and the report,
each compared with what the slices derive (engine/bundle_contents.py). The manifest, its
signature and the slices themselves are checked by engine/bundle_verify.py."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from otpatch.engine import bundle_contents as C
from otpatch.engine.bundle_inventory import INVENTORY_KIND, secret_paths
from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.errors import clip

OK, FAILED, NOT_CHECKED, NOTE = "ok", "FAILED", "not checked", "note"


@dataclass(frozen=True)
class Check:
    """One line of the verdict: the file it is about, ok | FAILED | not checked | note."""

    file: str
    status: str
    detail: str

    def line(self) -> str:
        return f"{self.status}: {self.file}: {self.detail}"


@dataclass
class Verdict:
    """Every check of one bundle, and what it says it holds."""

    bundle: str
    checks: list[Check] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    change: str | None = None
    signer: str | None = None

    @property
    def verified(self) -> bool:
        return bool(self.checks) and all(c.status in (OK, NOTE) for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAILED]


class MemberChecks:
    """A bundle's files, the verdict their checks add lines to, and the checks of the
    members the journal slices name (run by Checker, engine/bundle_verify.py, once the
    manifest is read and the slices' records verify)."""

    def __init__(self, path: str, files: dict[str, bytes]):
        self.files = files
        self.verdict = Verdict(path)
        self.manifest: dict[str, Any] = {}
        self.records: list[Any] = []

    def add(self, file: str, status: str, detail: str) -> None:
        self.verdict.checks.append(Check(file, status, detail))

    def json_member(self, name: str) -> Any:
        """A member's JSON, or a FAILED line and None."""
        try:
            return json.loads(self.files[name].decode("utf-8"))
        except KeyError:
            self.add(name, FAILED, "missing from the bundle")
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            self.add(name, FAILED, f"not JSON ({clip(str(e))})")
        return None

    # -- what the journal names ------------------------------------------------------------

    def compare(self, name: str, derived: Any, what: str) -> Any:
        """The member's JSON if it is exactly what the journal slices say; else FAILED."""
        doc = self.json_member(name)
        if doc is not None and doc != derived:
            self.add(name, FAILED, f"does not match the {what} in the journal slices")
            return None
        return doc

    def signed_documents(self) -> None:
        from otpatch.engine.approvals import signature_ok

        for name, kinds, what in ((C.APPROVALS, C.APPROVAL_EVENTS, "approvals"),
                                  (C.ATTESTATIONS, C.ATTESTATION_EVENTS, "attestations")):
            rows = self.compare(name, C.signed_documents(self.records, kinds), what)
            if rows is None:
                continue
            bad = [r for r in rows if not signature_ok(r["document"] or {})]
            for r in bad:
                self.add(name, FAILED, f"run {r['run_id']} entry #{r['entry']} ({r['event']}):"
                         " the signature does not verify")
            if not bad:
                self.add(name, OK, f"{len(rows)} signed {what}, each signature valid" if rows
                         else f"no {what} recorded")

    def profiles(self) -> None:
        derived = C.profile_rows(self.records)
        rows = self.json_member(C.PROFILES)
        if rows is None:
            return
        fields = set(C.PROFILE_FIELDS) | {"run_id", "entry"}
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows) or [
                {k: r.get(k) for k in fields} for r in rows] != derived:
            return self.add(C.PROFILES, FAILED, "does not match the profile_saved entries "
                            "in the journal slices")
        bad = sum(self.profile(r) for r in rows)
        if not bad:
            carried = sum(bool(r.get("file")) for r in rows)
            self.add(C.PROFILES, OK, f"{len(rows)} profile backup(s) recorded, {carried} "
                     "carried, each with the sha256 and size its entry recorded" if rows
                     else "no profile backups recorded")

    def profile(self, row: dict[str, Any]) -> bool:
        """True (a failure) if a carried profile is not the file its entry hashed."""
        member = row.get("file")
        if not member:
            if not row.get("left_out"):
                self.add(C.PROFILES, FAILED, f"entry #{row['entry']}: no file, and no reason")
                return True
            return False
        data = self.files.get(str(member))
        if data is None or len(data) != row["size"] or sha256_hex(data) != row["sha256"]:
            self.add(str(member), FAILED, f"not the file run {row['run_id']} saved (entry "
                     f"#{row['entry']}: sha256 {str(row['sha256'])[:16]}…, {row['size']} "
                     "bytes)")
            return True
        return False

    def firmware(self) -> None:
        rows = self.compare(C.FIRMWARE, C.firmware_rows(self.records), "firmware.verify results")
        if rows is not None:
            self.add(C.FIRMWARE, OK, f"{len(rows)} verified firmware image(s), as the journal "
                     "recorded them" if rows else "no firmware verified in these runs")

    def playbooks(self) -> None:
        for run, record in self.runs_with_records():
            self.member_of_run(run, "playbook", lambda data: _playbook_trouble(data, record),
                               f"run {record.run_id}: hashes to the playbook_hash its "
                               "run_started recorded")

    def inventories(self) -> None:
        for run, record in self.runs_with_records():
            self.member_of_run(run, "inventory", lambda data: _inventory_trouble(data, record),
                               f"run {record.run_id}: its inventory (the inventory_hash "
                               "it read), reduced to its targets, no secret-looking key")

    def runs_with_records(self) -> list[tuple[dict[str, Any], Any]]:
        records = {r.run_id: r for r in self.records}
        return [(run, records[run["run_id"]]) for run in self.manifest["runs"]
                if run["run_id"] in records]

    def member_of_run(self, run: dict[str, Any], field: str,
                      trouble_of: Callable[[bytes], str], ok: str) -> None:
        member = run.get(field)
        if not member:
            return
        data = self.files.get(member)
        if data is None:
            return self.add(member, FAILED, "missing from the bundle")
        trouble = trouble_of(data)
        self.add(member, FAILED if trouble else OK, trouble or ok)

    def reports(self) -> None:
        try:
            rebuilt = C.report_files(self.records, bool(self.manifest.get("change")),
                                     list(self.manifest.get("missing") or []))
        except Exception as e:  # the report package's own error: say it, check the rest
            return self.add("report", FAILED, f"cannot be rebuilt from the journal slices "
                            f"({type(e).__name__}: {clip(str(e))})")
        for name, data in sorted(rebuilt.items()):
            have = self.files.get(name)
            if have is None:
                self.add(name, FAILED, "missing from the bundle")
            elif have != data:
                self.add(name, FAILED, "differs from the report rebuilt from the journal "
                         "slices: altered (or made by another otpatch version)")
            else:
                self.add(name, OK, "byte for byte the report the journal slices rebuild")


def _playbook_trouble(data: bytes, record: Any) -> str:
    from otpatch.modules.contract.errors import PlaybookError
    from otpatch.modules.contract.yamlsrc import parse_yaml

    want = C.started(record).get("playbook_hash")
    try:
        have = parse_yaml(data, "playbook").content_hash
    except PlaybookError as e:
        return f"not a YAML playbook ({e.problems[0].message})"
    return "" if have == want else (f"hashes to {have}, but run {record.run_id} ran "
                                    f"{want}: not the playbook it ran")


def _inventory_trouble(data: bytes, record: Any) -> str:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "not JSON"
    first = C.started(record)
    targeted = sorted({h for names in (first.get("targets") or {}).values() for h in names})
    if not isinstance(doc, dict) or doc.get("kind") != INVENTORY_KIND:
        return f"not an {INVENTORY_KIND} document"
    if doc.get("inventory_hash") != first.get("inventory_hash"):
        return (f"says it is inventory {doc.get('inventory_hash')}, but run {record.run_id} "
                f"read {first.get('inventory_hash')}")
    if doc.get("hosts") != targeted or not _hosts_in(doc.get("content")) <= set(targeted):
        return f"its hosts are not the hosts run {record.run_id} targeted ({targeted})"
    found = secret_paths(doc.get("content"))
    return f"holds secret-looking keys: {', '.join(found[:5])}" if found else ""


def _hosts_in(groups: Any) -> set[str]:
    """Every host named under the groups of an inventory document."""
    if not isinstance(groups, dict):
        return set()
    found = set()
    for body in groups.values():
        if isinstance(body, dict):
            found |= set(body.get("hosts") or {}) | _hosts_in(body.get("children"))
    return found
