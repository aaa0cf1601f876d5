"""A firewall review as text for a terminal or a change ticket: the counts, then the
findings grouped by severity and id, each id's why and fix said once, each place it fires
with its file:line, rule and what the rule does."""
from __future__ import annotations

from itertools import groupby
from typing import Any

from otpatch.modules.firewall.catalog import BY_ID
from otpatch.modules.firewall.finding import Finding
from otpatch.modules.firewall.review import short_name

ORDER = {name: i for i, name in enumerate(BY_ID)}  # the catalog's order


def lines(found: Any, fail_on: str, failing: int) -> list[str]:
    """The review's text: header, counts, findings, and what the exit code says."""
    name = short_name(found.source)
    out = [f"firewall review of {found.source} (#version {found.version}), "
           f"policy {found.policy}",
           "rules: " + ", ".join(f"{table} {n}" for table, n in found.counts.items()
                                 if table != "total") + f"; total {found.counts['total']}"]
    counted = ", ".join(f"{n} {s}" for s, n in found.by_severity().items() if n)
    out.append(f"findings: {counted or 'none'}")
    for severity, same in groupby(found.findings, key=lambda f: f.severity):
        out += ["", severity.value.upper()]
        by_id = sorted(same, key=lambda f: ORDER[f.id])  # stable: profile order within
        for _, group in groupby(by_id, key=lambda f: f.id):
            out += _group(list(group), name)
    out += ["", _verdict(fail_on, failing)]
    return out


def _group(group: list[Finding], name: str) -> list[str]:
    first = group[0]
    out = [f"  {first.id}: {first.title}"]
    for f in group:
        out.append(f"    {f.location.in_file(name)} {f.location.describe()}: {f.message}")
    out.append(f"    why: {first.why}")
    fixes = dict.fromkeys(f.fix for f in group)
    out += [f"    fix: {fix}" for fix in fixes]
    return out


def _verdict(fail_on: str, failing: int) -> str:
    if fail_on == "never":
        return "exit 0: --fail-on never"
    if failing:
        return f"exit 1: {failing} finding(s) at {fail_on} or above (--fail-on {fail_on})"
    return f"exit 0: nothing at {fail_on} or above (--fail-on {fail_on})"
