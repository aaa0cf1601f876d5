"""`otpatch verify-bundle`: an auditor's offline check of an evidence bundle, with public
keys only: the manifest's signature and signer, every file's SHA-256 and size, no file
missing or added, each journal slice (entry hashes, links, signed checkpoint, signer),
the approvals' and attestations' signatures, the profiles, firmware hashes, playbooks and
inventories against the journal, and the report against the one its slices rebuild.

The tar is read in memory by engine/bundle_tar.py, never extracted; the checks of the
members the journal names, and the verdict's lines, are engine/bundle_checks.py."""
from __future__ import annotations

import json
from typing import Any

from otpatch.engine import bundle_contents as C
from otpatch.engine import evidence_store as store
from otpatch.engine.approvals import canonical
from otpatch.engine.bundle_checks import FAILED, NOT_CHECKED, NOTE, OK, MemberChecks, Verdict
from otpatch.engine.bundle_tar import read_bundle
from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.errors import clip


def verify(path: str, trust: Any) -> Verdict:
    """Every check of the bundle at `path` against `trust` (whose keys may sign: the
    manifest and the journal slices; None: signatures are checked, not their signer)."""
    return Checker(path, read_bundle(path), trust).run()


class Checker(MemberChecks):
    """The checks of one bundle, in order; each adds its lines to the verdict."""

    def __init__(self, path: str, files: dict[str, bytes], trust: Any):
        super().__init__(path, files)
        self.trust = trust
        self.slices: list[tuple[dict[str, Any], str]] = []

    def run(self) -> Verdict:
        if not self.read_manifest():
            return self.verdict
        self.signature()
        self.listed_files()
        if self.journal_slices():
            for check in (self.signed_documents, self.profiles, self.firmware,
                          self.playbooks, self.inventories, self.reports):
                check()
        else:
            self.add("approvals, profiles, firmware, playbooks, inventories, reports",
                     NOT_CHECKED, "the journal slices they are checked against do not verify")
        for item in self.manifest.get("left_out") or []:
            self.add(str(item.get("what")), NOTE, f"left out at export: {item.get('why')}")
        for named in self.manifest.get("missing") or []:
            self.add(str(named), NOTE, "named as evidence, not found on the exporting host")
        return self.verdict

    # -- the manifest ----------------------------------------------------------------------

    def read_manifest(self) -> bool:
        doc = self.json_member(C.MANIFEST)
        if doc is None:
            return False
        trouble = _manifest_trouble(doc)
        if trouble:
            self.add(C.MANIFEST, FAILED, f"not an {C.KIND} manifest: {trouble}")
            return False
        self.manifest = doc
        self.verdict.runs = [r["run_id"] for r in doc["runs"]]
        self.verdict.change = doc.get("change")
        return True

    def signature(self) -> None:
        from otpatch.engine import keys
        key = self.manifest["public_key"]
        raw = self.files.get(C.SIGNATURE)
        if raw is None:
            return self.add(C.SIGNATURE, FAILED, "missing: the manifest is not signed")
        signature = raw.decode("ascii", "replace").strip()
        if not keys.signature_valid(key, signature, canonical(self.manifest)):
            return self.add(C.SIGNATURE, FAILED, f"does not verify over {C.MANIFEST} with "
                            f"its key ({keys.short(key)}): the manifest or its signature "
                            "was altered")
        made = f"made on {self.manifest.get('host')} at {self.manifest.get('created_at')}"
        if self.trust is None:
            return self.add(C.SIGNATURE, NOT_CHECKED, f"signature valid ({keys.short(key)}, "
                            f"{made}), but its signer is not checked: no trusted keys (give "
                            "--keys INVENTORY: its journal_hosts)")
        name = self.trust.keys.get(key)
        if name is None:
            return self.add(C.SIGNATURE, FAILED, f"signed by {keys.short(key)}, a key "
                            f"{self.trust.root} does not trust (trusted: "
                            f"{', '.join(sorted(self.trust.keys.values()))})")
        self.verdict.signer = name
        self.add(C.SIGNATURE, OK, f"signed by {name} ({keys.short(key)}), {made}")

    def listed_files(self) -> None:
        listed = self.manifest["files"]
        bad = 0
        for name, want in sorted(listed.items()):
            data = self.files.get(name)
            if data is None:
                self.add(name, FAILED, "listed in the manifest, missing from the bundle")
            elif len(data) != want.get("size") or sha256_hex(data) != want.get("sha256"):
                self.add(name, FAILED, f"sha256 {sha256_hex(data)[:16]}…, {len(data)} bytes; "
                         f"the manifest lists {str(want.get('sha256'))[:16]}…, "
                         f"{want.get('size')} bytes: altered")
            else:
                continue
            bad += 1
        for name in sorted(set(self.files) - set(listed) - {C.MANIFEST, C.SIGNATURE}):
            self.add(name, FAILED, "in the bundle, not in the manifest: added")
            bad += 1
        if not bad:
            self.add("files", OK, f"{len(listed)} files, each with the sha256 and size the "
                     "manifest lists; none missing, none added")

    # -- the journal ------------------------------------------------------------------------

    def journal_slices(self) -> bool:
        """Each run's slice checked as an evidence import is (with the same trust)."""
        intact = True
        for run in self.manifest["runs"]:
            lines_name, checkpoint_name = C.slice_names(run["run_id"])
            entries = self.jsonl_member(lines_name)
            checkpoint = self.json_member(checkpoint_name)
            if entries is None or checkpoint is None:
                intact = False
                continue
            doc = C.slice_document(run["run_id"], run["record_hash"], entries, checkpoint)
            checked = store.check_document(doc, self.trust)
            intact = self.slice_verdict(run, checked, lines_name, checkpoint_name) and intact
            self.slices.append((doc, run["source"]))
        if intact:
            self.records = C.records_of(self.slices)
        return intact

    def jsonl_member(self, name: str) -> list[Any] | None:
        raw = self.files.get(name)
        if raw is None:
            self.add(name, FAILED, "missing from the bundle")
            return None
        try:
            return [json.loads(line) for line in raw.decode("utf-8").splitlines()]
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            self.add(name, FAILED, f"a line that is not JSON ({clip(str(e))})")
            return None

    def slice_verdict(self, run: dict[str, Any], checked: Any, lines_name: str,
                      checkpoint_name: str) -> bool:
        problems = list(checked.problems)
        if checked.record is not None and checked.record.payload.get("status") != run.get(
                "status"):
            problems.append(f"the manifest says run {run['run_id']} ended {run.get('status')}"
                            f", its run_ended entry says {checked.record.payload.get('status')}")
        if not problems:
            first, last = checked.entries[0].seq, checked.entries[-1].seq
            signer = store.signer_name(checked, self.trust)
            self.add(lines_name, OK, f"run {run['run_id']}: entries #{first}-#{last}, every "
                     f"hash and link holds; its record {run['record_hash'][:19]}… is signed "
                     f"by {signer} ({checkpoint_name})")
            return True
        for problem in problems[:3]:
            where = checkpoint_name if problem.startswith("the checkpoint") else lines_name
            self.add(where, FAILED, problem)
        if len(problems) > 3:
            self.add(lines_name, FAILED, f"and {len(problems) - 3} more problems")
        return False


def _manifest_trouble(doc: Any) -> str:
    """Why a document is not a bundle manifest ("" if it is one)."""
    if not isinstance(doc, dict) or doc.get("kind") != C.KIND:
        return f"no \"kind\": \"{C.KIND}\""
    if not isinstance(doc.get("public_key"), str):
        return "no public_key"
    files = doc.get("files")
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        return "its files are not a mapping of path to sha256 and size"
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), str) for k in _RUN_TEXT)
            and all(isinstance(r.get(k), (str, type(None))) for k in _RUN_MEMBERS)
            for r in runs):
        return "its runs are not a list of runs with their record hashes and files"
    return ""


_RUN_TEXT, _RUN_MEMBERS = ("run_id", "record_hash", "source"), ("playbook", "inventory")
