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
