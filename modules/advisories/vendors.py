"""Vendor names as advisories and inventories spell them, reduced to canonical vendor keys."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Vendor:
    """A canonical vendor: its key, display name, the spellings that mean it, and how its
    versions read (decimal_minor: a two-part x.y version has a two-digit minor, 3.2 = 3.20)."""

    key: str
    name: str
    spellings: tuple[str, ...]  # regular expressions over the cleaned name (lowercase)
    decimal_minor: bool = False


# Table-driven: add a row (or a spelling) when an advisory spells a vendor a new way.
VENDORS = (
    Vendor("schneider-electric", "Schneider Electric",
           (r"^schneider[\s-]*electric\b", r"^schneider$"), decimal_minor=True),
    Vendor("phoenix-contact", "Phoenix Contact",
           (r"^phoenix[\s-]*contact\b", r"\binnominate\b")),
    Vendor("aveva", "AVEVA", (r"^aveva\b",)),
    Vendor("siemens", "Siemens", (r"^siemens\b",)),
    Vendor("rockwell-automation", "Rockwell Automation", (r"^rockwell\b",)),
)
_LEGAL = re.compile(r"[,.]?\s+\b(?:llc|inc|ltd|gmbh|ag|co|kg|corp|corporation|"
                    r"s\.?a|plc|limited)\b\.?", re.I)
# Two companies named together: "AVEVA Software, LLC and Schneider Electric Software, LLC".
_JOINT = re.compile(r"^(.*?\b(?:llc|inc|ltd|gmbh|ag)\.?)\s+and\s+(.+)$")


def clean(name: str) -> str:
    """Lowercase, single spaces, no surrounding blanks or punctuation."""
    return re.sub(r"\s+", " ", str(name)).strip(" \t,;.").lower()


@lru_cache(maxsize=4096)
def vendor_keys(name: str) -> frozenset[str]:
    """Every canonical vendor key a vendor name stands for (a joint name stands for each)."""
    text = clean(name)
    if not text:
        return frozenset()
    m = _JOINT.match(text)
    parts = (m.group(1), m.group(2)) if m else (text,)
    return frozenset(_key(part) for part in parts)


def _key(part: str) -> str:
    for vendor in VENDORS:
        if any(re.search(s, part) for s in vendor.spellings):
            return vendor.key
    bare = _LEGAL.sub("", part)
    bare = re.sub(r"\s+software$", "", bare)
    return re.sub(r"[^a-z0-9]+", "-", bare).strip("-")


def vendor_key(name: str) -> str:
    """The one canonical key of an inventory vendor ("" when none is given)."""
    keys = sorted(vendor_keys(name))
    return keys[0] if keys else ""


@lru_cache(maxsize=1024)
def decimal_minor(key: str) -> bool:
    """Whether the vendor's two-part versions read their minor as two digits (3.2 = 3.20)."""
    return any(v.decimal_minor for v in VENDORS if v.key == key)


def display(key: str) -> str:
    return next((v.name for v in VENDORS if v.key == key), key)
