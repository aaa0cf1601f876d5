"""Affected version sets of CSAF products: `vers:` ranges, free-text ranges, single versions."""
from __future__ import annotations

import re
from dataclasses import dataclass

from otpatch.modules.versions import Version, VersionError, parse_version

# How sure a version decision can be, by how the advisory wrote the versions.
CERTAINTY = {"all": "exact", "exact": "exact", "vers": "exact", "vers_nonstandard":
             "range_parsed", "free_text": "range_parsed", "unparsed": "uncertain",
             "none": "uncertain"}
_OPS = {">=": ">=", "=>": ">=", ">": ">", "<=": "<=", "=<": "<=", "<": "<", "=": "=",
        "==": "=", "!=": "!=", "": "="}
_SPLIT = re.compile(r"\s*(?:\||_and_|\band\b|_)?\s*(?<![<>=!])(?=[<>!]=?|=)")
_CONSTRAINT = re.compile(r"^\s*(>=|=>|<=|=<|==|!=|>|<|=)?\s*(.*?)\s*$")
_PHRASES = (  # free-text forms, tried in order: (pattern, operator)
    (re.compile(r"^(?:all\s+)?versions?\s+(?:prior\s+to|before|earlier\s+than|below)\s+(.+)$"
                r"|^(?:prior\s+to|before|earlier\s+than|below)\s+(.+)$", re.I), "<"),
    (re.compile(r"^(.+?),?\s+(?:and|or)\s+(?:prior|earlier|older|before|below|lower)$"
                r"|^up\s+to\s+(.+)$", re.I), "<="),
    (re.compile(r"^(.+?),?\s+(?:and|or)\s+(?:later|newer|above|higher)$"
                r"|^(?:since|from)\s+(.+)$", re.I), ">="),
)
_INCLUDING = re.compile(r"^(.+?)\s*\(including\)\s*and\s*(.+?)\s*\(excluding\)\s*$", re.I)
_ALL = re.compile(r"^(?:\*|all|all\s+versions?|vers:[a-z0-9.+-]*/\*)$", re.I)
_OLDER = re.compile(r"\b(?:and|or)\s+(?:older|earlier|prior|below|lower)\b|\b(?:prior\s+to|"
                    r"before|up\s+to|earlier\s+than)\b", re.I)
_NEWER = re.compile(r"\b(?:and|or)\s+(?:later|newer|above|higher)\b|\b(?:since|onwards?)\b",
                    re.I)


@dataclass(frozen=True)
class Bound:
    version: Version
    inclusive: bool


@dataclass(frozen=True)
class Interval:
    """Versions between two bounds; a missing bound is open. Exact: both bounds equal."""

    lower: Bound | None = None
    upper: Bound | None = None

    def contains(self, v: Version) -> bool:
        lo, up = self.lower, self.upper
        if lo and (v < lo.version or (v == lo.version and not lo.inclusive)):
            return False
        return not (up and (v > up.version or (v == up.version and not up.inclusive)))

    @property
    def empty(self) -> bool:
        lo, up = self.lower, self.upper
        if not (lo and up):
            return False
        return lo.version > up.version or (lo.version == up.version
                                           and not (lo.inclusive and up.inclusive))


@dataclass(frozen=True)
class Affected:
    """The versions a product entry names: kind says how they were written (CERTAINTY)."""

    text: str
    kind: str  # all | exact | vers | vers_nonstandard | free_text | unparsed | none
    intervals: tuple[Interval, ...] = ()
    excluded: tuple[Version, ...] = ()
    problem: str = ""  # why the text could not be read (kind unparsed)

    @property
    def certainty(self) -> str:
        """How sure a verdict over this set can be (model.CERTAINTY_ORDER)."""
        return CERTAINTY[self.kind]

    def contains(self, v: Version) -> bool | None:
        """Whether v is in the set; None when the set is unknown (unparsed, none)."""
        if self.kind == "all":
            return True
        if self.kind in ("unparsed", "none"):
            return None
        return v not in self.excluded and any(i.contains(v) for i in self.intervals)

    @property
    def upper_bounds(self) -> tuple[Bound, ...]:
        return tuple(i.upper for i in self.intervals if i.upper and i.lower != i.upper)


def parse_affected(text: str, category: str = "product_version_range",
                   decimal_minor: bool = False) -> Affected:
    """The affected set of a version branch (`product_version` or `product_version_range`)."""
    raw = (text or "").strip()
    if not raw:
        return Affected(raw, "none")
    if _ALL.match(raw):
        return Affected(raw, "all")
    try:
        if raw.lower().startswith("vers:"):
            return _vers(raw, decimal_minor)
        if category == "product_version" and not re.search(r"[<>=|]", raw) \
                and not _INCLUDING.match(raw):
            return _single(raw, decimal_minor)
        return _free_text(raw, decimal_minor)
    except VersionError as e:
        return Affected(raw, "unparsed", problem=str(e))


def _single(raw: str, decimal_minor: bool) -> Affected:
    head = re.sub(r"\([^)]*\)", " ", raw).strip()
    if re.search(r"\.[x*]$", head, re.I):
        return Affected(raw, "exact", (_prefix_interval(head[:-2], decimal_minor),))
    v = parse_version(head, decimal_minor)
    return Affected(raw, "exact", (Interval(Bound(v, True), Bound(v, True)),))


def _prefix_interval(head: str, decimal_minor: bool) -> Interval:
    """9.2.x: from 9.2 up to, not including, 9.3."""
    low = parse_version(head, decimal_minor)
    up = Version(f"{head} (next)", low.release[:-1] + (low.release[-1] + 1,))
    return Interval(Bound(low, True), Bound(up, False))


def _vers(raw: str, decimal_minor: bool) -> Affected:
    scheme, _, constraints = raw[5:].partition("/")
    kind = "vers_nonstandard" if scheme.lower() == "all" else "vers"
    return _constraints(raw, constraints, kind, decimal_minor)


def _free_text(raw: str, decimal_minor: bool) -> Affected:
    text = _INCLUDING.sub(r">= \1 | < \2", raw)  # "A (including) and B (excluding)"
    text = re.sub(r"\([^)]*\)", " ", text).strip()
    for pattern, op in _PHRASES:
        m = pattern.match(text)
        if m:
            text = op + " " + next(g for g in m.groups() if g)
            break
    return _constraints(raw, text, "free_text", decimal_minor)


def _constraints(raw: str, text: str, kind: str, decimal_minor: bool) -> Affected:
    intervals: list[Interval] = []
    excluded: list[Version] = []
    lower: Bound | None = None
    for op, v in _parsed_constraints(text, decimal_minor):
        if op in (">", ">="):
            if lower:
                intervals.append(Interval(lower, None))
            lower = Bound(v, op == ">=")
        elif op in ("<", "<="):
            intervals.append(Interval(lower, Bound(v, op == "<=")))
            lower = None
        elif op == "!=":
            excluded.append(v)
        else:
            intervals.append(Interval(Bound(v, True), Bound(v, True)))
    if lower:
        intervals.append(Interval(lower, None))
    if not intervals:
        raise VersionError(f"{raw!r}: no version constraint found")
    return Affected(raw, kind, tuple(intervals), tuple(excluded))


def _parsed_constraints(text: str, decimal_minor: bool) -> list[tuple[str, Version]]:
    out = []
    for segment in _SPLIT.sub("|", text).split("|"):
        if not segment.strip():
            continue
        op, rest = _CONSTRAINT.match(segment).groups()
        out.append((_OPS[op or ""], parse_version(rest, decimal_minor)))
    return out


def inverted(affected: Affected, description: str = "") -> str:
    """Why the range looks inverted ("" when it does not): a lower bound above the upper
    one, or bounds pointing the other way from the words describing the product."""
    for i in affected.intervals:
        if i.empty:
            return (f"range {affected.text!r} is empty: lower bound {i.lower.version} lies "
                    f"above upper bound {i.upper.version}")
    if affected.kind in ("all", "exact", "unparsed", "none") or not description:
        return ""
    lows = all(i.lower and not i.upper for i in affected.intervals)
    ups = all(i.upper and not i.lower for i in affected.intervals)
    if lows and _OLDER.search(description):
        return (f"range {affected.text!r} counts upwards but the advisory says "
                f"{description!r}: it is probably inverted")
    if ups and _NEWER.search(description):
        return (f"range {affected.text!r} counts downwards but the advisory says "
                f"{description!r}: it is probably inverted")
    return ""
