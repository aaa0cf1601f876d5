"""The one version parser: firmware and software versions as comparable values."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache, total_ordering

# Suffix words and their rank: below zero a pre-release (before the plain version), above
# zero a later build of it. Service packs and updates outrank hotfixes, internal releases
# (Schneider's IR), patches and builds, so "15.0 SP1" > "15.0 HF2" and "SP1 HF3" > "SP1".
SUFFIX_RANK = {
    "alpha": -3, "beta": -2, "rc": -1, "ga": 0,
    "ir": 1, "hf": 1, "hotfix": 1, "patch": 1, "p": 1, "build": 1, "b": 1, "fix": 1,
    "sp": 2, "servicepack": 2, "update": 2, "upd": 2, "u": 2,
}
_PREFIX = re.compile(r"^(?:version|ver\.?|firmware|fw)?\s*(?:sv|vs|v|r)?\s*(?=\d)")
_RELEASE = re.compile(r"^(\d+(?:\.\d+)*)")
_SUFFIX = re.compile(r"[\s_\-.]*(service\s*pack|[a-z]+)?\s*(\d*)")
_PARENTHETICAL = re.compile(r"\([^)]*\)")


class VersionError(ValueError):
    """Text that is not a version this parser reads; the message says why."""


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A version as written, with the key it compares by: release numbers, then suffixes.

    Trailing zero parts do not count (8.4 == 8.4.0). With `decimal_minor` (Schneider's
    SVx.yy convention, see vendors.py) a two-part version reads a one-digit minor as tenths:
    V3.2 == SV3.20 == v03.20."""

    text: str
    release: tuple[int, ...]
    suffix: tuple[tuple[int, int], ...] = ()
    words: tuple[str, ...] = field(default=(), compare=False)

    @cached_property
    def key(self) -> tuple:
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        return tuple(release), self.suffix + ((0, 0),)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.key == other.key

    def __lt__(self, other: "Version") -> bool:
        return self.key < other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.text

    @property
    def normalized(self) -> str:
        """The version spelled one way: 3.20, 1.70+ir22, 15.0+sp1+hf3."""
        head = ".".join(str(n) for n in self.release)
        return head + "".join(f"+{w}" for w in self.words)


def parse_version(text: str, decimal_minor: bool = False) -> Version:
    """The version `text` names (`SV4.30`, `v03.20`, `V3.2`, `8.5.2`, `SV1.70 IR22`,
    `15.0 SP1`, `V1.5SP1`, `9.99a`); VersionError saying why otherwise."""
    raw = str(text).strip()
    body = _PARENTHETICAL.sub(" ", raw).strip().lower()
    body = _PREFIX.sub("", body, count=1)
    m = _RELEASE.match(body)
    if not m:
        raise VersionError(f"{raw!r} is not a version (expected digits like 4.30, SV4.30, "
                           "v03.20, 8.5.2)")
    parts = m.group(1).split(".")
    release = tuple(int(p) for p in parts)
    if decimal_minor and len(parts) == 2 and len(parts[1]) == 1:
        release = (release[0], release[1] * 10)
    suffix, words = _suffix(body[m.end():], raw)
    return Version(raw, release, suffix, words)


def _suffix(rest: str, raw: str) -> tuple[tuple[tuple[int, int], ...], tuple[str, ...]]:
    """The ranked suffix parts after the release numbers (IR22, SP1 HF3, a, -12)."""
    parts, words, pos = [], [], 0
    rest = rest.rstrip(" .")
    while pos < len(rest):
        m = _SUFFIX.match(rest, pos)
        word, number = (m.group(1) or "").replace(" ", ""), m.group(2)
        if m.end() == pos or (not word and not number):
            raise VersionError(f"{raw!r}: cannot read {rest[pos:].strip()!r} after the "
                               "version number")
        if word != "ga":  # general availability: the plain release itself
            parts.append(_ranked(word, number, raw))
        words.append(f"{word}{number}" if word else number)
        pos = m.end()
    return tuple(parts), tuple(words)


def _ranked(word: str, number: str, raw: str) -> tuple[int, int]:
    if not word:
        return SUFFIX_RANK["build"], int(number)  # 9.99-12: a build number
    if word in SUFFIX_RANK:
        return SUFFIX_RANK[word], int(number or 0)
    if len(word) == 1 and not number:
        return 1, ord(word) - ord("a") + 1  # 9.99a: a letter revision after 9.99
    raise VersionError(f"{raw!r}: unknown version suffix {word!r} (known: "
                       f"{', '.join(sorted(k for k in SUFFIX_RANK if len(k) > 1))})")


@lru_cache(maxsize=65536)
def try_version(text: str, decimal_minor: bool = False) -> Version | None:
    """The version, or None when the text is not one (cached: versions are immutable)."""
    try:
        return parse_version(text, decimal_minor)
    except VersionError:
        return None


# A hardware product version (PV) as a Modicon label shows it: `PV 07`, `PV07`, `07`, `7`.
# Here, beside the firmware versions, so the engine's qualification check and the M580
# package (modules/m580/hardware.py) read it one way.
_PV = re.compile(r"^\s*(?:pv)?\s*0*([0-9]{1,3})\s*$", re.IGNORECASE)


def parse_product_version(text: object) -> int:
    """`PV 07`, `PV07`, `07` and `7` are product version 7; ValueError otherwise."""
    found = _PV.match(str(text))
    if not found:
        raise ValueError(f"not a product version: {text!r} (use e.g. PV 07)")
    return int(found.group(1))


def pv_text(number: int) -> str:
    return f"PV {number:02d}"
