"""`otpatch firewall diff BEFORE AFTER [--json]`: the handler, and the diff as text lines.

Exit codes: 0 when the after profile does what the before one did (nothing lost or changed:
at most the 8.1 TARGET -> TARGET_REF migration and comment edits); 1 when it differs: rules
lost (removed or changed in meaning), added or reordered, or management access, remote
syslog, VLANs or IPsec connections changed; 2 for bad input (a file that cannot be read or
parsed: one InputError line with file:line)."""
from __future__ import annotations

import argparse
import json

from otpatch.modules.contract.errors import EXIT_NOT_COMPLETED, EXIT_OK
from otpatch.modules.firewall.diff import Diff, RuleChange, diff
from otpatch.modules.firewall.model import Rule


def diff_command(args: argparse.Namespace) -> int:
    """Compare the profiles `args.before` and `args.after`; print the diff (one JSON
    document with `args.json`); the exit code says whether they differ (module docstring).
    InputError (exit 2) for a profile that cannot be read."""
    from otpatch.modules.firewall.review import read_profile

    before, after = read_profile(args.before).ruleset, read_profile(args.after).ruleset
    found = diff(before, after)
    if getattr(args, "json", False):
        print(json.dumps(found.to_json(), indent=2))
    else:
        print("\n".join(render(found)))
    return EXIT_OK if found.equivalent else EXIT_NOT_COMPLETED


def render(d: Diff) -> list[str]:
    """The diff as lines: counts per table, each rule change with its place, migrations,
    settings, and a last line that says whether a rule was lost."""
    out = [f"firewall diff: {d.before_source} ({d.before_version}) -> {d.after_source} "
           f"({d.after_version})", "rules per table, before -> after:"]
    width = max(len(t) for t in d.counts)
    out += [f"  {t:<{width}}  {b:>4} -> {a}" for t, (b, a) in d.counts.items()]
    for change in d.rules:
        out += _change_lines(change, d)
    out += [f"migrated     {n} rule{'s' * (n != 1)}: {rename} (the mGuard 8.1 rename): the "
            "same rules, none lost" for rename, n in d.renamed().items()]
    out += [f"setting      {_printable(s.describe())}" for s in d.settings]
    return out + [_verdict(d)]


def _verdict(d: Diff) -> str:
    lost = len(d.lost)
    if lost:
        return f"lost: {lost} rule{'s' * (lost != 1)} removed or changed in meaning"
    if not d.equivalent:
        return "no rule lost; the profiles differ (see above)"
    return "no rule lost: the after profile does what the before one did"


def _change_lines(c: RuleChange, d: Diff) -> list[str]:
    if c.kind == "removed":
        return [f"removed      {_at(c.before, d.before_source)}: {_said(c.before)}"]
    if c.kind == "added":
        return [f"added        {_at(c.after, d.after_source)}: {_said(c.after)}"]
    if c.kind == "changed":
        return [f"changed      {_at_both(c.before, c.after, d)}: "
                f"{', '.join(c.fields_changed())}",
                f"               was: {_said(c.before)}",
                f"               now: {_said(c.after)}"]
    if c.kind == "moved":
        return [f"moved        {c.table} rule {c.before.position} -> {c.after.position} "
                f"({d.after_source}:{c.after.line}): {_said(c.after)}"]
    return [f"recommented  {_at(c.after, d.after_source)}: "
            f"{_printable(repr(c.before.comment))} -> {_printable(repr(c.after.comment))}"]


def _at(rule: Rule, source: str) -> str:
    """A rule's place: table, position, file:line and profile path."""
    where = f"{source}:{rule.line}" if rule.line else source
    return f"{rule.table} rule {rule.position} ({where}, {rule.path})"


def _at_both(before: Rule, after: Rule, d: Diff) -> str:
    """The place of a rule in both profiles: `incoming rule 3 (b.atv:38 -> a.atv:40, ...)`."""
    def one_or_both(was: object, now: object) -> str:
        return f"{was}" if was == now else f"{was} -> {now}"

    return (f"{before.table} rule {one_or_both(before.position, after.position)} "
            f"({d.before_source}:{before.line} -> {d.after_source}:{after.line}, "
            f"{one_or_both(before.path, after.path)})")


def _said(rule: Rule) -> str:
    return _printable(rule.describe())


def _printable(text: str) -> str:
    """One line whatever a comment holds: control characters (a newline, an escape
    sequence) shown escaped, never sent to the terminal."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
