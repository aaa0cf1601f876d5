"""What changed between two rulesets of one mGuard, by what the rules do, not by how the
profile names their settings: rules added, removed, changed, moved; the 8.1 rename of TARGET
to TARGET_REF said as a migration, never as a lost rule; management access, remote syslog,
VLANs and IPsec connections.

Matching, per table (tables keep their names: `incoming`, `vpn:<connection>:outgoing`):
1. the rules' meanings (Rule.meaning(): protocol, addresses, ports, action, log) are aligned
   in order (difflib.SequenceMatcher, no junk heuristic): aligned rules are kept; a kept
   rule whose comment differs is `recommented`;
2. a rule left over on both sides with the same meaning is `moved` (reordered), paired in
   order of position;
3. the rest is paired as `changed` (same identity, another meaning): first by an equal,
   non-empty comment, then by standing in the same replaced slot of the alignment;
4. what is still left is `removed` (before) or `added` (after).
A pair of the same meaning whose action setting differs (TARGET before, TARGET_REF after) is
a migration, counted and said, whatever else it is. The rest is compared by subject:
management settings and access rules, remote syslog, VLANs by id, IPsec connections by name
(started or stopped, their networks). Output is sorted by table (before's order, then
tables only after has) and position, so the same inputs give the same diff."""
from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Callable, Hashable, Iterable

from otpatch.modules.firewall.model import Rule, Ruleset, Tunnel, Vlan

KINDS = ("removed", "changed", "moved", "added", "recommented")
LOSING = ("removed", "changed")  # what an update must not do to a rule
FIELDS = (("protocol", "protocol"), ("source", "source"), ("source_port", "source port"),
          ("destination", "destination"), ("destination_port", "destination port"),
          ("action", "action"), ("log", "log"))


@dataclass(frozen=True)
class RuleChange:
    """One rule's change in one table: `before` and/or `after` as each profile holds it."""

    kind: str  # removed | changed | moved | added | recommented
    table: str
    before: Rule | None
    after: Rule | None

    @property
    def order(self) -> tuple:
        return ((self.before or self.after).position,
                self.after.position if self.after else 0, KINDS.index(self.kind))

    def fields_changed(self) -> list[str]:
        """The names of what differs between before and after (for `changed`)."""
        if not (self.before and self.after):
            return []
        return [label for name, label in FIELDS
                if getattr(self.before, name) != getattr(self.after, name)]


@dataclass(frozen=True)
class SettingChange:
    """A management, syslog, VLAN or IPsec setting that differs, in words."""

    area: str  # management | syslog | vlan | tunnel
    subject: str
    before: str
    after: str
    where: str = ""  # file:line in the after profile (the before one, for what is gone)

    def describe(self) -> str:
        return f"{self.subject}: {self.before} -> {self.after}" + (
            f" ({self.where})" if self.where else "")


@dataclass(frozen=True)
class Diff:
    """Two rulesets compared. `counts`: rules per table and the total, (before, after)."""

    before_source: str
    before_version: str
    after_source: str
    after_version: str
    counts: dict[str, tuple[int, int]]
    rules: tuple[RuleChange, ...]
    migrations: tuple[tuple[Rule, Rule], ...]
    settings: tuple[SettingChange, ...]

    def of_kind(self, kind: str) -> tuple[RuleChange, ...]:
        return tuple(c for c in self.rules if c.kind == kind)

    @property
    def lost(self) -> tuple[Rule, ...]:
        """The before rules whose meaning the after profile no longer has at their place:
        removed, or changed in meaning."""
        return tuple(c.before for c in self.rules if c.kind in LOSING and c.before)

    @property
    def equivalent(self) -> bool:
        """The after profile does what the before one did: at most migrations and comment
        edits (a reordered rule counts as a difference: first match wins)."""
        return not self.settings and all(c.kind == "recommented" for c in self.rules)

    def renamed(self) -> dict[str, int]:
        """Migrations by setting rename: {"TARGET -> TARGET_REF": n}."""
        counted = Counter(f"{b.action_setting} -> {a.action_setting}"
                          for b, a in self.migrations)
        return dict(sorted(counted.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "before": {"source": self.before_source, "version": self.before_version},
            "after": {"source": self.after_source, "version": self.after_version},
            "counts": {t: {"before": b, "after": a} for t, (b, a) in self.counts.items()},
            "rules": {kind: [_change_json(c) for c in self.of_kind(kind)] for kind in KINDS},
            "migrations": {"count": len(self.migrations), "renamed": self.renamed(),
                           "rules": [{"before": _where_json(b), "after": _where_json(a)}
                                     for b, a in self.migrations]},
            "settings": [{"area": s.area, "subject": s.subject, "before": s.before,
                          "after": s.after, "where": s.where} for s in self.settings],
            "lost": [_rule_json(r) for r in self.lost],
            "equivalent": self.equivalent,
        }


def diff(before: Ruleset, after: Ruleset) -> Diff:
    """Compare two rulesets (the matching strategy is the module's docstring)."""
    tables = list(dict.fromkeys([*before.tables, *after.tables]))
    changes: list[RuleChange] = []
    migrations: list[tuple[Rule, Rule]] = []
    for table in tables:
        found, same = _table(table, before.tables.get(table, ()), after.tables.get(table, ()))
        changes += sorted(found, key=lambda c: c.order)
        migrations += sorted((p for p in same if p[0].action_setting != p[1].action_setting),
                             key=lambda p: p[0].position)
    counts = {t: (len(before.tables.get(t, ())), len(after.tables.get(t, ()))) for t in tables}
    counts["total"] = (before.counts()["total"], after.counts()["total"])
    return Diff(before.source, before.version, after.source, after.version, counts,
                tuple(changes), tuple(migrations), tuple(_settings(before, after)))


# -- rules -----------------------------------------------------------------------------------

Slot = tuple[int, Rule]  # (the alignment block a leftover rule stands in, the rule)


def _table(table: str, before: tuple[Rule, ...], after: tuple[Rule, ...]
           ) -> tuple[list[RuleChange], list[tuple[Rule, Rule]]]:
    """The changes of one table, and every pair of rules of the same meaning."""
    matcher = SequenceMatcher(None, [r.meaning() for r in before],
                              [r.meaning() for r in after], autojunk=False)
    kept: list[tuple[Rule, Rule]] = []
    left_b: list[Slot] = []
    left_a: list[Slot] = []
    for block, (tag, i1, i2, j1, j2) in enumerate(matcher.get_opcodes()):
        if tag == "equal":
            kept += zip(before[i1:i2], after[j1:j2])
        else:
            left_b += [(block, r) for r in before[i1:i2]]
            left_a += [(block, r) for r in after[j1:j2]]
    moved, left_b, left_a = _pair(left_b, left_a, lambda s: s[1].meaning())
    by_comment, left_b, left_a = _pair(left_b, left_a, lambda s: s[1].comment or None)
    by_slot, left_b, left_a = _pair(left_b, left_a, lambda s: s[0])
    changes = [RuleChange("recommented", table, b, a) for b, a in kept if b.comment != a.comment]
    changes += [RuleChange("moved", table, b, a) for b, a in moved]
    changes += [RuleChange("changed", table, b, a) for b, a in by_comment + by_slot]
    changes += [RuleChange("removed", table, b, None) for _, b in left_b]
    changes += [RuleChange("added", table, None, a) for _, a in left_a]
    return changes, kept + moved


def _pair(before: list[Slot], after: list[Slot], key: Callable[[Slot], Hashable | None]
          ) -> tuple[list[tuple[Rule, Rule]], list[Slot], list[Slot]]:
    """Pair each before slot with the first unpaired after slot of the same key (None never
    pairs), in order; the pairs and what is left on each side."""
    waiting: dict[Hashable, deque[int]] = defaultdict(deque)
    for n, slot in enumerate(after):
        if key(slot) is not None:
            waiting[key(slot)].append(n)
    pairs, rest_b, taken = [], [], set()
    for slot in before:
        queue = waiting.get(key(slot)) if key(slot) is not None else None
        if queue:
            taken.add(queue[0])
            pairs.append((slot[1], after[queue.popleft()][1]))
        else:
            rest_b.append(slot)
    return pairs, rest_b, [s for n, s in enumerate(after) if n not in taken]


# -- management, syslog, VLANs, tunnels --------------------------------------------------------

MANAGEMENT = (("https_enabled", "HTTPS remote access"), ("https_port", "HTTPS port"),
              ("http_enabled", "HTTP remote access"), ("ssh_enabled", "SSH remote access"),
              ("snmp_v1_enabled", "SNMPv1"))
SYSLOG = (("enabled", "remote syslog"), ("ip", "syslog server"), ("port", "syslog port"))

Worded = dict[str, tuple[str, int]]  # subject -> (its value in words, its line)


def _settings(before: Ruleset, after: Ruleset) -> list[SettingChange]:
    def worded(ruleset: Ruleset) -> list[Worded]:
        return [_fields(ruleset.management, MANAGEMENT), _access(ruleset),
                _fields(ruleset.syslog, SYSLOG),
                {f"VLAN {v.vlan_id}": (_vlan_text(v), v.line) for v in ruleset.vlans},
                {f"tunnel {t.name}": (_started(t), t.line) for t in ruleset.tunnels},
                {f"tunnel {t.name} networks": (_networks(t), t.line) for t in ruleset.tunnels}]

    areas = ("management", "management", "syslog", "vlan", "tunnel", "tunnel")
    return [change for area, was, now in zip(areas, worded(before), worded(after))
            for change in _keyed(area, was, now, before.source, after.source)]


def _fields(value: Any, names: Iterable[tuple[str, str]]) -> Worded:
    return {label: (_word(getattr(value, name)), value.line) for name, label in names}


def _keyed(area: str, before: Worded, after: Worded, source_b: str, source_a: str
           ) -> list[SettingChange]:
    """Changes between two worded maps, in before's order, then after's new subjects."""
    out = []
    for subject in dict.fromkeys([*before, *after]):
        was, line_b = before.get(subject, ("absent", 0))
        now, line_a = after.get(subject, ("absent", 0))
        where = f"{source_a}:{line_a}" if line_a else f"{source_b}:{line_b}" if line_b else ""
        if was != now:
            out.append(SettingChange(area, subject, was, now, where))
    return out


def _access(ruleset: Ruleset) -> Worded:
    return {f"{a.service} access from {a.source}": (a.action, a.line)
            for a in ruleset.management.access}


def _vlan_text(vlan: Vlan) -> str:
    return f"{vlan.interface or 'no interface'} {vlan.network or 'no address'}"


def _started(tunnel: Tunnel) -> str:
    return {True: "started", False: "stopped", None: "not set"}[tunnel.started]


def _networks(tunnel: Tunnel) -> str:
    return ", ".join(f"{local or '?'} <-> {remote or '?'}"
                     for local, remote in tunnel.networks) or "none"


def _word(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# -- JSON ------------------------------------------------------------------------------------

def _where_json(rule: Rule) -> dict[str, Any]:
    return {"table": rule.table, "position": rule.position, "path": rule.path,
            "line": rule.line, "action_setting": rule.action_setting}


def _rule_json(rule: Rule) -> dict[str, Any]:
    return {**_where_json(rule), "protocol": rule.protocol, "source": str(rule.source),
            "source_port": str(rule.source_port), "destination": str(rule.destination),
            "destination_port": str(rule.destination_port), "action": rule.action,
            "log": rule.log, "comment": rule.comment, "describe": rule.describe()}


def _change_json(change: RuleChange) -> dict[str, Any]:
    return {"table": change.table,
            "before": _rule_json(change.before) if change.before else None,
            "after": _rule_json(change.after) if change.after else None,
            "fields": change.fields_changed()}
