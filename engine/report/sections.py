"""What the change-control record says, in order, as blocks (blocks.py): the title, the
outcome per device, then each run's summary, risk, firmware, states and steps, gates,
approvals, attestations, deviations, budgets and journal. Markdown and HTML render it."""
from __future__ import annotations

import re
from typing import Any

from otpatch.engine.report import sections_record as record
from otpatch.engine.report.blocks import (CLOCK_WORDS, LEFT_BY_WORDS, OUTCOME_WORDS,
                                          STEP_WORDS, Code, Heading, Para, Stamp, Strong,
                                          Table, Timeline, codes, fields, value, words, yes)
from otpatch.modules.contract.durations import format_duration

_HASH = re.compile(r"^(sha256:|md5:)?[0-9a-f]{32,}$")


# -- what the report says -------------------------------------------------------------------

def sections(doc: dict[str, Any]) -> list[Any]:
    """The report as blocks: title, the outcome per device, then each run's sections."""
    runs = doc["runs"]
    blocks = _title(doc) + _devices(doc["devices"], 2, "Outcome per device")
    for run in runs:
        blocks += _run(run, several=len(runs) > 1)
    return blocks


def _title(doc: dict[str, Any]) -> list[Any]:
    change, runs = doc["change"], doc["runs"]
    if change:
        status = change["status"]
        blocks = [Heading(f"Change {change['id']}: {words(status)}", 1, f"status-{status}"),
                  Table(("Run", "Playbook", "Stage", "Mode", "Status", "Record"),
                        tuple(_change_row(r) for r in runs))]
        if change.get("missing"):
            blocks.append(Para((Strong("Evidence named that no journal here holds: "),
                                *codes(change["missing"]))))
        return blocks
    if len(runs) > 1:  # runs of no one change: each stands on its own
        return [Heading(f"Record of {len(runs)} runs", 1, "status-several"),
                Table(("Run", "Playbook", "Stage", "Mode", "Status", "Record"),
                      tuple(_change_row(r) for r in runs))]
    run = runs[0]
    return [Heading(f"Run {run['run_id']}: {words(run['status'])}", 1,
                    f"status-{run['status']}"),
            Para(f"{run['playbook']['name']} {run['playbook']['version']}, "
                 f"{words(run['mode'])}, {run['clock']} time"
                 + (f": {run['message']}" if run["message"] else ""))]


def _change_row(run: dict[str, Any]) -> tuple[Any, ...]:
    pb = run["playbook"]
    return (Code(run["run_id"]), f"{pb['name']} {pb['version']}", run["stage"] or "all",
            words(run["mode"]), Strong(words(run["status"])),
            Code(run["journal"]["record"] or "none yet"))


def _devices(devices: list[dict[str, Any]], level: int, title: str,
             detail: bool = True) -> list[Any]:
    """The outcome table (left out for a single device, whose own section says it all),
    then, with `detail`, a section per device that was read: as found and as left."""
    head = Heading(title, level, "devices")
    if not devices:
        return [head, Para("No device is named by this report.")]
    read = [d for d in devices if detail and (d["as_found"] or d["as_left"])]
    blocks: list[Any] = [head]
    runs = len({d["run_id"] for d in devices}) > 1  # several runs: say which
    if len(devices) > 1 or not read:
        blocks.append(Table(("Device", *(("Run",) if runs else ()), "Outcome", "Statement",
                             "Changed", "Verified"),
                            tuple((Code(d["host"]), *((Code(d["run_id"]),) if runs else ()),
                                   Strong(OUTCOME_WORDS[d["outcome"]]), d["statement"],
                                   yes(d["changed"]), yes(d["verified"]))
                                  for d in devices),
                            tuple(d["outcome"] for d in devices), "outcomes"))
    for d in read:
        blocks += _device(d, level + 1)
    return blocks


def _device(d: dict[str, Any], level: int) -> list[Any]:
    ident = d["identity"]
    who = ", ".join(x for x in (ident["vendor"], ident["model"]) if x) or "identity not read"
    about = (f"{who}; part number {ident['part_number'] or 'not read'}, serial "
             f"{ident['serial'] or 'not read'}{' (a simulator)' if d['simulator'] else ''}; "
             f"stage {d['stage'] or 'none'}; run {d['run_id']}; targets "
             f"{', '.join(d['targets']) or 'none'}; changed {yes(d['changed'])}, verified "
             f"{yes(d['verified'])}")
    found, left = d["as_found"], d["as_left"]
    rows = tuple((Code(k), *_observed(found.get(k)), *_observed(left.get(k)))
                 for k in sorted(set(found) | set(left)))
    return [Heading((Code(d["host"]), f": {OUTCOME_WORDS[d['outcome']]}"), level,
                    f"device outcome-{d['outcome']}"),
            Para(Strong(d["statement"]), "statement"), Para(about),
            Table(("Value", "As found", "Read in", "As left", "Read in"), rows, (), "facts")]


def _observed(obs: dict[str, Any] | None) -> tuple[Any, Any]:
    if obs is None:
        return "not read", ""
    shown = value(obs["value"])
    return (Code(shown) if _HASH.match(shown) else shown), (Code(obs["state"]), " / ",
                                                             Code(obs["step"]))


def _run(run: dict[str, Any], several: bool) -> list[Any]:
    pb = run["playbook"]
    stage = f", {run['stage']} stage" if run["stage"] else ""
    blocks: list[Any] = [Heading(f"Run {run['run_id']} ({pb['name']} {pb['version']}{stage})",
                                 2, "run"), Timeline(run), _summary(run)]
    if several:
        blocks += _devices(run["devices"], 3, "Devices in this run", detail=False)
    for part in (_risk, _firmware, _firewall, record.post_change, _states, _requirements,
                 record.approvals, record.attestations, record.deviations, record.budgets,
                 record.journal):
        blocks += part(run)
    return blocks


def _summary(run: dict[str, Any]) -> Table:
    pb, inv = run["playbook"], run["inventory"]
    ended = run["ended_at"] or "not ended"
    where = f" in {run['state']}" if run["state"] != run["status"] else ""
    said = f": {run['message']}" if run["message"] not in (run["status"], words(run["status"])) else ""
    rows = [("Status", (Strong(words(run["status"])), where + said)),
            ("Playbook", (f"{pb['name']} {pb['version']} ", Code(pb["hash"]), f"\n{pb['file']}")),
            ("Mode", words(run["mode"])), ("Stage", run["stage"] or "all (not a stage run)"),
            ("Clock", CLOCK_WORDS[run["clock"]]), ("Started", Stamp(run["started_at"])),
            ("Ended", Stamp(ended)), ("Elapsed", f"{format_duration(run['elapsed'])} {run['clock']}"),
            ("Operator", run["operator"] or "none named"),
            ("Written by", "\n".join(run.get("by") or ["not recorded"])),
            ("Inventory", (f"{inv['file'] or 'not recorded'} ", Code(inv["hash"]))),
            ("Site register", _register(inv["register"])),
            ("Evidence runs", codes(run["evidence"]) or "none"),
            ("Params", "\n".join(f"{k} = {value(v)}" for k, v in sorted(run["params"].items()))),
            ("Targets", "\n".join(f"{k}: {', '.join(map(str, v)) or 'none'}"
                                  for k, v in sorted((run.get("targets") or {}).items())) or "-")]
    return Table(("Run", Code(run["run_id"])), tuple(rows), (), "summary")


def _register(register: dict[str, Any] | None) -> Any:
    if not register:
        return "none recorded"
    signed = "signed by " + (", ".join(map(str, register.get("signers") or [])) or "nobody named") \
        if register.get("signed") else "not signed"
    reason = f"\n{register['reason']}" if register.get("reason") else ""
    return (f"{signed} ", Code(str(register.get("hash") or "")), reason)


def _risk(run: dict[str, Any]) -> list[Any]:
    blocks: list[Any] = [Heading("Risk", 3, "risk")]
    if not run["risk"]:
        return blocks + [Para("No risk assessment in this run.")]
    for r in run["risk"]:
        hosts = ", ".join(r.get("hosts") or []) or "all"
        rows = (("Assessed in", (Code(r["state"]), f" for {r['target'] or 'the run'} ({hosts})")),
                ("Advisory", r["advisory"] or "none named"), ("Vector", Code(r["vector"])),
                ("Base score", Strong(f"{r['base']} {r['base_severity']}")),
                ("Effective score", (Strong(f"{r['effective']} {r['severity']}"), " ",
                                     Code(r["effective_vector"]))),
                ("Published", Stamp(r["published"])),
                ("Due", (Strong(f"{r['due_category']} by {r['deadline'] or 'no deadline'}"),
                         f"\n{r['due_rule']}")))
        blocks.append(Table(("Risk", Code(r["state"])), rows, (), "summary"))
        blocks.append(_controls(r["controls"]))
    return blocks


def _controls(controls: list[dict[str, Any]]) -> Any:
    if not controls:
        return Para("No compensating control applied: the effective score is the base score.")
    return Table(("Control", "Description", "Metrics", "Evidence"),
                 tuple((Code(c["id"]), c["description"], value(c["metrics"]),
                        "\n".join(fields(e) for e in c["evidence"]) or "none")
                       for c in controls))


def _firewall(run: dict[str, Any]) -> list[Any]:
    """Each firewall review: rule counts per table, findings by severity, what a change
    lost; then its findings, each where it stands in the profile."""
    reviews = run.get("firewall") or []
    if not reviews:
        return []
    blocks: list[Any] = [Heading("Firewall review", 3, "firewall"), Table(
        ("Review", "State", "Profile", "Rules per table", "Findings", "Compared"),
        tuple((Code(r["label"]), Code(r["state"]), (r["profile"], " ", r["version"] or ""),
               _counts(r["counts"]), _severities(r["by_severity"]), _compared(r))
              for r in reviews), tuple("failed" if r["failed"] else "" for r in reviews))]
    for r in reviews:
        if r["findings"]:
            blocks += [Heading((Code(r["label"]), f": {len(r['findings'])} findings"), 4),
                       Table(("Severity", "Finding", "Where", "What"),
                             tuple((Strong(f.get("severity", "")), Code(f.get("id", "")),
                                    _located(f.get("location") or {}), f.get("message", ""))
                                   for f in r["findings"]))]
    return blocks


def _counts(counts: dict[str, Any]) -> str:
    rest = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "total")
    return f"{counts.get('total', 0)} ({rest})" if rest else str(counts.get("total", 0))


def _severities(by: dict[str, Any]) -> str:
    order = ("critical", "high", "medium", "low", "info")
    return ", ".join(f"{by[k]} {k}" for k in order if by.get(k)) or "none"


def _compared(r: dict[str, Any]) -> Any:
    if r["compared_to"] is None:
        return "-"
    said = f"with {r['compared_to']}: {r['lost']} lost, {r['changed']} changed"
    return Strong(said) if r["lost"] or r["changed"] or r["failed"] else said


def _located(where: dict[str, Any]) -> str:
    line = f", line {where['line']}" if where.get("line") else ""
    table = f"{where['table']} rule {where['position']} " if where.get("table") else ""
    return f"{table}({where.get('path', '')}{line})"


def _firmware(run: dict[str, Any]) -> list[Any]:
    images = run.get("firmware") or []
    if not images:
        return [Heading("Firmware images", 3, "firmware"), Para("No firmware image verified.")]
    return [Heading("Firmware images", 3, "firmware"),
            Table(("Param", "File", "Published hash", "SHA-256 read", "Size"),
                  tuple((Code(f["param"]), f["file"], (f"{f['algorithm']} ", Code(f["published"])),
                         Code(f["sha256"]), "unknown" if f["size"] is None else f"{f['size']} bytes")
                        for f in images))]


def _states(run: dict[str, Any]) -> list[Any]:
    clock = CLOCK_WORDS[run["clock"]]
    blocks: list[Any] = [Heading("States and steps", 3, "states"),
                         Para(f"Times are on the run clock, from the run's start ({clock})."),
                         Table(("State", "Stage", "Entered", "Left", "Took", "Left by", "Note"),
                               tuple(_visit_row(v) for v in run["states"]),
                               tuple(_visit_mark(v) for v in run["states"]), "visits")]
    for v in run["states"]:
        if v["steps"]:
            blocks += _steps(v)
    return blocks


def _visit_row(v: dict[str, Any]) -> tuple[Any, ...]:
    name = (Code(v["state"]), f" ({v['visit']})" if v["visit"] > 1 else "")
    notes = [n for n, on in (("skipped", v["skipped"]), ("rollback", v["rollback"]),
                             ("terminal", v.get("terminal"))) if on]
    if v.get("checkpoint"):
        notes.append(f"checkpoint {v['checkpoint']}")
    if v["reason"]:
        notes.append(v["reason"])
    return (name, v["stage"] or "", format_duration(v["entered_at"]),
            "-" if v["left_at"] is None else format_duration(v["left_at"]),
            "-" if v["duration"] is None else format_duration(v["duration"]),
            LEFT_BY_WORDS.get(v["left_by"], v["left_by"] or "ended here"), "; ".join(notes))


def _visit_mark(v: dict[str, Any]) -> str:
    if v["skipped"]:
        return "skipped"
    failed = v["left_by"] in ("fail", "roll_back") or any(s["status"] == "failed" for s in v["steps"])
    return "failed" if failed else "rollback" if v["rollback"] else ""


def _steps(v: dict[str, Any]) -> list[Any]:
    failed = any(s["status"] == "failed" for s in v["steps"])
    title = (Code(v["state"]), f" visit {v['visit']}", ": failed" if failed else "",
             " (rollback)" if v["rollback"] else "")
    rows = tuple((str(s["index"] + 1), _step_name(s), ", ".join(s["hosts"]) or "-",
                  Strong(STEP_WORDS[s["status"]]) if s["status"] != "ok" else "ok",
                  yes(s["changed"]) + (" (re-verified)" if s["reverified"] else ""), s["msg"],
                  format_duration(s["started_at"]), format_duration(s["duration"]))
                 for s in v["steps"])
    return [Heading(title, 4, "visit"),
            Table(("#", "Step (module)", "Hosts", "Result", "Changed", "Message", "At", "Took"),
                  rows, tuple("failed" if s["status"] == "failed" else "" for s in v["steps"]),
                  "steps")]


def _step_name(s: dict[str, Any]) -> Any:
    """The module alone when the step is not named otherwise, else the name over it."""
    return Code(s["module"]) if s["name"] == s["module"] else (s["name"], "\n", Code(s["module"]))


def _requirements(run: dict[str, Any]) -> list[Any]:
    rows, marks = [], []
    for v in run["states"]:
        for r in v["requirements"]:
            rows.append((Code(v["state"]), r["requirement"], r["kind"],
                         Strong("passed") if r["passed"] else Strong("REFUSED"), r["detail"],
                         format_duration(r["at"]) + (" (simulated)" if r["simulated"] else "")))
            marks.append("" if r["passed"] else "failed")
    head = Heading("Requirements and gates", 3, "requirements")
    if not rows:
        return [head, Para("No requirement or gate was checked.")]
    return [head, Table(("State", "Requirement", "Kind", "Result", "Detail", "At"),
                        tuple(rows), tuple(marks))]
