"""M580 firmware versions: `SV4.30`, `v04.30`, `V4.3`, `4.30` alike, read by the one version
parser (otpatch.modules.versions) with Schneider's two-digit minor."""
from __future__ import annotations

from dataclasses import dataclass

from otpatch.modules.versions import VersionError
from otpatch.modules.versions import parse_version as parse_any


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
    """The version named by `text`; ValueError naming the accepted forms otherwise.

    Advisories write SV4.30, FC 43 answers v04.30, people write V4.3: the minor part is two
    decimal digits, so a single digit is tenths (4.3 is 4.30, 4.03 is 4.03)."""
    try:
        version = parse_any(str(text), decimal_minor=True)
    except VersionError:
        version = None
    if version is None or len(version.release) != 2 or version.suffix or \
            not all(n < 100 for n in version.release):
        raise ValueError(f"not an M580 firmware version: {text!r} (use e.g. SV4.30, v04.30, "
                         "V4.3)")
    return FirmwareVersion(*version.release)
