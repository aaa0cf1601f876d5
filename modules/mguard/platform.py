"""Which mGuard platform a device is, by its model designation, and so which firmware line
it runs: the classic "RS" platform (FL MGUARD RS2000/RS4000, SMART2, PCI(E)4000, DELTA,
GT/GT, CENTERPORT, CORE ...) runs 8.x; the FL MGUARD 2000/4000 platform (2102, 2105, 4302,
4305, 4102 PCI(E)) runs 10.x; the FL MGUARD 1000 (1102, 1105) runs mGuardNT 1.x.

Sources (help.mguard.com):
- User manual mGuard 10.5 (110191_en_09), section 2.1 "New device platform FL MGUARD
  2000/4000": the FL MGUARD 2000/4000 series devices "are gradually replacing the
  established Guard devices of the RS2000/RS4000 and PCI(E)4000 series" and "are operated
  with the mGuard 10.x firmware version"; they "can import existing configuration profiles
  (atv files)". (The 10.4 manual, 110191_en_08, says the same.)
- User manual mGuard 8.7 (105661_en_09), section 4.1 "Management >> System Settings": the
  8.7 firmware's own model list for the power supply field names TC MGUARD RS4000 3G/4G,
  FL MGUARD RS4000, FL MGUARD RS4004, FL MGUARD CENTERPORT, FL MGUARD RS, FL MGUARD GT/GT.
- UM EN MGUARD NT (108420_en_03): FL MGUARD 1102 (order no. 1153079) and 1105 (1153078)
  run mGuardNT 1.x, web-based management of its own.
The 8.x manual's list of every device it is valid for was not found in a searchable public
copy: SMART2, PCI(E)4000, DELTA, CORE TX and BLADE are taken as classic-platform by their
family names (the 7.4 manual, UM EN MGUARD 7.4, lists smart, pci, blade, delta, EAGLE, rs2000
and rs4000 as one family). Order numbers are not used for the two main platforms: no public
source we could search lists them; the model designation decides."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from otpatch.modules.versions import VersionError, parse_version

MANUAL_10 = ("User manual mGuard 10.5 (110191_en_09), 2.1 \"New device platform FL MGUARD "
             "2000/4000\", https://help.mguard.com/en/mguard10/manual/10.5/110191_en_09/"
             "Section02/Section02.htm")
MANUAL_8 = ("User manual mGuard 8.7 (105661_en_09), 4.1 \"Management >> System Settings\" "
            "(the models of the 8.x firmware), https://help.mguard.com/en/mguard8/manual/8.7/"
            "105661_en_09/Section04/Section04.htm")
MANUAL_NT = "UM EN MGUARD NT (108420_en_03), FL MGUARD 1000, mGuardNT 1.3.x"
SPLIT_SOURCE = ("user manual mGuard 10.5, 2.1: the FL MGUARD 2000/4000 replaces the "
                "RS2000/RS4000 and runs 10.x, https://help.mguard.com/en/mguard10/manual/10.5/"
                "110191_en_09/Section02/Section02.htm")


@dataclass(frozen=True)
class Platform:
    """An mGuard hardware platform and the firmware majors it runs."""

    key: str  # "RS", "2000/4000", "1000"
    name: str
    line: str  # the firmware line, as people say it: "8.x"
    majors: frozenset[int]
    source: str

    def runs(self, version: str) -> bool:
        """Whether firmware `version` (8.9.3, 10.5.0, 8.8.1.default) is of this platform's
        line; False for text that is not a version."""
        major = major_of(version)
        return major is not None and major in self.majors

    def describe(self) -> str:
        return f"{self.name} platform (firmware {self.line})"


RS = Platform("RS", "mGuard RS (classic)", "8.x", frozenset({5, 6, 7, 8}), MANUAL_8)
MGUARD2 = Platform("2000/4000", "FL MGUARD 2000/4000", "10.x", frozenset({10}), MANUAL_10)
NT = Platform("1000", "FL MGUARD 1000 (mGuardNT)", "mGuardNT 1.x", frozenset({1}), MANUAL_NT)
PLATFORMS = {p.key: p for p in (RS, MGUARD2, NT)}

_CLASSIC = r"(?:RS\d*\b|SMART2?\b|PCIE?\d*\b|DELTA\b|GT/GT\b|CENTERPORT\b|CORE\b|BLADE\b)"
_BY_MODEL = (  # (pattern over the upper-cased model, platform); first match wins
    (re.compile(r"MGUARD (?:[24]\d{3})\b"), MGUARD2),  # FL MGUARD 4302, TC MGUARD 4102 PCIE
    (re.compile(r"MGUARD (?:1\d{3})\b"), NT),          # FL MGUARD 1102 / 1105
    (re.compile(r"MGUARD " + _CLASSIC), RS),           # FL MGUARD RS4000, TC MGUARD RS4000 3G
    (re.compile(r"EAGLE MGUARD|MGUARD INDUSTRIAL RS"), RS),
)
_BY_PART = {"1153079": NT, "1153078": NT}  # UM EN MGUARD NT's order numbers


def classify(model: str | None, part_number: str | None = None) -> Platform | None:
    """The platform of a device by its model designation (then its order number); None
    when neither names a known mGuard."""
    text = " ".join(str(model or "").upper().split())
    for pattern, platform in _BY_MODEL:
        if pattern.search(text):
            return platform
    return _BY_PART.get(str(part_number or "").strip())


def of_host(host: Any) -> Platform | None:
    """The platform an inventory host's model (or part number) names."""
    return classify(getattr(host, "model", ""), getattr(host, "part_number", ""))


def major_of(version: str | None) -> int | None:
    """The major number of a firmware version or a profile's `#version` (8.8.1.default)."""
    try:  # the release part only: a profile's `.default` is no version suffix
        return parse_version(release_of(str(version or ""))).release[0]
    except (VersionError, IndexError):
        return None


def release_of(profile_version: str) -> str:
    """The firmware version a profile's `#version` names: `8.8.1.default` -> `8.8.1`."""
    found = re.match(r"\d+(?:\.\d+)*", profile_version.strip())
    return found.group() if found else profile_version.strip()


def unknown_model(model: str | None, part_number: str | None = None) -> str:
    known = ", ".join(p.describe() for p in PLATFORMS.values())
    return (f"model {model or '(none)'!r} (part number {part_number or 'none'}) is no mGuard "
            f"model otpatch knows the platform of (known: {known}); give the inventory the "
            "model designation on the device's label, e.g. FL MGUARD RS4000 or FL MGUARD 4302")


def firmware_problem(model: str | None, firmware: str | None, part_number: str | None = None,
                     who: str = "the device") -> str | None:
    """Why `firmware` cannot run on `model`, if it cannot (None: it can, or nothing to say
    because no firmware is given)."""
    platform = classify(model, part_number)
    if platform is None:
        return f"{who}: {unknown_model(model, part_number)}"
    if firmware and not platform.runs(firmware):
        other = next((p for p in PLATFORMS.values() if p.runs(firmware)), None)
        there = f"; {firmware} is the {other.name} platform's line" if other else ""
        return (f"{who}: {model} is of the {platform.name} platform, which runs firmware "
                f"{platform.line}, not {firmware}{there} ({SPLIT_SOURCE})")
    return None
