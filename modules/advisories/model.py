"""The typed, frozen shapes of advisories, their products, and the matches against assets."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from otpatch.modules.advisories.ranges import Affected

AFFECTED_STATUS = ("known_affected", "first_affected", "last_affected")
FIXED_STATUS = ("fixed", "first_fixed")
CONFIDENCE_ORDER = ("high", "medium", "low")  # most sure first
# How sure the version verdict is: all versions, an exact version or a vers range; a
# free-text range read by ranges.py; not compared, contradicted, or still investigated.
CERTAINTY_ORDER = ("exact", "range_parsed", "uncertain")


@dataclass(frozen=True)
class Product:
    """One product entry of an advisory's product tree, flattened."""

    product_id: str
    vendor: str  # as written
    vendor_keys: frozenset[str]
    name: str  # the product_name branch (or the full product name when there is none)
    full_name: str  # product.name
    affected: Affected  # the versions the entry names
    version_category: str = ""  # product_version | product_version_range | "" (none)
    part_patterns: tuple[str, ...] = ()  # model numbers and part numbers, * a wildcard
    path: str = ""  # JSON path of the entry in the document
    related_names: tuple[str, ...] = ()  # a relationship's other product (installed on ...)
    # What marks the product as software (a name word such as "DTM", or "CPE part a"),
    # "" for a device or firmware; a software product names no device asset (identify.py).
    software: str = ""


@dataclass(frozen=True)
class Remediation:
    category: str  # vendor_fix | mitigation | workaround | none_available | no_fix_planned
    details: str
    product_ids: tuple[str, ...]
    url: str = ""


@dataclass(frozen=True)
class AdvisoryScore:
    """A CVSS score the advisory states, for some of its products."""

    products: tuple[str, ...]
    version: str  # 3.1 | 3.0 | 2.0
    vector: str
    base: float | None


@dataclass(frozen=True)
class Vulnerability:
    cve: str
    title: str
    status: Mapping[str, tuple[str, ...]]  # product_status category -> product ids
    scores: tuple[AdvisoryScore, ...]
    remediations: tuple[Remediation, ...]
    path: str  # $.vulnerabilities[i]

    @property
    def label(self) -> str:
        return self.cve or self.title or self.path

    def score_for(self, product_id: str) -> AdvisoryScore | None:
        """The advisory's score for a product: CVSS v3.1 before v3.0 before v2."""
        scores = [s for s in self.scores if product_id in s.products] or list(self.scores)
        order = {"3.1": 0, "3.0": 1, "2.0": 2}
        return min(scores, key=lambda s: order.get(s.version, 3), default=None)


@dataclass(frozen=True)
class Advisory:
    id: str  # document.tracking.id
    title: str
    file: str
    initial_release: datetime
    current_release: datetime
    products: Mapping[str, Product]
    vulnerabilities: tuple[Vulnerability, ...]
    notes: tuple[str, ...] = ()  # problems of a valid document, e.g. an undefined product id
    # CSAF tests (section 6) the document fails that matching does not depend on, one line
    # each with the test id: carried into the reasons of every match it yields.
    warnings: tuple[str, ...] = ()
    publisher: str = ""  # document.publisher.name: who published this copy
    publisher_namespace: str = ""  # document.publisher.namespace (a URL)
    signature: Any = None  # signatures.SignatureCheck of the .asc beside the file; None: none checked


@dataclass(frozen=True)
class Skipped:
    """A file that could not be used: where and why, in one line."""

    file: str
    path: str  # JSON path ($ for the whole file)
    reason: str
    more: int = 0  # further problems in the same file, not shown

    def line(self) -> str:
        tail = f" (and {self.more} more)" if self.more else ""
        return f"{self.file}: {self.path}: {self.reason}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "path": self.path, "reason": self.reason,
                "more": self.more}


@dataclass(frozen=True)
class Finding:
    """Whether one product of a vulnerability affects one asset, and how sure that is: how
    firmly the product names the asset (identification), how sure the version verdict is
    (certainty), and the two combined (confidence: the lower of them)."""

    product: Product
    affected: bool
    confidence: str  # high | medium | low (CONFIDENCE_ORDER)
    reasons: tuple[str, ...]
    flags: tuple[str, ...] = ()  # keywords: free_text_range, wildcard, contradiction, ...
    fixed_version: str = ""
    fixed_source: str = ""  # product_status | vendor_fix | prose | ""
    remediation: str = "none"
    remediation_categories: tuple[str, ...] = ()
    identification: str = "name"  # part_number | part_pattern | model | name
    certainty: str = "uncertain"  # exact | range_parsed | uncertain (CERTAINTY_ORDER)
    remediation_text: str = ""  # the details of the remediation shown (category above)
    remediation_url: str = ""


@dataclass(frozen=True)
class NearMiss:
    """A product an advisory names that shares the asset's words or part-number family but
    was judged not to affect it, and why (`advisories match --near-misses`)."""

    host: str
    advisory: str
    product_id: str
    product: str
    reason: str
    flag: str  # software_product | software_asset | part_number_differs | family_mismatch
    #            | not_in_range | known_not_affected
    cves: tuple[str, ...] = ()  # the vulnerabilities concerned; () for every one


@dataclass(frozen=True)
class Urgency:
    """The advisory's CVSS score, the effective score with the controls covering the asset,
    and the due date (risk.due) counted from `published`."""

    cvss_version: str = ""
    vector: str = ""
    base: float | None = None
    effective: float | None = None
    severity: str = ""
    effective_vector: str = ""
    controls: tuple[str, ...] = ()
    due: Any = None  # risk.due.Due; None without a score
    published: datetime | None = None
    notes: tuple[str, ...] = ()

    @property
    def due_category(self) -> str:
        return self.due.category if self.due else ""

    @property
    def deadline(self) -> datetime | None:
        return self.due.deadline if self.due else None


@dataclass(frozen=True)
class Match:
    """An affected asset: the vulnerability, how sure, the fix, and how urgent."""

    host: str
    advisory: str
    cve: str
    finding: Finding
    urgency: Urgency = field(default_factory=Urgency)
    advisory_title: str = ""
    file: str = ""
    firmware: str = ""
    due_basis: str = ""  # initial_release_date | current_release_date
    playbooks: tuple[str, ...] = ()
    identity: Mapping[str, str] = field(default_factory=dict)  # the asset as the inventory has it
    sources: tuple[Any, ...] = ()  # sources.Source: every provider that published this match
    disagreements: tuple[str, ...] = ()  # where those providers differ (score, fixed version)
    firmware_source: str = ""  # where the firmware came from when not typed (the baseline)

    @property
    def confidence(self) -> str:
        return self.finding.confidence

    @property
    def reason(self) -> str:
        said = (self.firmware_source,) if self.firmware_source else ()
        return "; ".join(said + self.finding.reasons + self.urgency.notes)

    @property
    def effective(self) -> float | None:
        return self.urgency.effective

    @property
    def due_category(self) -> str:
        return self.urgency.due_category

    @property
    def deadline(self) -> datetime | None:
        return self.urgency.deadline
