"""A firewall review: an mGuard profile's ruleset checked against a site policy, every
finding with its id, severity, location, why and fix, and the rule counts per table (what
the change record compares before and after).

`read_profile(path)` reads a saved profile file whole or not at all: one that does not
parse, is truncated, or is an encrypted ECS container is one InputError line with its
location, never a partial review. Nothing a review says carries a profile's secrets."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

from otpatch.modules.contract.errors import InputError
from otpatch.modules.firewall import model as M
from otpatch.modules.firewall.catalog import CHECKS
from otpatch.modules.firewall.checks import Scope
from otpatch.modules.firewall.finding import SEVERITIES, Finding, Location, Severity

PROFILE_LIMIT = 16 * 1024 * 1024  # bytes of a saved profile; real ones are kilobytes


@dataclass(frozen=True)
class Review:
    """What a review found in one profile."""

    source: str  # the profile, as named when read
    version: str  # its #version pragma
    policy: str  # where the policy came from
    counts: dict[str, int]  # rules per table, and total
    findings: tuple[Finding, ...]  # most severe first, then in profile order

    def at_least(self, severity: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity.at_least(severity))

    def by_severity(self) -> dict[str, int]:
        """Findings per severity, every severity named (0 where none)."""
        return {s: sum(f.severity.value == s for f in self.findings) for s in SEVERITIES}

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.source, "version": self.version, "policy": self.policy,
                "counts": dict(self.counts), "by_severity": self.by_severity(),
                "findings": [f.to_json() for f in self.findings]}


def review(ruleset: M.Ruleset, policy: Any) -> Review:
    """Every check of the catalog over the ruleset, at the severities the policy gives."""
    found, scope = [], Scope(ruleset, policy)
    for check in CHECKS:
        severity = policy.severity(check.id, check.severity)
        for hit in check.find(scope):
            found.append(Finding(check.id, severity, check.title, hit.location, hit.message,
                                 check.why, hit.fix or check.fix))
    found.sort(key=lambda f: (-f.severity.rank, _order(f.location)))
    return Review(ruleset.source, ruleset.version, policy.source, ruleset.counts(),
                  tuple(found))


def short_name(source: str) -> str:
    """A profile's file name without its folder: `as_found.atv`, or for an ECS container
    `backup.tar.gz!aca/cfg` (the member that holds the profile)."""
    path, bang, member = source.partition("!")
    return os.path.basename(path) + bang + member


def _order(location: Location) -> tuple:
    """Settings first, then rules by file line (table order when lines are unknown)."""
    return (location.table is not None, location.line, location.table or "",
            location.position or 0)


class SavedProfile(NamedTuple):
    ruleset: M.Ruleset
    sha256: str  # of the file as read: which profile a record speaks of


def read_profile(path: str | os.PathLike) -> SavedProfile:
    """The ruleset of a saved profile file; InputError (one line, file:line where the file
    says where) for a file that cannot be read, parsed, or is encrypted."""
    from otpatch.modules.contract.canonical import sha256_hex
    from otpatch.modules.contract.files import read_regular
    from otpatch.modules.firewall.ruleset import RulesetError, read

    data = read_regular(path, PROFILE_LIMIT, "profile")
    try:
        return SavedProfile(read(data, os.fspath(path)), sha256_hex(data))
    except RulesetError as e:
        raise InputError(str(e)) from None
