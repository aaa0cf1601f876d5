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
