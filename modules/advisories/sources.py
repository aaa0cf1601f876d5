"""Several providers, one answer: matches of the same CVE on the same asset, published by
different providers (the vendor's PSIRT, CERT@VDE, CISA), shown once, naming every source
and where they disagree on the score or the fixed version."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable

from otpatch.modules.advisories.model import Match

_CVE_PREFIX = "CVE-"


@dataclass(frozen=True)
class Source:
    """One provider's advisory behind a match."""

    publisher: str  # document.publisher.name ("" when the file does not say)
    namespace: str
    advisory: str  # its tracking id
    file: str
    signature: str  # the signature check's status, or "not checked"
    base: float | None
    vector: str
    fixed_version: str

    def to_dict(self) -> dict[str, Any]:
        return {"publisher": self.publisher or None, "namespace": self.namespace or None,
                "advisory": self.advisory, "file": self.file, "signature": self.signature,
                "base": self.base, "vector": self.vector or None,
                "fixed_version": self.fixed_version or None}


def signed(loaded: Any, keys: Any) -> Any:
    """The Loaded with each advisory's signature checked against the site's pinned keys
    (signatures.py), and one note that says how many were valid, bad, unsigned..."""
    from collections import Counter

    from otpatch.modules.advisories.signatures import check_all

    checks = check_all([a.file for a in loaded.advisories], keys)
    advisories = tuple(replace(a, signature=checks.get(a.file)) for a in loaded.advisories)
    counts = Counter(c.status.value for c in checks.values())
    said = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    notes = [c.line() for c in checks.values() if c.status.value in ("bad", "unknown_key",
                                                                      "error")]
    summary = (f"signatures: {said}" if set(counts) - {"no_pinned_keys"} else
               "signatures not checked: the site pins no advisory keys "
               "($OTPATCH_ADVISORY_KEYS, else /etc/otpatch/advisory-keys)" if counts else
               "signatures: no advisory loaded")
    return replace(loaded, advisories=advisories,
                   notes=loaded.notes + (summary,) + tuple(notes))


def source_of(m: Match, publisher: str = "", namespace: str = "", signature: Any = None
              ) -> Source:
    status = signature.status.value if signature is not None else "not checked"
    return Source(publisher, namespace, m.advisory, m.file, status, m.urgency.base,
                  m.urgency.vector, m.finding.fixed_version)


def merge(matches: Iterable[Match], advisories: Iterable[Any]) -> list[Match]:
    """The matches, those of one CVE on one asset from several providers merged into the
    first (the most urgent, as `matches` is sorted): its `sources` name every provider's
    advisory and `disagreements` say where they differ. One provider's matches are kept
    as they are, each with itself as its one source."""
    by_id = {a.id: a for a in advisories}
    ordered = list(matches)
    groups: dict[tuple[str, str], list[Match]] = {}
    for m in ordered:
        key = (m.host, m.cve) if m.cve.startswith(_CVE_PREFIX) else (m.host, id(m))
        groups.setdefault(key, []).append(m)
    out = []
    for m in ordered:
        key = (m.host, m.cve) if m.cve.startswith(_CVE_PREFIX) else (m.host, id(m))
        group = groups[key]
        if group[0] is not m and _providers(group, by_id) > 1:
            continue  # shown with the first of its group
        if _providers(group, by_id) > 1:
            out.append(_merged(group, by_id))
        else:
            out.append(replace(m, sources=(_source(m, by_id),)))
    return out


def _providers(group: list[Match], by_id: dict) -> int:
    return len({_publisher(by_id.get(m.advisory)) for m in group})


def _publisher(adv: Any) -> str:
    return (getattr(adv, "publisher_namespace", "") or getattr(adv, "publisher", "")
            or getattr(adv, "file", "")).lower()


def _source(m: Match, by_id: dict) -> Source:
    adv = by_id.get(m.advisory)
    return source_of(m, getattr(adv, "publisher", ""), getattr(adv, "publisher_namespace", ""),
                     getattr(adv, "signature", None))


def _merged(group: list[Match], by_id: dict) -> Match:
    sources = tuple(_source(m, by_id) for m in group)
    return replace(group[0], sources=sources, disagreements=tuple(disagreements(sources)))


def disagreements(sources: tuple[Source, ...]) -> list[str]:
    """Where the providers' advisories differ: the base score, the vector, the fixed
    version; each said once, naming who says what."""
    out = []
    for label, value in (("base score", lambda s: s.base), ("vector", lambda s: s.vector),
                         ("fixed version", lambda s: s.fixed_version)):
        said = {s.advisory: value(s) for s in sources}
        if len({v for v in said.values()}) > 1:
            out.append(f"{label}: " + ", ".join(
                f"{adv} says {v if v not in (None, '') else 'none'}"
                for adv, v in said.items()))
    return out
