"""The one place M580 firmware versions are parsed: `SV4.30`, `v04.30`, `V4.3`, `4.30` alike."""
from __future__ import annotations

import re
from dataclasses import dataclass

# Advisories write SV4.30, FC 43 answers v04.30, people write V4.3: the minor part is two
# decimal digits, so a single digit is tenths (4.3 is 4.30, 4.03 is 4.03).
_VERSION = re.compile(r"^\s*(?:SV|V)?\s*(\d{1,2})\.(\d{1,2})\s*$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class FirmwareVersion:
    """An M580 / X80 firmware version: major and two-digit minor (CIP revision major.minor)."""

    major: int
    minor: int

    def __str__(self) -> str:
        return f"v{self.major:02d}.{self.minor:02d}"

    @property
    def advisory(self) -> str:
        """The naming Schneider advisories use, e.g. SV4.30."""
        return f"SV{self.major}.{self.minor:02d}"

    @property
    def is_none(self) -> bool:
        return self.major == 0 and self.minor == 0


NO_VERSION = FirmwareVersion(0, 0)


def parse_version(text: str) -> FirmwareVersion:
    """The version named by `text`; ValueError naming the accepted forms otherwise."""
    m = _VERSION.match(str(text))
    if not m:
        raise ValueError(f"not an M580 firmware version: {text!r} (use e.g. SV4.30, v04.30, "
                         "V4.3)")
    major, minor = m.group(1), m.group(2)
    return FirmwareVersion(int(major), int(minor.ljust(2, "0")))


def same_version(a: str | FirmwareVersion, b: str | FirmwareVersion) -> bool:
    """Whether two spellings name the same version."""
    return _as_version(a) == _as_version(b)


def _as_version(value: str | FirmwareVersion) -> FirmwareVersion:
    return value if isinstance(value, FirmwareVersion) else parse_version(value)
