"""What `otpatch advisories match` prints: one JSON document, or a table most urgent first."""
from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from otpatch.modules.advisories.load import Loaded
from otpatch.modules.advisories.model import Match, NearMiss

COLUMNS = ("#", "DUE", "DEADLINE", "EFF/BASE", "HOST", "FIRMWARE", "ADVISORY", "CVE",
           "CONFIDENCE")
WIDTH = 120  # the table and the lines under each row fit a 120-column terminal
SHRINKABLE = (4, 5)  # HOST and FIRMWARE give way (cut with "~") when a row is too wide
TEXT_CUT = 240  # remediation text shown in the table; the JSON has all of it


@dataclass(frozen=True)
class Run:
    """Everything one match run produced, for the report."""

    inventory: str
    loaded: Loaded
    matches: tuple[Match, ...]
    due_basis: str
    controls_file: str | None = None
    playbooks_folder: str | None = None
    playbooks: tuple[str, ...] = ()
    playbook_problems: tuple[str, ...] = ()
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    near_misses: tuple[NearMiss, ...] | None = None  # None: not asked for (--near-misses)


def match_dict(m: Match, now: datetime) -> dict[str, Any]:
    f, u = m.finding, m.urgency
    return {
        "host": m.host, "asset": {"host": m.host, **{k: v or None for k, v in m.identity.items()}},
        "firmware": m.firmware, "firmware_source": m.firmware_source or "typed",
        "advisory": m.advisory,
        "title": m.advisory_title, "file": m.file, "cve": m.cve,
        "product_id": f.product.product_id, "product": f.product.name,
        "affected_versions": f.product.affected.text, "confidence": f.confidence,
        "identification": f.identification, "version_certainty": f.certainty,
        "reason": m.reason, "flags": list(f.flags), "fixed_version": f.fixed_version or None,
        "fixed_source": f.fixed_source or None, "fix_from_prose_only": f.fixed_source == "prose",
        "remediation": {"category": f.remediation, "text": f.remediation_text or None,
                        "url": f.remediation_url or None,
                        "categories": list(f.remediation_categories)},
        "cvss": {"version": u.cvss_version or None, "vector": u.vector or None,
                 "base": u.base, "effective": u.effective, "severity": u.severity or None,
                 "effective_vector": u.effective_vector or None, "controls": list(u.controls)},
        "due": {"category": u.due_category or None, "deadline": _iso(u.deadline),
                "overdue": bool(u.deadline and u.deadline < now),
                "rule": u.due.rule if u.due else None, "from": m.due_basis,
                "published": _iso(u.published)},
        "playbooks": list(m.playbooks),
        "sources": [s.to_dict() for s in m.sources],
        "disagreements": list(m.disagreements),
    }


def miss_dict(n: NearMiss) -> dict[str, Any]:
    return {"host": n.host, "advisory": n.advisory, "product_id": n.product_id,
            "product": n.product, "reason": n.reason, "flag": n.flag, "cves": list(n.cves)}


def document(run: Run) -> dict[str, Any]:
    """The one JSON document of a run."""
    from otpatch.modules.risk.due import thresholds

    loaded = run.loaded
    return {
        "inventory": run.inventory,
        "advisories": {"files": loaded.files, "loaded": len(loaded.advisories),
                       "skipped": len(loaded.skipped)},
        "due_from": run.due_basis, "thresholds": thresholds(),
        "controls": run.controls_file,
        "playbooks": {"folder": run.playbooks_folder, "loaded": list(run.playbooks),
                      "problems": list(run.playbook_problems)},
        "matches": [match_dict(m, run.now) for m in run.matches],
        "near_misses": None if run.near_misses is None else [
            miss_dict(n) for n in run.near_misses],
        "skipped": [s.to_dict() for s in loaded.skipped],
        "signatures": _signatures(loaded),
        "notes": list(loaded.notes),
        "summary": summary(run),
    }


def _signatures(loaded: Loaded) -> dict[str, Any]:
    """How many advisories' signatures were valid, bad, unsigned...; each checked one."""
    checks = [a.signature for a in loaded.advisories if a.signature is not None]
    return {"counts": dict(Counter(c.status.value for c in checks)),
            "checked": [c.to_dict() for c in checks if c.status.value != "no_pinned_keys"]}


def summary(run: Run) -> dict[str, Any]:
    return {"matches": len(run.matches), "assets": len({m.host for m in run.matches}),
            "advisories": len({m.advisory for m in run.matches}),
            "by_due": dict(Counter(m.due_category or "unscored" for m in run.matches)),
            "by_confidence": dict(Counter(m.confidence for m in run.matches)),
            "skipped_files": len(run.loaded.skipped)}


def text(run: Run, width: int = WIDTH) -> str:
    """The table, most urgent first, each row followed by why, the fix and the playbook;
    then near misses (when asked for), skipped files, notes and the summary."""
    rows = [_row(i, m, run.now) for i, m in enumerate(run.matches, 1)]
    if not rows:
        out = ["no inventory asset is affected by these advisories"]
    else:
        widths = _fit([max(len(r[c]) for r in rows + [COLUMNS]) for c in range(len(COLUMNS))],
                      width)
        out = [_line(COLUMNS, widths)]
        for row, m in zip(rows, run.matches):
            out.append(_line(row, widths))
            out += _under(m, width)
    out += _near_misses(run, width)
    out += _tail(run, width)
    return "\n".join(out)


def _row(i: int, m: Match, now: datetime) -> tuple[str, ...]:
    overdue = " overdue" if m.deadline and m.deadline < now else ""
    return (str(i), m.due_category or "unscored",
            (m.deadline.date().isoformat() + overdue) if m.deadline else "-",
            f"{_num(m.effective)}/{_num(m.urgency.base)}", m.host, m.firmware or "-",
            m.advisory, m.cve, m.finding.confidence)


def _fit(widths: list[int], width: int) -> list[int]:
    """Column widths within `width`: HOST and FIRMWARE shrink (not below 8) if need be."""
    over = sum(widths) + 2 * (len(widths) - 1) - width
    for c in SHRINKABLE:
        if over <= 0:
            break
        cut = min(over, max(0, widths[c] - 8))
        widths[c] -= cut
        over -= cut
    return widths


def _line(row: tuple[str, ...], widths: list[int]) -> str:
    cells = [v if len(v) <= w else v[:w - 1] + "~" for v, w in zip(row, widths)]
    return "  ".join(v.ljust(w) for v, w in zip(cells, widths)).rstrip()


def _under(m: Match, width: int) -> list[str]:
    """The lines under a row: why (with how firmly identified and how sure the version),
    the fix and remediation, the playbook, and the sources when several providers agree."""
    f = m.finding
    fixed = f.fixed_version + (" (prose)" if f.fixed_source == "prose" else "") or "none named"
    said = f.remediation_text
    said = said if len(said) <= TEXT_CUT else said[:TEXT_CUT - 3] + "..."
    lines = [f"why ({f.identification}, version {f.certainty}): {m.reason}",
             f"fix: {fixed}; {f.remediation}" + (f": {said}" if said else "")
             + (f" <{f.remediation_url}>" if f.remediation_url else ""),
             f"playbook: {', '.join(m.playbooks) or 'none applies'}"]
    if len(m.sources) > 1:
        lines.append("sources: " + "; ".join(
            f"{s.publisher or '?'} {s.advisory} (signature "
            f"{'not checked' if s.signature == 'no_pinned_keys' else s.signature})"
            for s in m.sources))
        lines += [f"providers disagree: {d}" for d in m.disagreements]
    return [w for line in lines for w in textwrap.wrap(
        line, width, initial_indent="    ", subsequent_indent="      ")]


def _near_misses(run: Run, width: int) -> list[str]:
    if run.near_misses is None:
        return []
    if not run.near_misses:
        return ["", "near misses: none"]
    out = ["", "near misses (named, judged not to affect the asset):"]
    host = None
    for n in sorted(run.near_misses, key=lambda n: (n.host, n.advisory, n.product_id)):
        if n.host != host:
            host = n.host
            out.append(f"  {host}:")
        cves = f" {', '.join(n.cves)}" if n.cves else ""
        out += textwrap.wrap(f"{n.advisory}{cves} [{n.flag}]: {n.reason}", width,
                             initial_indent="    ", subsequent_indent="      ")
    return out


def _tail(run: Run, width: int = WIDTH) -> list[str]:
    loaded, s = run.loaded, summary(run)
    out = []
    out += [f"skipped: {sk.line()}" for sk in loaded.skipped]
    out += [f"note: {n}" for n in loaded.notes]
    out += [f"note: {p}" for p in run.playbook_problems]
    out.append(f"{s['matches']} match(es) on {s['assets']} asset(s) from {s['advisories']} "
               f"advisory(ies); {loaded.files} file(s) read, {len(loaded.advisories)} loaded, "
               f"{len(loaded.skipped)} skipped; due dates from the advisories' "
               f"{run.due_basis}")
    if loaded.skipped:
        out.append(f"note: {len(loaded.skipped)} file(s) skipped (see above); the others were "
                   "matched and the exit code is 0")
    # A skipped file or a note stays one line (file, path, why: for grep); the rest wraps.
    return [""] + [w for line in out for w in (
        [line] if line.startswith(("skipped: ", "note: ")) else
        textwrap.wrap(line, width, subsequent_indent="    ", break_on_hyphens=False))]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
