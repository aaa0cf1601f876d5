"""What the engine offers a package's CLI commands: `register(subparsers, host)` receives
one PackageHost, so a package loads inventories and playbooks without importing the engine."""
from __future__ import annotations

from pathlib import Path
from typing import Any


class PackageHost:
    """The engine's loaders, as the contract's Host protocol names them."""

    @staticmethod
    def load_inventory(path: str | Path) -> Any:
        """A validated inventory (engine/inventory.py); PlaybookError with file:line:col."""
        from otpatch.engine.inventory import load_inventory

        return load_inventory(path)

    @staticmethod
    def home() -> Path:
        """$OTPATCH_HOME, else ./.otpatch (engine/journal.py); InputError for a bad one."""
        from otpatch.engine.journal import default_home

        return default_home()

    @staticmethod
    def baseline_firmware(inventory: Any) -> dict[str, tuple[str, str]]:
        """host -> (firmware, why) where a run's verified as-left says more than the
        inventory's typed firmware (engine/baseline.py)."""
        from otpatch.engine.baseline import firmware_sources
        from otpatch.engine.journal import default_home

        return firmware_sources(default_home(), inventory)

    @staticmethod
    def load_playbook(path: str | Path, inventory: Any = None) -> Any:
        """A validated, frozen playbook (engine/loader.py); PlaybookError with file:line:col."""
        from otpatch.engine.loader import load_playbook

        return load_playbook(path, inventory)

    # -- signing, as approvals sign (engine/approvals.py, engine/keys.py) -----------------

    @staticmethod
    def canonical(value: Any) -> bytes:
        """RFC 8785 canonical JSON bytes: what a person signs."""
        from otpatch.engine.approvals import canonical

        return canonical(value)

    @staticmethod
    def signing_key(path: str | Path) -> Any:
        """A person's Ed25519 private key (engine/keys.py); InputError if unusable."""
        from otpatch.engine import keys

        return keys.load(Path(path), "approver key")

    @staticmethod
    def signature_valid(public_key: str, signature: str, message: bytes) -> bool:
        from otpatch.engine.keys import signature_valid

        return signature_valid(public_key, signature, message)

    @staticmethod
    def approver_key(approver: Any) -> str | None:
        """An inventory approver's public key: written in the inventory or in its file."""
        from otpatch.engine.approvals import approver_key

        return approver_key(approver)

    @staticmethod
    def record_decision(document: dict, *, inventory: Any, operator: str, source: str,
                        **facts: Any) -> str:
        """Journal a signed risk acceptance in the site record (engine/siterecord.py) as a
        DecisionRecorded with `facts` (register, entry, asset, advisory); the record id."""
        from otpatch.engine import siterecord
        from otpatch.engine.journal import default_home
        from otpatch.engine.siteevents import DecisionRecorded

        return siterecord.append(default_home(), [DecisionRecorded(
            elapsed=0.0, decision=document, **facts)], inventory=inventory,
            operator=operator, source=source)

    @staticmethod
    def record_cycle(report: dict, *, inventory: Any, operator: str | None) -> str:
        """Journal a `risk cycle` report (modules/risk/cycletext.py document) in the site
        record as a CycleEvaluated; the record id."""
        from otpatch.engine import siterecord
        from otpatch.engine.approvals import canonical
        from otpatch.engine.journal import default_home
        from otpatch.engine.siteevents import CycleEvaluated
        from otpatch.modules.contract.canonical import sha256_hex

        cycle = report["cycle"]
        sources = [{"id": s["id"], "evaluated_ok": s["evaluated_ok"],
                    "evaluated": len(s["evaluated"]),
                    "undecided": sum(a["undecided"] for e in s["evaluated"]
                                     for a in e["assets"])} for s in report["sources"]]
        return siterecord.append(default_home(), [CycleEvaluated(
            elapsed=0.0, start=cycle["start"], end=cycle["end"], days=cycle["days"],
            clean=bool(report["clean"]), counts=dict(report["counts"]), sources=sources,
            report=report, report_sha256=sha256_hex(canonical(report)))],
            inventory=inventory, operator=operator, source="otpatch risk cycle")

    @staticmethod
    def stored_backup(host: str, artifact: str, inventory: Any) -> dict[str, Any] | str:
        """The newest backup of `artifact` (mguard_profile, m580_application) stored for
        the host (engine/backup_index.py), hashed again now: {path, sha256, at, record};
        else why there is none to use (none stored, or the stored object is damaged)."""
        from otpatch.engine import backupstore
        from otpatch.engine.backup_index import backups
        from otpatch.engine.journal import default_home

        home = default_home()
        found = [b for b in backups(home, inventory)
                 if b.host == host and b.artifact == artifact]
        if not found:
            return f"no {artifact} backup stored for {host} (otpatch backup --host {host})"
        newest = max(reversed(found), key=lambda b: b.at)  # the later stored of a tie
        checked = backupstore.rehash(home, newest.sha256)
        if not checked.ok:
            return (f"the newest {artifact} backup of {host}, {newest.sha256[:12]}, cannot "
                    f"be used ({checked.status}): {checked.detail}")
        return {"path": str(backupstore.object_path(home, newest.sha256)),
                "sha256": newest.sha256, "at": newest.at, "record": newest.record}

