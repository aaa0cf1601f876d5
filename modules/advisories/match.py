"""Advisories against an inventory: affected assets, how sure, the fix, most urgent first."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from types import MappingProxyType
from functools import lru_cache
from typing import Any, Iterable, Mapping

from otpatch.modules.advisories import fixes
from otpatch.modules.advisories.identify import Asset, Identification, ProductIndex, identify
from otpatch.modules.advisories.model import (
    AFFECTED_STATUS, CONFIDENCE_ORDER, Advisory, Finding, Match, NearMiss, Product, Urgency,
    Vulnerability,
)
from otpatch.modules.advisories.urgency import CATEGORY_RANK, Assessor
from otpatch.modules.advisories.vendors import decimal_minor, display
from otpatch.modules.versions import Version, try_version

NEVER = datetime.max.replace(tzinfo=timezone.utc)  # sorts after every deadline
REPORTED_STATUS = AFFECTED_STATUS + ("under_investigation",)
VERSION_FLAGS = {"all": "all_versions", "exact": "exact_version", "vers": "vers_range",
                 "vers_nonstandard": "vers_range", "free_text": "free_text_range",
                 "unparsed": "unparsed_range", "none": "no_version"}


def match(inventory: Any, advisories: Iterable[Advisory], controls: Any = (), *,
          playbooks: Iterable[Any] = (), due_from: str = "initial",
          next_cycle: datetime | None = None, hosts: Iterable[Any] | None = None,
          near_misses: list[NearMiss] | None = None,
          firmware_sources: Mapping[str, str] | None = None) -> list[Match]:
    """Every (asset, advisory, CVE) where the advisory affects an inventory host (or one of
    `hosts`), most urgent first. `controls`: risk Controls (or load_controls' mapping);
    each applies to the hosts its applies_to covers. `playbooks`: PlaybookRefs. The near
    misses (products named but judged not to affect an asset) go into `near_misses`;
    `firmware_sources`: host -> where its firmware came from, when not from the inventory."""
    from otpatch.modules.advisories.playbooks import playbooks_for

    matcher = Matcher(advisories)
    assessor = Assessor(inventory, controls, due_from, next_cycle)
    refs = tuple(playbooks)
    out = []
    for host in (inventory.hosts.values() if hosts is None else hosts):
        books, asset, identity = playbooks_for(host, refs), Asset.of(host), _identity(host)
        for adv, vuln, finding in matcher.findings(asset):
            urgency = assessor.assess(host, adv, vuln.score_for(finding.product.product_id))
            out.append(_match(host, adv, vuln, finding, urgency, assessor.basis, books,
                              identity, (firmware_sources or {}).get(host.name, "")))
        if near_misses is not None:
            near_misses.extend(replace(m, host=host.name) for m in matcher.misses(asset))
    return sorted(out, key=urgency_key)


def urgency_key(m: Match) -> tuple:
    """Most urgent first: due category, deadline, effective score, confidence, names."""
    return (CATEGORY_RANK.get(m.due_category, 3), m.deadline or NEVER,
            -(m.effective if m.effective is not None else -1),
            CONFIDENCE_ORDER.index(m.confidence), m.host, m.advisory, m.cve)


IDENTITY = {"vendor": "vendor", "model": "model", "part_number": "part_number",
            "serial_number": "serial", "device": "device", "zone": "zone"}  # key -> Host field


def _identity(host: Any) -> Mapping[str, str]:
    """The asset as the inventory has it, echoed with each of its matches."""
    identity = {k: str(getattr(host, f, "") or "") for k, f in IDENTITY.items()}
    identity["firmware"] = str(host.firmware or "")
    return MappingProxyType(identity)


def _match(host: Any, adv: Advisory, vuln: Vulnerability, finding: Finding, u: Urgency,
           basis: str, books: tuple[str, ...], identity: Mapping[str, str],
           firmware_source: str = "") -> Match:
    return Match(host=host.name, advisory=adv.id, cve=vuln.label, finding=finding, urgency=u,
                 advisory_title=adv.title, file=adv.file, firmware=identity["firmware"],
                 due_basis=basis, playbooks=books, identity=identity,
                 firmware_source=firmware_source)


class Matcher:
    """The advisories indexed once; findings per asset, cached by asset signature."""

    def __init__(self, advisories: Iterable[Advisory]):
        self.advisories = tuple(advisories)
        self.index = ProductIndex(self.advisories)
        self._statements: dict[tuple[int, int], dict] = {}
        self._fixes: dict[tuple, tuple] = {}
        self._cache: dict[tuple, list] = {}

    def findings(self, asset: Asset) -> list[tuple[Advisory, Vulnerability, Finding]]:
        return self._of(asset)[0]

    def misses(self, asset: Asset) -> list[NearMiss]:
        """The near misses of the asset (host left empty: the caller names it)."""
        return self._of(asset)[1]

    def _of(self, asset: Asset) -> tuple[list, list]:
        if asset.signature not in self._cache:
            self._cache[asset.signature] = self._find(asset)
        return self._cache[asset.signature]

    def _find(self, asset: Asset) -> tuple[list, list[NearMiss]]:
        named: dict[str, tuple[Advisory, dict[str, Identification]]] = {}
        misses: list[NearMiss] = []
        for adv, product in self.index.candidates(asset):
            found = identify(product, asset)
            if isinstance(found, Identification):
                named.setdefault(adv.id, (adv, {}))[1][product.product_id] = found
            elif found is not None:
                misses.append(_miss(adv, product, found.reason, found.flag))
        out = []
        for adv, idents in named.values():
            hit = {}
            for i, vuln in enumerate(adv.vulnerabilities):
                finding = self._vulnerability(asset, adv, i, vuln, idents, hit)
                if finding:
                    out.append((adv, vuln, finding))
            misses += _version_misses(adv, idents, hit)
        affecting = {adv.id for adv, _, _ in out}  # a miss is of an advisory that spares it
        return out, [m for m in misses if m.advisory not in affecting]

    def _vulnerability(self, asset: Asset, adv: Advisory, i: int, vuln: Vulnerability,
                       idents: Mapping[str, Identification], hit: dict) -> Finding | None:
        """The finding of the most specifically named products of the vulnerability;
        `hit` collects, per product id, the CVE and the finding (or why not) of each."""
        listed = {pid for cat in REPORTED_STATUS + ("known_not_affected",)
                  for pid in vuln.status.get(cat, ()) if pid in idents}
        if not listed:
            return None
        top = max(idents[p].rank for p in listed)
        chosen = [p for p in listed if idents[p].rank == top]
        version = _firmware(asset, adv.products[chosen[0]])
        not_affected = vuln.status.get("known_not_affected", ())
        if version and any(p in not_affected and adv.products[p].affected.contains(version)
                           for p in chosen):
            for p in chosen:
                hit.setdefault(p, []).append((vuln.label, "known_not_affected"))
            return None
        findings = {p: self._evaluate(asset, adv, i, vuln, adv.products[p], idents[p], version)
                    for p in chosen if not _only_not_affected(p, vuln)}
        for p, f in findings.items():
            hit.setdefault(p, []).append((vuln.label, f))
        # Several entries name the asset alike (variants, or one product listed twice with
        # different versions): affected when any says so; shown, the surest and closest.
        hits = [(CONFIDENCE_ORDER.index(f.confidence), idents[p].extra, p)
                for p, f in findings.items() if f.affected]
        return findings[min(hits)[2]] if hits else None

    def _evaluate(self, asset: Asset, adv: Advisory, i: int, vuln: Vulnerability,
                  product: Product, ident: Identification, version: Version | None) -> Finding:
        fix, category, present, trouble, text, url = self._fix(adv, i, vuln, product,
                                                                asset.part_number)
        reasons = [ident.text] + _vendor_reason(product.vendor, product.vendor_keys)
        flags = list(ident.flags) + (["vendor_alias"] if len(reasons) > 1 else [])
        verdict, certainty = _version_verdict(product, asset, version, reasons, flags)
        if product.product_id in vuln.status.get("under_investigation", ()):
            reasons.append("the vendor is still investigating")
            flags.append("under_investigation")
            certainty = "uncertain"
        verdict, certainty = _fix_checks(product, fix, trouble, version, verdict, certainty,
                                         reasons, flags)
        if category == "vendor_fix" and not fix:
            reasons.append("the vendor_fix entries name no fixed version")
        reasons += adv.warnings
        flags += ["csaf_warning"] if adv.warnings else []
        return Finding(product, verdict is not False, combined(ident, certainty, flags),
                       tuple(reasons), tuple(flags), fix.version if fix else "",
                       fix.source if fix else "", category, present, ident.strength,
                       certainty, text, url)

    def _fix(self, adv: Advisory, i: int, vuln: Vulnerability, product: Product,
             part: str) -> tuple:
        """The fix, remediation category and contradictions of a product for a part number
        (the same for every asset with that part number)."""
        key = (id(adv), i, product.product_id, part)
        if key not in self._fixes:
            stmts = fixes.for_asset(self._stmts(adv, i, vuln).get(product.product_id, ()),
                                    part)
            fix = fixes.fixed_version(product, vuln, adv.products, stmts)
            shown, present = fixes.category(stmts)
            self._fixes[key] = (fix, shown, present, tuple(fixes.contradictions(product, fix)),
                                *fixes.shown(stmts, shown))
        return self._fixes[key]

    def _stmts(self, adv: Advisory, i: int, vuln: Vulnerability) -> dict:
        key = (id(adv), i)
        if key not in self._statements:
            self._statements[key] = fixes.statements(vuln, dict(adv.products))
        return self._statements[key]


# Identification strength and version certainty, each read as a confidence; the finding's
# confidence is the lower of the two.
STRENGTH_CONFIDENCE = {"part_number": "high", "part_pattern": "high", "model": "medium",
                       "name": "low"}
CERTAINTY_CONFIDENCE = {"exact": "high", "range_parsed": "medium", "uncertain": "low"}


def combined(ident: Identification, certainty: str, flags: list[str]) -> str:
    """The lower of identification and certainty; low when the asset's part number could
    not be checked against the part numbers or family the advisory names."""
    if "no_part_number" in flags:
        return "low"
    return max(STRENGTH_CONFIDENCE[ident.strength], CERTAINTY_CONFIDENCE[certainty],
               key=CONFIDENCE_ORDER.index)


def _miss(adv: Advisory, product: Product, reason: str, flag: str,
          cves: tuple[str, ...] = ()) -> NearMiss:
    return NearMiss("", adv.id, product.product_id, product.name.strip(), reason, flag, cves)


def _version_misses(adv: Advisory, idents: Mapping[str, Identification],
                    hit: dict) -> list[NearMiss]:
    """The products that name the asset but whose versions (or status) spare it in every
    vulnerability that lists them: one near miss each, with the first reason."""
    out = []
    # Variants alike ("RS4000 TX/TX", "RS4000 TX/TX VPN"): the closest one speaks for them.
    for pid in sorted(hit, key=lambda p: (-idents[p].rank[0], -idents[p].rank[1],
                                          idents[p].extra, p))[:1]:
        results = hit[pid]
        if any(not isinstance(f, str) and f.affected for _, f in results):
            continue
        cves = tuple(dict.fromkeys(c for c, _ in results))
        first = results[0][1]
        if isinstance(first, str):
            why, flag = "the vendor lists its version as known not affected", first
        else:
            why, flag = "; ".join(first.reasons), "not_in_range"
        out.append(_miss(adv, adv.products[pid], why, flag, cves))
    return out


def _only_not_affected(pid: str, vuln: Vulnerability) -> bool:
    return not any(pid in vuln.status.get(cat, ()) for cat in REPORTED_STATUS)


def _firmware(asset: Asset, product: Product) -> Version | None:
    return try_version(asset.firmware, any(decimal_minor(k) for k in product.vendor_keys))


@lru_cache(maxsize=1024)
def _vendor_text(vendor: str, keys: frozenset[str]) -> str:
    canonical = [display(k) for k in sorted(keys)]
    if vendor and vendor not in canonical:
        return f"vendor {vendor!r} read as {' and '.join(canonical)}"
    return ""


def _vendor_reason(vendor: str, keys: frozenset[str]) -> list[str]:
    """The drifting vendor name, said (vendor_alias), or nothing when it is canonical."""
    text = _vendor_text(vendor, keys)
    return [text] if text else []


def _version_verdict(product: Product, asset: Asset, version: Version | None,
                     reasons: list[str], flags: list[str]) -> tuple[bool | None, str]:
    """Whether the asset's firmware is in the product's affected set, and how sure."""
    affected = product.affected
    flags.append(VERSION_FLAGS[affected.kind])
    if affected.kind == "all":
        reasons.append(f"all versions are affected ({affected.text!r})")
        return True, "exact"
    if affected.kind in ("unparsed", "none"):
        why = affected.problem or "the advisory names no version"
        reasons.append(f"version not compared: {why}")
        return None, "uncertain"
    if version is None:
        flags.append("no_firmware")
        shown = asset.firmware or "none recorded"
        reasons.append(f"firmware {shown!r} cannot be compared with {affected.text!r}")
        return None, "uncertain"
    inside = affected.contains(version)
    if version.words or any(b.version.words for b in affected.upper_bounds):
        flags.append("suffix")
    how = {"free_text": "free-text range", "exact": "version"}.get(affected.kind, "vers range")
    reasons.append(f"firmware {asset.firmware} is {'' if inside else 'not '}in the {how} "
                   f"{affected.text!r}")
    return inside, affected.certainty


def _fix_checks(product: Product, fix: Any, trouble: tuple[str, ...], version: Version | None,
                verdict: bool | None, certainty: str, reasons: list[str], flags: list[str]
                ) -> tuple[bool | None, str]:
    """The fix, said; and when range and fix disagree (`trouble`), either one saying
    affected is enough, at uncertain certainty, with both stated."""
    if fix:
        flags.append({"prose": "fix_prose"}.get(fix.source, f"fix_{fix.source}"))
        only = " (only remediation prose names it)" if fix.source == "prose" else ""
        reasons.append(f"fixed in {fix.version} per {fix.source.replace('_', ' ')}{only}")
    if not trouble:
        return verdict, certainty
    flags.append("contradiction")
    if any("inverted" in t or "is empty" in t for t in trouble):
        flags.append("inverted")
    reasons.extend(f"contradiction: {t}" for t in trouble)
    fixed = fix and try_version(fix.version, any(decimal_minor(k) for k in product.vendor_keys))
    below_fix = bool(version and fixed and version < fixed)
    reported = verdict is not False or below_fix or "inverted" in flags
    return reported, "uncertain"
