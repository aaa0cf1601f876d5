"""What a firewall review finds: a stable id, a severity, where in the profile, what it is,
why it matters and the fix. Nothing here holds a profile's secrets: a finding is built from
the typed ruleset (model.py), which never reads a pre-shared or private key."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Severity(Enum):
    """How much a finding matters, most first; `rank` orders them (critical 4 ... info 0)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return len(SEVERITIES) - 1 - SEVERITIES.index(self.value)

    def at_least(self, other: "Severity") -> bool:
        return self.rank >= other.rank


SEVERITIES = tuple(s.value for s in Severity)  # most severe first


@dataclass(frozen=True)
class Location:
    """Where a finding stands: a rule (its table, 1-based position, profile path and the
    line its row opens on) or a setting (its name as the path; no table or position).
    `line` 0: not known (settings outside a table carry no line here)."""

    path: str
    table: str | None = None
    position: int | None = None
    line: int = 0

    @classmethod
    def of_rule(cls, rule: Any) -> "Location":
        return cls(rule.path, rule.table, rule.position, rule.line)

    def describe(self) -> str:
        """`incoming rule 4 (FW_INCOMING.3)` or `setting SYSLOG_REMOTE_ENABLE`."""
        if self.table is None:
            return f"setting {self.path}"
        return f"{self.table} rule {self.position} ({self.path})"

    def in_file(self, source: str) -> str:
        """`profile.atv:40` when the line is known, else the file alone."""
        return f"{source}:{self.line}" if self.line else source

    def to_json(self) -> dict[str, Any]:
        return {"table": self.table, "position": self.position, "path": self.path,
                "line": self.line or None}


@dataclass(frozen=True)
class Finding:
    """One thing the review found, worded for the change record."""

    id: str
    severity: Severity
    title: str  # what the id stands for (the catalog's words)
    location: Location
    message: str  # what this profile does, in words, with its addresses and ports
    why: str  # why it matters in the plant
    fix: str  # what to change

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "severity": self.severity.value, "title": self.title,
                "location": self.location.to_json(), "message": self.message,
                "why": self.why, "fix": self.fix}
