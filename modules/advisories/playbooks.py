"""Which playbooks apply to an asset, by their metadata.applies_to (vendor, model, part numbers)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable, Iterable

from otpatch.modules.advisories.vendors import vendor_key


@dataclass(frozen=True)
class PlaybookRef:
    """A playbook as far as matching needs it: name, version, file and applies_to."""

    name: str
    version: str
    file: str
    applies_to: tuple[Any, ...]  # engine.model.AppliesTo

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


def load_playbooks(folder: str | Path, load_playbook: Callable[[Path], Any]
                   ) -> tuple[list[PlaybookRef], list[str]]:
    """The playbooks of a folder (*.yml, *.yaml, not recursive), each loaded by
    `load_playbook` (the engine's, through the CLI's Host), and one line per playbook that
    failed to load. A missing folder is no playbooks and a note."""
    from otpatch.modules.contract.errors import OtpatchError

    root = Path(folder)
    if not root.is_dir():
        return [], [f"playbooks: {folder}: no such folder; no playbook named"]
    refs, problems = [], []
    for path in sorted(p for p in root.iterdir() if p.suffix in (".yml", ".yaml")):
        try:
            book = load_playbook(path)
        except OtpatchError as e:
            first = e.lines()[0].removeprefix("otpatch: ") if e.lines() else str(e)
            problems.append(f"playbook {path}: skipped: {first}")
            continue
        meta = book.metadata
        refs.append(PlaybookRef(meta.name, meta.version, str(path), tuple(meta.applies_to)))
    return refs, problems


def applies(entry: Any, host: Any) -> bool:
    """Whether one applies_to entry names the host: same vendor, then its part number
    (wildcards allowed) when both give one, else its model (variants included)."""
    if not entry.vendor or vendor_key(entry.vendor) != vendor_key(host.vendor):
        return False
    part = str(host.part_number or "").upper()
    if entry.part_numbers and part:
        return any(fnmatchcase(part, p.upper()) for p in entry.part_numbers)
    if entry.model:
        return model_of_family(host.model, entry.model)
    return not entry.part_numbers


def model_of_family(model: Any, family: str) -> bool:
    """Whether a model designation is `family` or a variant of it: the family's words,
    then more words (the port or option suffix a label carries: "FL MGUARD RS4000 TX/TX",
    "... TX/TX VPN" are an FL MGUARD RS4000); never another model whose name merely starts
    alike ("FL MGUARD RS4004", "FL MGUARD RS40004")."""
    words, wanted = _words(model), _words(family)
    return bool(wanted) and words[:len(wanted)] == wanted


def playbooks_for(host: Any, refs: Iterable[PlaybookRef]) -> tuple[str, ...]:
    """Labels (name@version) of the playbooks that apply to the host, in name order."""
    return tuple(sorted(r.label for r in refs if any(applies(a, host) for a in r.applies_to)))


def _words(text: Any) -> list[str]:
    """Lower-case words of letters and digits; punctuation and spacing do not count."""
    return re.findall(r"[a-z0-9]+", str(text or "").lower())
