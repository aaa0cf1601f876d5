"""Fixed versions, remediation categories and range/fix contradictions of advisory products."""
from __future__ import annotations

import re
from dataclasses import dataclass

from otpatch.modules.advisories.model import FIXED_STATUS, Product, Remediation, Vulnerability
from otpatch.modules.advisories.ranges import inverted
from otpatch.modules.versions import Version, try_version
from otpatch.modules.advisories.vendors import decimal_minor

_NUMBER = r"\d+(?:\.\d+)+(?:[ _]?(?:IR|SP|HF)\s?\d+)?"
VERSION_IN_TEXT = re.compile(rf"\b(?:firmware|version|release|software)\s+(?:version\s+)?"
                             rf"(?P<a>(?:SV|VS|V)?{_NUMBER})\b"
                             rf"|(?<![\w.])(?P<b>(?:SV|VS|V){_NUMBER})\b", re.I)
FIX_WORDS = re.compile(r"\b(?:fix(?:es|ed)?|remediat\w*|update\w*\s+to|upgrade\w*\s+to|"
                       r"or\s+(?:higher|later|newer)|available\s+for\s+download|is\s+available"
                       r"|are\s+available|address(?:es)?\s+th|released)\b", re.I)
PROMISE = re.compile(r"\b(?:will\s+(?:include|provide|be)|remediation\s+plan|no\s+fix|not\s+"
                     r"(?:yet\s+)?(?:be\s+)?available|currently,?\s+no|no\s+plans?)\b", re.I)
_PREFIX = re.compile(r"^([^:]{2,120}):\s")
_PART_NO = re.compile(r"(?<![\w*-])(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{8,}(?![\w*-])")
_VARIANT = re.compile(r"(?<![\w-])\[?([A-Z]{1,2})\]?(?![\w-])")
PRIMARY = ("vendor_fix", "no_fix_planned", "none_available", "mitigation", "workaround")


@dataclass(frozen=True)
class Statement:
    """A remediation as it bears on one product: its category, the fix version it names
    (if any), and the part numbers it is limited to (None: every part)."""

    category: str
    version: str
    is_fix: bool
    promise: bool  # a fix announced for later ("will include a fix")
    parts: frozenset[str] | None
    details: str = ""  # the remediation's text, as the advisory has it
    url: str = ""


@dataclass(frozen=True)
class Fix:
    version: str
    source: str  # product_status | vendor_fix | prose


def statements(vuln: Vulnerability, products: dict[str, Product]) -> dict[str, tuple]:
    """Product id -> the Statements of the vulnerability's remediations that concern it."""
    out: dict[str, list[Statement]] = {i: [] for i in products}
    for r in vuln.remediations:
        listed = {i: products[i] for i in r.product_ids if i in products}
        for product_id, version in _scoped(r, listed).items():
            out[product_id].append(_statement(r, version))
    return {k: tuple(v) for k, v in out.items()}


def _scoped(r: Remediation, listed: dict[str, Product]) -> dict[str, str]:
    """The products the text is about (those it names, the most specific mention winning;
    all listed when it names none), each with the fix version the text gives it."""
    text = " ".join(r.details.split())
    found = [(m.start(), m.group("a") or m.group("b")) for m in VERSION_IN_TEXT.finditer(text)]
    first = found[0][1] if found else ""
    spans = {i: _mention(p.name, text) for i, p in listed.items()} if len(listed) > 1 else {}
    named = {i: s for i, s in spans.items() if s and not any(
        other and other != s and other[0] <= s[0] and s[1] <= other[1]
        for other in spans.values())}
    if not named:
        return {i: first for i in listed}
    return {i: next((v for pos, v in found if pos >= end), first)
            for i, (_, end) in named.items()}


def _mention(name: str, text: str) -> tuple[int, int] | None:
    """Where the product's name (without its parentheses) appears in the text."""
    bare = re.sub(r"\([^)]*\)", " ", name)
    words = [re.escape(w) for w in re.split(r"\W+", bare) if w]
    if not words:
        return None
    m = re.search(r"\b" + r"\W*".join(words) + r"\b", text, re.I)
    return (m.start(), m.end()) if m else None


def _statement(r: Remediation, version: str) -> Statement:
    text = " ".join(r.details.split())
    prefix = _PREFIX.match(text)
    promise = bool(PROMISE.search(text))
    is_fix = bool(version) and not promise and bool(
        FIX_WORDS.search(text) or (prefix and re.search(r"\bfirmware\b", text, re.I)))
    return Statement(r.category, version if is_fix else "", is_fix, promise,
                     _parts(prefix.group(1)) if prefix else None, r.details, r.url)


def _parts(prefix: str) -> frozenset[str] | None:
    """Part numbers a "BMEP582040 and H: ..." prefix limits the text to, with variants."""
    parts = _PART_NO.findall(prefix)
    if not parts:
        return None
    letters = _VARIANT.findall(_PART_NO.sub(" ", prefix))
    return frozenset(parts + [p + v for p in parts for v in letters])


def for_asset(stmts: tuple[Statement, ...], part_number: str) -> tuple[Statement, ...]:
    """The statements that hold for an asset's part number."""
    return tuple(s for s in stmts if s.parts is None or not part_number
                 or part_number in s.parts)


def fixed_version(product: Product, vuln: Vulnerability, products: dict[str, Product],
                  stmts: tuple[Statement, ...]) -> Fix | None:
    """The first fixed version: product_status, else a vendor_fix, else prose."""
    same = [products[i] for cat in FIXED_STATUS for i in vuln.status.get(cat, ())
            if i in products and _same_line(products[i], product)]
    versions = [p.affected.intervals[0].lower.version for p in same
                if p.affected.kind == "exact" and p.affected.intervals[0].lower]
    if versions:
        return Fix(str(min(versions)), "product_status")
    for source, wanted in (("vendor_fix", ("vendor_fix",)), ("prose", None)):
        for s in stmts:
            if s.is_fix and (wanted is None or s.category in wanted):
                return Fix(s.version, source)
    return None


def _same_line(a: Product, b: Product) -> bool:
    squash = (lambda n: re.sub(r"\W+", "", n).lower())
    return squash(a.name) == squash(b.name) or bool(set(a.part_patterns) & set(b.part_patterns))


def shown(stmts: tuple[Statement, ...], category_shown: str) -> tuple[str, str]:
    """The text and URL of the remediation of the category shown: the one that names the
    fix, else one limited to the asset's part numbers, else the first."""
    of = [s for s in stmts if s.category == category_shown or (
        category_shown == "none_available" and s.category == "vendor_fix" and s.promise)]
    best = sorted(of, key=lambda s: (not s.is_fix, s.parts is None))[:1]
    return (" ".join(best[0].details.split()), best[0].url) if best else ("", "")


def category(stmts: tuple[Statement, ...]) -> tuple[str, tuple[str, ...]]:
    """The remediation category to show (a vendor_fix that only promises a fix counts as
    none_available), and every category present."""
    cats = {s.category for s in stmts if not (s.category == "vendor_fix" and s.promise)}
    if any(s.category == "vendor_fix" and s.promise for s in stmts):
        cats.add("none_available")
    present = tuple(c for c in PRIMARY if c in cats)
    return (present[0] if present else "none"), present


def contradictions(product: Product, fix: Fix | None) -> list[str]:
    """Why the product's range and its fix (or its own words) disagree; [] when they agree."""
    found = []
    why = inverted(product.affected, product.full_name)
    if why:
        found.append(why)
    fixed = fix and _version(fix.version, product)
    if not fixed or product.affected.kind in ("unparsed", "none", "exact"):
        return found
    affected = product.affected
    if affected.contains(fixed):
        found.append(f"the fix {fix.version} lies inside the affected range {affected.text!r}")
    ups = affected.upper_bounds
    top = max(ups, key=lambda b: b.version) if ups else None
    if top and not top.inclusive and fixed != top.version and not affected.contains(fixed):
        found.append(f"the range {affected.text!r} makes {top.version} the first fixed "
                     f"version, but the fix named is {fix.version}")
    return found


def _version(text: str, product: Product) -> Version | None:
    return try_version(text, any(decimal_minor(k) for k in product.vendor_keys))

