"""Which advisory products name which assets (part number, model, name); the index to find them."""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any, Iterable, Iterator

from otpatch.modules.advisories.families import family_of, fits, software_name
from otpatch.modules.advisories.model import Advisory, Product
from otpatch.modules.advisories.vendors import clean, vendor_key

# Words that say what kind of thing a product is, not which one: ignored in names.
STOPWORDS = frozenset("""a all and cpu cpus controller controllers device devices family
firmware for fw hardware in module modules of plc plcs processor processors product products
series software the unit units version versions with""".split())
LEVEL_RANK = {"part_number": 4, "model": 3, "variant": 2, "name": 1}
_PART_KEY = 4  # part patterns are indexed by up to this many leading literal characters


@dataclass(frozen=True)
class Asset:
    """What identifies an inventory host to the matcher."""

    name: str
    vendor_key: str
    tokens: frozenset[str]  # significant words of the model, and the part number
    part_number: str  # upper case, "" when unknown
    firmware: str
    software: bool = False  # `otpatch_device: software`, or a model the product table marks

    @classmethod
    def of(cls, host: Any) -> "Asset":
        part = str(host.part_number or "").strip().upper()
        words = set(_words(host.model, host.vendor)[0])
        if part:
            words.add(part.lower())
        device = getattr(host, "device", None)
        software = device == "software" or (device is None and bool(software_name(host.model)))
        return cls(host.name, vendor_key(host.vendor), frozenset(words), part,
                   str(host.firmware or "").strip(), software)

    @property
    def signature(self) -> tuple:
        """Hosts with the same signature match the same advisories the same way."""
        return self.vendor_key, self.tokens, self.part_number, self.firmware, self.software


# How firmly a product names an asset, surest first: its part number listed as such, a
# part-number pattern (wildcard or family prefix) it fits, its model (designators, or the
# whole name of a software product), a name only ("mGuard", a family word).
STRENGTHS = ("part_number", "part_pattern", "model", "name")


@dataclass(frozen=True)
class Identification:
    """How a product names an asset: the level, how specific, and in words."""

    level: str  # part_number | model | variant | name (a name without model designators)
    specificity: int
    text: str
    flags: tuple[str, ...] = ()
    extra: int = 0  # words of the product name the asset does not have (variants)
    strength: str = "name"  # one of STRENGTHS

    @property
    def rank(self) -> tuple[int, int]:
        return LEVEL_RANK[self.level], self.specificity


@dataclass(frozen=True)
class Mismatch:
    """A product that names the asset's words or part-number family but is judged not to
    be it, and why (shown with --near-misses)."""

    reason: str
    flag: str  # software_product | software_asset | part_number_differs | family_mismatch


@lru_cache(maxsize=65536)
def _words(name: str, vendor: str = "") -> tuple[frozenset[str], frozenset[str]]:
    """Significant words of a name (no parentheses, vendor words or stopwords) and the
    designators among them (words with a letter and a digit: M580, RS4000, X80)."""
    bare = re.sub(r"\([^)]*\)", " ", str(name)).lower()
    skip = STOPWORDS | set(re.split(r"[^a-z0-9]+", clean(vendor)))
    words = frozenset(w for w in re.split(r"[^a-z0-9]+", bare) if w and w not in skip)
    designators = frozenset(w for w in words if re.search(r"\d", w) and re.search(r"[a-z]", w))
    return words, designators


def identify(product: Product, asset: Asset) -> Identification | Mismatch | None:
    """How the product names the asset; a Mismatch when it names its words but is another
    kind of thing or part; None when it does not name it at all (vendors already agree)."""
    found = _named(product, asset)
    if not isinstance(found, Identification):
        return found
    if product.software and not asset.software:
        return Mismatch(f"{product.name.strip()!r} is software ({product.software}); the asset "
                        "is a device, and the document lists the software, not the device",
                        "software_product")
    if asset.software and not product.software and (product.part_patterns or
                                                     found.level == "variant"):
        return Mismatch(f"{product.name.strip()!r} is a device; the asset is software",
                        "software_asset")
    return found


def _named(product: Product, asset: Asset) -> Identification | Mismatch | None:
    if product.part_patterns and asset.part_number:
        return _by_part(product, asset) or _part_miss(product, asset)
    best = None
    for name in (product.name,) + product.related_names:
        found = _by_name(name, product, asset)
        if found and (best is None or not isinstance(found, Mismatch) and (
                isinstance(best, Mismatch) or found.rank > best.rank)):
            best = found
    if isinstance(best, Identification) and product.part_patterns:
        return replace(best, text=best.text + "; the asset has no part number to check "
                       f"against {', '.join(product.part_patterns)}",
                       flags=best.flags + ("no_part_number",))
    return best


def _part_miss(product: Product, asset: Asset) -> Mismatch | None:
    """The product's name names the asset's model, but its part numbers are others."""
    if not any(_by_name(n, product, asset) for n in (product.name,) + product.related_names):
        return None
    return Mismatch(f"{product.name.strip()!r}: part number {asset.part_number} is not among "
                    f"{', '.join(product.part_patterns)}", "part_number_differs")


def _by_part(product: Product, asset: Asset) -> Identification | None:
    hits = [p for p in product.part_patterns if part_matches(p, asset.part_number)]
    if not hits:
        return None
    pattern = max(hits, key=lambda p: len(p.replace("*", "")))
    wild = "*" in pattern
    exact = pattern.upper() == asset.part_number
    how = "matches the wildcard" if wild else "is listed as" if exact else "is of the family"
    return Identification("part_number", len(pattern.replace("*", "")),
                          f"part number {asset.part_number} {how} {pattern}",
                          ("part_number",) + (("wildcard",) if wild else ()),
                          strength="part_number" if exact else "part_pattern")


def part_matches(pattern: str, part: str) -> bool:
    """A part number against an advisory's pattern: `*` any run of characters; a pattern
    without one is the part itself, or a family prefix when it ends in a digit and the part
    goes on with digits (BMKC80 covers BMKC8020310, BMEP584040 does not cover BMEP584040S)."""
    pattern, part = pattern.upper(), part.upper()
    if "*" in pattern:
        return fnmatchcase(part, pattern)
    if part == pattern:
        return True
    rest = part[len(pattern):]
    return part.startswith(pattern) and pattern[-1:].isdigit() and rest[:1].isdigit()


def _by_name(name: str, product: Product, asset: Asset) -> Identification | Mismatch | None:
    words, designators = _words(name, product.vendor)
    if words and words <= asset.tokens:
        level = "model" if designators else "name"
        whole = "model" if designators or asset.software and len(words) > 1 else "name"
        found = Identification(level, len(words), f"{'model' if designators else 'product'} "
                               f"name {name.strip()!r} names the asset", (level,),
                               strength=whole)
    elif designators and designators <= asset.tokens:
        found = Identification("variant", len(designators), f"product {name.strip()!r} is a "
                               f"variant of model {'/'.join(sorted(designators)).upper()}",
                               ("variant",), extra=len(words - asset.tokens), strength="model")
    else:
        return None
    return _family_check(found, name, designators, product, asset)


def _family_check(found: Identification, name: str, designators: frozenset[str],
                  product: Product, asset: Asset) -> Identification | Mismatch:
    """A family name ("Modicon M580", meaning the CPU) names an asset only if the asset's
    part number fits the family's patterns (families.py); without one it cannot be told."""
    if product.part_patterns:
        return found
    family = family_of(product.vendor_keys, designators, name)
    if family is None:
        return found
    label = f"the {family.designator.upper()} {family.kind} part numbers " \
            f"({', '.join(family.patterns)})"
    if not asset.part_number:
        return replace(found, text=f"{found.text}; the asset has no part number to check "
                       f"against {label}", flags=found.flags + ("no_part_number",))
    if not fits(family, asset.part_number):
        return Mismatch(f"{name.strip()!r} names a family; part number {asset.part_number} "
                        f"is not among {label}", "family_mismatch")
    return replace(found, text=f"{found.text}; part number {asset.part_number} is among "
                   f"{label}", flags=found.flags + ("family",))


class ProductIndex:
    """Products by vendor key, then by name word and by leading part-number characters."""

    def __init__(self, advisories: Iterable[Advisory]):
        self._by_word: dict[tuple[str, str], list] = defaultdict(list)
        self._by_part: dict[tuple[str, str], list] = defaultdict(list)
        for adv in advisories:
            for product in adv.products.values():
                for key in product.vendor_keys:
                    self._add(key, adv, product)

    def _add(self, key: str, adv: Advisory, product: Product) -> None:
        entry = (adv, product)
        for name in (product.name,) + product.related_names:
            words, designators = _words(name, product.vendor)
            # A name names an asset only if the asset has all its words, or (a variant) all
            # its designators: one of them is enough to find it by.
            if designators or words:
                self._by_word[key, min(designators or words, key=lambda w: (-len(w), w))
                              ].append(entry)
        for pattern in product.part_patterns:
            literal = pattern.upper().split("*")[0][:_PART_KEY]
            self._by_part[key, literal].append(entry)

    def candidates(self, asset: Asset) -> Iterator[tuple[Advisory, Product]]:
        """Each (advisory, product) that may name the asset, once; identify() decides."""
        seen: set[tuple[int, str]] = set()
        lists = [self._by_word.get((asset.vendor_key, w), ()) for w in asset.tokens]
        part = asset.part_number
        lists += [self._by_part.get((asset.vendor_key, part[:k]), ())
                  for k in range(0, min(len(part), _PART_KEY) + 1)]
        for entries in lists:
            for adv, product in entries:
                key = (id(adv), product.product_id)
                if key not in seen:
                    seen.add(key)
                    yield adv, product
