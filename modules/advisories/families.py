"""The product table: what a family name means in part numbers, and which names mark software.

An advisory that names only a family ("Modicon M580", "M340 CPUs with firmware") means one
kind of product of that family, the CPU unless it says otherwise. An inventory asset is of
that family only if its part number fits the family's patterns: a BMENOC0321 written down
as "Modicon M580 Ethernet communication module" is not a "Modicon M580" of an advisory
about the CPU. Table-driven: add a row when a vendor's family gets a new part-number prefix.
The patterns are Schneider Electric's own, as its advisories write them ("Modicon M580 CPU
(part numbers BMEP* and BMEH*)", "Modicon M340 CPU (part numbers BMXP34*)", "Modicon MC80
(BMKC80)", "Modicon Momentum Unity M1E Processor (171CBU*)", "Legacy Modicon Quantum (part
numbers 140CPU65*) and Premium CPUs (part numbers TSXP57*)": ICSA-23-201-01, ICSA-24-326-03);
the network modules are BMENOC/BMXNOC/BMENOS/BMXNOE/BMXNOR/BMENOR/BMENUA by the same files
(ICSA-21-005-01, ICSA-25-035-04, ICSA-25-035-06)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache

CPU, NETWORK, ADAPTER = "CPU", "network module", "drop adapter"


@dataclass(frozen=True)
class Family:
    """One kind of product of a vendor's family: the designator word advisories use, and
    the part numbers it covers (`*` a wildcard)."""

    vendor_key: str
    designator: str  # lowercase, as identify's words: m580, m340, x80
    kind: str  # CPU | NETWORK | ADAPTER
    patterns: tuple[str, ...]


SCHNEIDER = "schneider-electric"
_NOCS = ("BMENOC*", "BMXNOC*", "BMENOS*", "BMXNOE*", "BMXNOR*", "BMENOR*", "BMENUA*")
FAMILIES = (
    Family(SCHNEIDER, "m580", CPU, ("BMEP58*", "BMEH58*")),
    Family(SCHNEIDER, "m580", NETWORK, _NOCS),
    Family(SCHNEIDER, "m340", CPU, ("BMXP34*",)),
    Family(SCHNEIDER, "m340", NETWORK, _NOCS),
    Family(SCHNEIDER, "x80", NETWORK, _NOCS),
    Family(SCHNEIDER, "x80", ADAPTER, ("BMECRA*", "BMXCRA*")),
    Family(SCHNEIDER, "mc80", CPU, ("BMKC80*",)),
    Family(SCHNEIDER, "m1e", CPU, ("171CBU*",)),
    Family(SCHNEIDER, "quantum", CPU, ("140CPU*",)),
    Family(SCHNEIDER, "premium", CPU, ("TSXP57*", "TSXH57*")),
)
# Words that say a product is a network module or a drop adapter; else a family is its CPU.
_KIND_WORDS = ((NETWORK, re.compile(r"\b(?:communication|network|ethernet|noc|nor|rtu)\b"
                                     r"|\bbm[ex]\s?no[cesr]", re.I)),
               (ADAPTER, re.compile(r"\b(?:drop|adapter|cra)\b", re.I)))

# Words that mark a product (or an inventory model) as software: tools, engineering
# software, web designers, device managers and DTMs, libraries, apps. Whole words only.
SOFTWARE_WORDS = re.compile(
    r"\b(?:software|tools?|toolkit|studio|expert|designer|builder|configurator|"
    r"dtms?|library|libraries|sdk|manager|app|apps|application|mobile|client|"
    r"somachine|unity\s+pro|scada|historian|hmi\s+runtime|web\s+designer|"
    r"firmware\s+loader|configuration\s+tool)\b|\.exe\b", re.I)


def software_name(*names: str) -> str:
    """The word that marks one of the names as software ("" when none does)."""
    for name in names:
        m = SOFTWARE_WORDS.search(name or "")
        if m:
            return m.group(0)
    return ""


@lru_cache(maxsize=4096)
def family_of(vendor_keys: frozenset[str], designators: frozenset[str], name: str
              ) -> Family | None:
    """The family a product name without part numbers means, or None when the table has
    none for its designators: the kind its words say, else the CPU."""
    kind = next((k for k, words in _KIND_WORDS if words.search(name)), CPU)
    for family in FAMILIES:
        if (family.vendor_key in vendor_keys and family.designator in designators
                and family.kind == kind):
            return family
    return None


def fits(family: Family, part_number: str) -> bool:
    return any(fnmatchcase(part_number.upper(), p) for p in family.patterns)
