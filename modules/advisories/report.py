"""What `otpatch advisories match` prints: one JSON document, or a table most urgent first."""
from __future__ import annotations

import textwrap
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from otpatch.modules.advisories.load import Loaded
from otpatch.modules.advisories.model import Match

COLUMNS = ("#", "DUE", "DEADLINE", "EFF", "BASE", "HOST", "FIRMWARE", "ADVISORY", "CVE",
           "CONFIDENCE", "FIXED", "REMEDIATION", "PLAYBOOK")


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


def match_dict(m: Match, now: datetime) -> dict[str, Any]:
    f, u = m.finding, m.urgency
    return {
        "host": m.host, "firmware": m.firmware, "advisory": m.advisory,
        "title": m.advisory_title, "file": m.file, "cve": m.cve,
        "product_id": f.product.product_id, "product": f.product.name,
        "affected_versions": f.product.affected.text, "confidence": f.confidence,
        "reason": m.reason, "flags": list(f.flags), "fixed_version": f.fixed_version or None,
        "fixed_source": f.fixed_source or None, "fix_from_prose_only": f.fixed_source == "prose",
        "remediation": f.remediation, "remediation_categories": list(f.remediation_categories),
        "cvss": {"version": u.cvss_version or None, "vector": u.vector or None,
                 "base": u.base, "effective": u.effective, "severity": u.severity or None,
                 "effective_vector": u.effective_vector or None, "controls": list(u.controls)},
        "due": {"category": u.due_category or None, "deadline": _iso(u.deadline),
                "overdue": bool(u.deadline and u.deadline < now),
                "rule": u.due.rule if u.due else None, "from": m.due_basis,
                "published": _iso(u.published)},
        "playbooks": list(m.playbooks),
    }


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
        "skipped": [s.to_dict() for s in loaded.skipped],
        "notes": list(loaded.notes),
        "summary": summary(run),
    }


def summary(run: Run) -> dict[str, Any]:
    return {"matches": len(run.matches), "assets": len({m.host for m in run.matches}),
            "advisories": len({m.advisory for m in run.matches}),
            "by_due": dict(Counter(m.due_category or "unscored" for m in run.matches)),
            "by_confidence": dict(Counter(m.confidence for m in run.matches)),
            "skipped_files": len(run.loaded.skipped)}


def text(run: Run, width: int = 100) -> str:
    """The table, most urgent first, then why each row, skipped files, notes, summary."""
    rows = [_row(i, m, run.now) for i, m in enumerate(run.matches, 1)]
    out = [_table(rows)] if rows else ["no inventory asset is affected by these advisories"]
    if rows:
        out += ["", "why:"]
        out += [textwrap.fill(f"{i}. {m.host} {m.advisory} {m.cve}: {m.reason}", width,
                              initial_indent="  ", subsequent_indent="      ")
                for i, m in enumerate(run.matches, 1)]
    out += _tail(run)
    return "\n".join(out)


def _row(i: int, m: Match, now: datetime) -> tuple[str, ...]:
    overdue = " (overdue)" if m.deadline and m.deadline < now else ""
    f = m.finding
    fixed = f.fixed_version + (" (prose)" if f.fixed_source == "prose" else "") or "-"
    return (str(i), m.due_category or "unscored",
            (m.deadline.date().isoformat() + overdue) if m.deadline else "-",
            _num(m.effective), _num(m.urgency.base), m.host, m.firmware or "-", m.advisory, m.cve,
            f.confidence, fixed or "-", f.remediation, ", ".join(m.playbooks) or "-")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[c]) for r in rows + [COLUMNS]) for c in range(len(COLUMNS))]
    line = (lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return "\n".join([line(COLUMNS)] + [line(r) for r in rows])


def _tail(run: Run) -> list[str]:
    loaded, s = run.loaded, summary(run)
    out = [""]
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
    return out


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
