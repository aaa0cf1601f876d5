"""The patch evaluation cycle (NERC CIP-007 R2.2: at least once every 35 calendar days):
per patch source, the advisories it released or revised in the cycle, which of them apply
to which assets, the register's decision on each (judged now), what is undecided, and what
from earlier cycles is re-opened or overdue; the record an auditor asks for even when
nothing applied.

The pieces are the packages': advisories loaded and matched by modules/advisories (the
baseline's firmware over the typed one, as `advisories match` does), decisions judged by
decisions.py, claims by claims.py, signatures by accept.py. commands.py `evaluate` gathers
(IO); `cycle_report` decides, from typed inputs."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from otpatch.modules.contract.errors import InputError
from otpatch.modules.risk.decisions import AdvisoryNow, Judgement, Revision, Status, judge

ATTENTION = (Status.OPEN, Status.REOPENED, Status.OVERDUE)


@dataclass(frozen=True)
class Window:
    """The cycle: `days` calendar days up to `end` (exclusive); decisions judged at `now`."""

    start: datetime
    end: datetime
    days: int
    now: datetime

    def holds(self, when: datetime) -> bool:
        return self.start <= when < self.end


@dataclass(frozen=True)
class Tracking:
    """A CSAF document's tracking: version and revision history."""

    version: str
    history: tuple[Revision, ...] = ()


@dataclass(frozen=True)
class AssetVerdict:
    """One asset an advisory applies to: the CVEs, and the decisions on it (none: undecided)."""

    host: str
    cves: tuple[str, ...]
    confidence: str
    judgements: tuple[Judgement, ...] = ()

    @property
    def undecided(self) -> bool:
        return not self.judgements


@dataclass(frozen=True)
class Evaluated:
    """One advisory of a source released or revised in the cycle, evaluated."""

    advisory: Any  # advisories.model.Advisory
    tracking: Tracking
    why: str  # "released 2025-02-04" | "revised 2025-02-20 (revision 2)"
    assets: tuple[AssetVerdict, ...]


@dataclass(frozen=True)
class SourceReport:
    source: Any  # patchsources.PatchSource
    covers: tuple[str, ...]  # inventory hosts of its vendors
    documents: int  # of this source among the advisories given
    newest: Any  # the most recently revised of them, or None
    evaluated: tuple[Evaluated, ...]
    carried: tuple[Judgement, ...]  # earlier advisories' decisions needing attention
    undecided_earlier: tuple[tuple[str, str, tuple[str, ...]], ...]  # (advisory, host, cves)
    standing: int  # earlier advisories' decisions that stand (decided or closed)

    @property
    def not_evaluated(self) -> bool:
        return self.documents == 0


@dataclass(frozen=True)
class CycleReport:
    window: Window
    inventory: str
    register: str
    sources_file: str
    sources: tuple[SourceReport, ...]
    judgements: tuple[Judgement, ...]  # every register entry, judged
    elsewhere: tuple[Judgement, ...]  # decisions on advisories of no source given
    uncovered: tuple[str, ...]  # inventory hosts no source covers
    files: int
    skipped: tuple[Any, ...]
    profiles: tuple[str, ...]  # firewall profiles the claims were checked against
    controls_file: str | None = None
    notes: tuple[str, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        ev = [e for s in self.sources for e in s.evaluated]
        verdicts = [a for e in ev for a in e.assets]
        earlier = sum(len(s.undecided_earlier) for s in self.sources)
        status = {st.value: sum(j.status is st for j in self.judgements) for st in Status}
        return {"evaluated": len(ev), "applies": sum(bool(e.assets) for e in ev),
                "affected_assets": len(verdicts),
                "undecided": sum(a.undecided for a in verdicts) + earlier,
                "not_evaluated_sources": sum(s.not_evaluated for s in self.sources),
                "uncovered_assets": len(self.uncovered), **status}

    @property
    def clean(self) -> bool:
        c = self.counts()
        return not any(c[k] for k in ("undecided", "not_evaluated_sources", "uncovered_assets",
                                      "open", "re-opened", "overdue"))


# -- deciding ----------------------------------------------------------------------------------

def cycle_report(window: Window, *, inventory: Any, loaded: Any, matches: Sequence[Any],
                 register: Any, sources: Any, trackings: Mapping[str, Tracking],
                 withdrawn: Mapping[str, str], signatures: Mapping[int, str],
                 firmware: Mapping[str, str], profiles: Sequence[str] = (),
                 files: Mapping[str, str] | None = None, notes: Iterable[str] = ()
                 ) -> CycleReport:
    """The cycle's report from what was gathered (see `evaluate`). `signatures`: entry
    number -> "" or why its acceptance does not verify; `firmware`: host -> the firmware it
    was evaluated at, and from where."""
    from otpatch.modules.advisories.vendors import vendor_keys

    files = files or {}
    advisories = {a.id: a for a in loaded.advisories}
    hit = _hits(matches)
    judged = tuple(_judge(n, e, window.now, advisories.get(e.advisory or ""), trackings,
                          hit, inventory, withdrawn, signatures.get(n, ""), firmware)
                   for n, e in enumerate(register.entries, 1))
    owners = {a.id: [s for s in sources.sources if _owns(s, a, vendor_keys)]
              for a in loaded.advisories}
    reports = tuple(_source_report(s, window, inventory, loaded.advisories, owners, hit,
                                   judged, trackings, vendor_keys) for s in sources.sources)
    elsewhere = tuple(j for j in judged if not owners.get(j.entry.advisory or ""))
    covered = {h for r in reports for h in r.covers}
    uncovered = tuple(h for h, host in inventory.hosts.items()
                      if host.vendor and h not in covered)
    return CycleReport(window, files.get("inventory", ""), files.get("register", ""),
                       sources.file, reports, judged, elsewhere, uncovered, loaded.files,
                       tuple(loaded.skipped), tuple(profiles), files.get("controls"),
                       tuple(notes))


def _hits(matches: Sequence[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(advisory, host) -> {cve: the match} (CVE order kept)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for m in matches:
        out.setdefault((m.advisory, m.host), {}).setdefault(m.cve, m)
    return out


def _judge(number: int, entry: Any, now: datetime, adv: Any, trackings: Mapping[str, Tracking],
           hit: Mapping, inventory: Any, withdrawn: Mapping[str, str], signature: str,
           firmware: Mapping[str, str]) -> Judgement:
    now_says = None
    if adv is not None:
        t = trackings[adv.id]
        cves = tuple(hit.get((adv.id, entry.asset), {})) if entry.asset in inventory.hosts \
            else None
        now_says = AdvisoryNow(adv.id, t.version, t.history, cves,
                               firmware.get(entry.asset, ""))
    return judge(entry, now, number=number, advisory=now_says, withdrawn=withdrawn,
                 signature=signature)


def _owns(source: Any, adv: Any, vendor_keys: Any) -> bool:
    if not source.publishes(adv.publisher_namespace):
        return False
    if not source.vendors:
        return True
    wanted = {k for v in source.vendors for k in vendor_keys(v)}
    return any(wanted & p.vendor_keys for p in adv.products.values())


def _source_report(source: Any, window: Window, inventory: Any, advisories: Sequence[Any],
                   owners: Mapping[str, list], hit: Mapping, judged: Sequence[Judgement],
                   trackings: Mapping[str, Tracking], vendor_keys: Any) -> SourceReport:
    mine = [a for a in advisories if source in owners[a.id]]
    wanted = {k for v in source.vendors for k in vendor_keys(v)}
    covers = tuple(h for h, host in inventory.hosts.items() if host.vendor and (
        not wanted or wanted & vendor_keys(host.vendor)))
    in_cycle = []
    for adv in sorted(mine, key=lambda a: (a.current_release, a.id)):
        why = _in_cycle(adv, trackings[adv.id], window)
        if why:
            in_cycle.append(Evaluated(adv, trackings[adv.id], why,
                                      _verdicts(adv, hit, judged, inventory)))
    cycle_ids = {e.advisory.id for e in in_cycle}
    ids = {a.id for a in mine} - cycle_ids
    earlier = [j for j in judged if j.entry.advisory in ids]
    decided = {(j.entry.advisory, j.entry.asset) for j in judged}
    undecided = tuple((a, h, tuple(cves)) for (a, h), cves in sorted(hit.items())
                      if a in ids and (a, h) not in decided)
    return SourceReport(source, covers, len(mine),
                        max(mine, key=lambda a: a.current_release, default=None),
                        tuple(in_cycle), tuple(j for j in earlier if j.status in ATTENTION),
                        undecided, sum(j.status not in ATTENTION for j in earlier))


def _in_cycle(adv: Any, tracking: Tracking, window: Window) -> str:
    """Why the advisory is in the cycle ("" when it is not): released, or revised in it."""
    if window.holds(adv.initial_release):
        return f"released {adv.initial_release.date().isoformat()}"
    revised = [r for r in tracking.history if window.holds(r.date)]
    if revised:
        last = revised[-1]
        return f"revised {last.date.date().isoformat()} (revision {last.number})"
    if window.holds(adv.current_release):
        return f"revised {adv.current_release.date().isoformat()}"
    return ""


def _verdicts(adv: Any, hit: Mapping, judged: Sequence[Judgement], inventory: Any
              ) -> tuple[AssetVerdict, ...]:
    out = []
    for host in inventory.hosts:
        cves = hit.get((adv.id, host))
        if not cves:
            continue
        confidence = min((m.confidence for m in cves.values()),
                         key=("high", "medium", "low").index, default="")
        mine = tuple(j for j in judged if j.entry.advisory == adv.id and j.entry.asset == host)
        out.append(AssetVerdict(host, tuple(cves), confidence, mine))
    return tuple(out)


# -- gathering ---------------------------------------------------------------------------------

def window_of(days: int, as_of: str | None, today: datetime) -> Window:
    """The cycle of `days` calendar days ending with the day `as_of` (an ISO date, or a date
    and time: then decisions are judged at that instant), default today (UTC)."""
    from otpatch.modules.risk.due import parse_when
    from otpatch.modules.risk.scoring import RiskError

    if days < 1:
        raise InputError(f"risk cycle --days {days}: a cycle of at least one day")
    try:
        when = parse_when(as_of, "--as-of") if as_of else today
    except RiskError as e:
        raise InputError(f"risk cycle: {e}") from None
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    end = day + timedelta(days=1)
    at_instant = not as_of or len(as_of.strip()) > 10  # today, or a date and time given
    now = when if at_instant else end - timedelta(seconds=1)  # a date: its end
    return Window(end - timedelta(days=days), end, days, now)


def tracking_of(file: str) -> Tracking:
    """The tracking version and revision history of a CSAF file (already loaded and
    validated by modules/advisories, which keeps neither)."""
    from otpatch.modules.risk.due import parse_when

    doc = json.loads(Path(file).read_text(encoding="utf-8"))["document"]["tracking"]
    history = tuple(sorted((Revision(str(r["number"]), parse_when(r["date"].replace(
        "Z", "+00:00"), "revision date"), str(r.get("summary", "")))
        for r in doc.get("revision_history") or ()), key=lambda r: r.date))
    return Tracking(str(doc["version"]), history)
