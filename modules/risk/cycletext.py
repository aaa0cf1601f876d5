"""The cycle report (cycle.py CycleReport) as text for people and as one JSON
document for tools; both say the same things."""
from __future__ import annotations

from typing import Any

from otpatch.modules.risk.decisions import Judgement, Status


def text(r: Any) -> str:
    w = r.window
    last = (w.end.date().fromordinal(w.end.date().toordinal() - 1)).isoformat()
    out = [f"patch evaluation cycle {w.start.date().isoformat()} to {last} ({w.days} days); "
           f"decisions judged at {w.now.isoformat()}",
           f"inventory   {r.inventory}",
           f"register    {r.register} ({len(r.judgements)} entries)",
           f"sources     {r.sources_file} ({len(r.sources)} sources)",
           f"advisories  {r.files} files read, {len(r.skipped)} skipped",
           f"controls    {r.controls_file or 'none given'}; claims checked against "
           + (", ".join(r.profiles) if r.profiles else "no firewall profile (give --profile, or name the mGuards that "
                 "enforce a control: enforced_by)")]
    for s in r.sources:
        out += [""] + _source(s, r)
    if r.elsewhere:
        out += ["", "decisions on advisories of no source above:"]
        out += [line for j in r.elsewhere for line in _judged(j, "  ", with_advisory=True)]
    if r.uncovered:
        out += ["", f"assets no source covers: {', '.join(r.uncovered)}"]
    out += ["", _result(r)]
    return "\n".join(out)


def _source(s: Any, r: Any) -> list[str]:
    src = s.source
    vendors = f", vendors {', '.join(src.vendors)}" if src.vendors else ", every vendor"
    out = [f"source {src.id}: {src.name}",
           f"  publisher {src.publisher}{vendors}; covers {len(s.covers)} assets: "
           f"{', '.join(s.covers) or 'none'}"]
    if s.not_evaluated:
        return out + ["  NOT EVALUATED: no document of this source among the advisories given"]
    newest = s.newest
    out.append(f"  {s.documents} documents of this source among the advisories given, newest "
               f"{newest.id} of {newest.current_release.date().isoformat()}")
    if not s.evaluated:
        out.append("  evaluated: nothing released or revised in the cycle")
    else:
        out.append(f"  evaluated: {len(s.evaluated)} advisories released or revised in the "
                   "cycle")
    for e in s.evaluated:
        out += _evaluated(e, len(s.covers))
    attention = len(s.carried) + len(s.undecided_earlier)
    out.append(f"  earlier advisories: {s.standing} decisions stand, {attention} need "
               "attention" + (":" if attention else ""))
    out += [line for j in s.carried for line in _judged(j, "    ", with_advisory=True)]
    out += [f"    {a} on {h}: UNDECIDED ({', '.join(c)})" for a, h, c in s.undecided_earlier]
    out.append("  summary: " + _summary(s))
    return out


def _evaluated(e: Any, covered: int) -> list[str]:
    adv = e.advisory
    out = [f"    {adv.id} revision {e.tracking.version}, {e.why}: {adv.title}"]
    if not e.assets:
        return out + [f"      applies to none of the {covered} assets covered"]
    cves = sorted({c for a in e.assets for c in a.cves})
    out.append(f"      applies to {len(e.assets)} assets ({', '.join(cves)})")
    for a in e.assets:
        sure = f" [{a.confidence} confidence]" if a.confidence != "high" else ""
        if a.undecided:
            out.append(f"        {a.host:<16}{'-':<10}UNDECIDED{sure}")
        for j in a.judgements:
            out += _judged(j, "        ", sure=sure)
    return out


def _judged(j: Judgement, indent: str, with_advisory: bool = False, sure: str = ""
            ) -> list[str]:
    e = j.entry
    what = f"{e.asset} {e.advisory or ', '.join(e.cves)}" if with_advisory else e.asset
    status = j.status.value if j.status in (Status.DECIDED, Status.CLOSED) \
        else j.status.value.upper()
    width = 32 if with_advisory else 16
    out = [f"{indent}{what:<{width}}{e.decision.value:<10}{status:<11}entry {j.number}, "
           f"{_terms(j)}{sure}"]
    out += [f"{indent}  - {r.text}" for r in j.reasons]
    out += [f"{indent}  note: {n}" for n in j.notes]
    return out


def _terms(j: Judgement) -> str:
    e = j.entry
    parts = [f"owner {e.owner}"]
    if e.accepted:
        parts.append(f"accepted by {e.accepted.by} ({e.accepted.role}) "
                     f"{e.accepted.at.date().isoformat()}")
    if e.review_by:
        parts.append(f"review by {e.review_by.date().isoformat()}")
    if e.plan:
        done = sum(s.done is not None for s in e.plan)
        parts.append(f"plan {done}/{len(e.plan)} steps done, last due "
                     f"{max(s.by for s in e.plan).date().isoformat()}")
    if e.due.deadline:
        parts.append(f"due {e.due.deadline.date().isoformat()}")
    return ", ".join(parts)


def _summary(s: Any) -> str:
    verdicts = [a for e in s.evaluated for a in e.assets]
    judged = [j for a in verdicts for j in a.judgements] + list(s.carried)
    count = {st: sum(j.status is st for j in judged) for st in Status}
    return (f"{len(s.evaluated)} evaluated, {sum(bool(e.assets) for e in s.evaluated)} apply "
            f"({len(verdicts)} asset verdicts), "
            f"{sum(not a.undecided for a in verdicts)} decided, "
            f"{sum(a.undecided for a in verdicts) + len(s.undecided_earlier)} undecided, "
            f"{count[Status.OPEN]} not accepted, {count[Status.REOPENED]} re-opened, "
            f"{count[Status.OVERDUE]} overdue")


def _result(r: Any) -> str:
    c = r.counts()
    parts = [f"{c['undecided']} undecided", f"{c['open']} not accepted",
             f"{c['re-opened']} re-opened", f"{c['overdue']} overdue"]
    if c["not_evaluated_sources"]:
        parts.append(f"{c['not_evaluated_sources']} sources not evaluated")
    if c["uncovered_assets"]:
        parts.append(f"{c['uncovered_assets']} assets no source covers")
    verdict = "complete, nothing outstanding (exit 0)" if r.clean else \
        "needs attention (exit 1)"
    return f"result: {'; '.join(parts)}: {verdict}"


def document(r: Any) -> dict[str, Any]:
    w = r.window
    return {"cycle": {"start": w.start.isoformat(), "end": w.end.isoformat(),
                      "days": w.days, "judged_at": w.now.isoformat()},
            "inventory": r.inventory, "register": r.register, "sources_file": r.sources_file,
            "controls": r.controls_file, "profiles": list(r.profiles),
            "advisories": {"files": r.files, "skipped": [s.to_dict() for s in r.skipped]},
            "sources": [_source_doc(s) for s in r.sources],
            "decisions": [j.to_dict() for j in r.judgements],
            "elsewhere": [j.number for j in r.elsewhere], "uncovered": list(r.uncovered),
            "counts": r.counts(), "clean": r.clean}


def _source_doc(s: Any) -> dict[str, Any]:
    src = s.source
    return {"id": src.id, "name": src.name, "publisher": src.publisher,
            "vendors": list(src.vendors), "covers": list(s.covers),
            "documents": s.documents, "evaluated_ok": not s.not_evaluated,
            "newest": None if s.newest is None else {
                "advisory": s.newest.id, "current_release": s.newest.current_release.isoformat()},
            "evaluated": [{"advisory": e.advisory.id, "title": e.advisory.title,
                           "revision": e.tracking.version, "why": e.why, "file": e.advisory.file,
                           "assets": [{"host": a.host, "cves": list(a.cves),
                                       "confidence": a.confidence, "undecided": a.undecided,
                                       "entries": [j.number for j in a.judgements]}
                                      for a in e.assets]} for e in s.evaluated],
            "carried": [j.number for j in s.carried],
            "undecided_earlier": [{"advisory": a, "host": h, "cves": list(c)}
                                  for a, h, c in s.undecided_earlier],
            "standing": s.standing}
