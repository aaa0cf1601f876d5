"""One run's state visits as an inline SVG timeline (a Gantt row per visit) on the run clock."""
from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

from otpatch.modules.contract.durations import format_duration

WIDTH = 820  # viewBox units; the SVG scales to its container (A4 print: about 0.85)
ROW, BAR = 18, 12  # row pitch and bar height
TOP, AXIS = 26, 44  # legend band above the rows, axis band below them
RIGHT = 104  # room right of the chart for "1m15s failed"
MIN_BAR, MIN_SKIP, GAP = 3.0, 10.0, 12.0  # px: shortest bar, skipped box, axis break
LONG_SHARE = 0.4  # a visit longer than this share of the run is a break candidate
SHOWN_SHARE = 0.6  # a cut visit keeps this share of the rest of the run's length
CHAR_W = 6.9  # px: the width of an average character of the 12 px labels
TICK_PX = 80  # at least this far between tick labels
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
              43200, 86400, 172800, 432000)
COLOURS = {"done": "#37474f", "rollback": "#c62828", "skipped": "#9e9e9e", "failed": "#c62828"}


@dataclass(frozen=True)
class Cut:
    """The hidden middle [start, end) of a long visit, drawn as a GAP wide break."""

    start: float
    end: float


class TimeAxis:
    """Run-clock seconds -> x, linear at one scale with the cuts left out."""

    def __init__(self, total: float, cuts: list[Cut], x0: float, width: float):
        self.total, self.cuts, self.x0 = total, sorted(cuts, key=lambda c: c.start), x0
        shown = total - sum(c.end - c.start for c in cuts)
        self.scale = (width - GAP * len(cuts)) / shown if shown > 0 else 0.0

    def x(self, t: float) -> float:
        """Where run-clock time `t` is drawn; a time inside a cut is drawn at its gap."""
        x, before = self.x0, 0.0
        for cut in self.cuts:
            if t < cut.start:
                break
            x += (cut.start - before) * self.scale
            if t < cut.end:
                return x + GAP / 2
            x, before = x + GAP, cut.end
        return x + (t - before) * self.scale

    def gap_x(self, cut: Cut) -> float:
        """The left edge of a cut's gap."""
        return self.x(cut.start - 1e-9) if cut.start > 0 else self.x0

    def ticks(self) -> list[tuple[float, str]]:
        """(x, label) of round run-clock times, TICK_PX apart, none on a gap."""
        step = next((s for s in NICE_STEPS if s * self.scale >= TICK_PX), NICE_STEPS[-1])
        visible = [(0.0, self.total)]
        for cut in self.cuts:
            start, end = visible.pop()
            visible += [(start, cut.start), (cut.end, end)]
        ticks: list[tuple[float, str]] = []
        for start, end in visible:
            t = -(-start // step) * step
            while t <= end + 1e-9:
                x, label = self.x(t), format_duration(t)
                if not self._near_gap(x) and (not ticks or _apart(ticks[-1], (x, label))):
                    ticks.append((x, label))
                t += step
        return ticks

    def _near_gap(self, x: float) -> bool:
        return any(abs(x - (self.gap_x(c) + GAP / 2)) < TICK_PX * 0.4 for c in self.cuts)


def _apart(left: tuple[float, str], right: tuple[float, str]) -> bool:
    """Two centred tick labels do not touch."""
    return right[0] - left[0] >= (len(left[1]) + len(right[1])) / 2 * CHAR_W + 10


def cuts_for(visits: list[dict[str, Any]], total: float) -> list[Cut]:
    """The long visits to cut: each longer than LONG_SHARE of the run keeps SHOWN_SHARE of
    the rest's length, half at each end, if that shortens it by a quarter at least."""
    long = [v for v in visits if not v["skipped"] and _span(v, total) > LONG_SHARE * total]
    rest = total - sum(_span(v, total) for v in long)
    cuts = []
    for v in long:
        shown = SHOWN_SHARE * rest
        if rest > 0 and _span(v, total) > 1.25 * shown:
            start = v["entered_at"]
            cuts.append(Cut(start + shown / 2, start + _span(v, total) - shown / 2))
    return cuts


def _span(visit: dict[str, Any], total: float) -> float:
    """Seconds the visit took; one still open at the end lasts to the run's end."""
    end = visit["left_at"] if visit["left_at"] is not None else total
    return max(0.0, end - visit["entered_at"])


def run_total(run: dict[str, Any]) -> float:
    """The run clock's extent: its elapsed time, or the last visit's end if later."""
    ends = [v["left_at"] if v["left_at"] is not None else v["entered_at"] for v in run["states"]]
    return max([float(run.get("elapsed") or 0.0)] + ends)


def visit_kind(visit: dict[str, Any]) -> str:
    """skipped, rollback or done: what colour the bar is."""
    if visit["skipped"]:
        return "skipped"
    return "rollback" if visit["rollback"] else "done"


def visit_failed(visit: dict[str, Any]) -> bool:
    """One of the visit's steps failed, or it was left by failing (a refused gate too)."""
    return visit["left_by"] in ("fail", "roll_back") or any(
        s["status"] == "failed" for s in visit["steps"])


def timeline_svg(run: dict[str, Any]) -> str:
    """The inline SVG of `run`'s state visits (no xmlns: HTML5 needs none; well-formed XML),
    the same bytes for the same run.

    Scaling: time runs linearly left to right, except that a visit taking most of the run
    (the M580's 4-hour soak beside minutes of everything else) is cut: a broken axis, the
    middle of that visit left out, both sides at the same scale, a zigzag gap on the bar and
    on the axis, tick labels still true run-clock times, and the axis label naming the cut
    state. Every bar is at least MIN_BAR wide (a 0 s gate or the terminal state still shows);
    a skipped visit is a grey hatched box MIN_SKIP wide; rollback visits are red, a failed
    visit is outlined red and labelled "failed"."""
    visits = run["states"]
    total = run_total(run)
    cuts = cuts_for(visits, total)
    label_w = min(260.0, max(120.0, 16 + CHAR_W * max([len(_label(v)) for v in visits] or [0])))
    axis = TimeAxis(total, cuts, label_w + 8, WIDTH - label_w - 8 - RIGHT)
    height = TOP + ROW * len(visits) + AXIS
    uid = re.sub(r"[^A-Za-z0-9-]", "-", str(run["run_id"]))
    clock = "simulated time" if run["clock"] == "simulated" else "wall time"
    about = f"state visits of run {run['run_id']} on the run clock ({clock})"
    parts = [f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
             f'height="{height}" role="img" font-family="sans-serif" font-size="12" '
             f'aria-label="{_e(about)}">', f'<title>{_e(about)}</title>',
             _defs(uid), *_legend(label_w, uid), *_grid(axis, height),
             *_axis(axis, height, clock, _cut_states(visits, cuts, total))]
    for row, v in enumerate(visits):
        parts += _row(v, row, axis, total, label_w, uid)
    parts.append("</svg>")
    return "\n".join(parts)


def _defs(uid: str) -> str:
    return (f'<defs><pattern id="hatch-{uid}" width="4" height="4" '
            'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
            '<rect width="4" height="4" fill="#eeeeee"/>'
            '<line x1="0" y1="0" x2="0" y2="4" stroke="#9e9e9e" stroke-width="2"/>'
            '</pattern></defs>')


def _legend(label_w: float, uid: str) -> list[str]:
    keys = [("done", COLOURS["done"], "state visit"), ("rollback", COLOURS["rollback"],
            "rollback"), ("skipped", f"url(#hatch-{uid})", "skipped")]
    out, x = [], label_w + 8
    for _, fill, words in keys:
        out.append(f'<rect x="{x:.1f}" y="7" width="14" height="10" fill="{fill}" '
                   f'stroke="#616161" stroke-width="0.5"/>')
        out.append(f'<text x="{x + 18:.1f}" y="16">{words}</text>')
        x += 30 + CHAR_W * len(words)
    out.append(f'<rect x="{x:.1f}" y="7" width="14" height="10" fill="{COLOURS["done"]}" '
               f'stroke="{COLOURS["failed"]}" stroke-width="2"/>')
    out.append(f'<text x="{x + 18:.1f}" y="16">failed (outlined red)</text>')
    return out


def _grid(axis: TimeAxis, height: int) -> list[str]:
    bottom = height - AXIS
    return [f'<line x1="{x:.1f}" y1="{TOP - 2}" x2="{x:.1f}" y2="{bottom}" stroke="#e0e0e0" '
            'stroke-width="1"/>' for x, _ in axis.ticks()]


def _cut_states(visits: list[dict[str, Any]], cuts: list[Cut], total: float) -> list[str]:
    """The states whose visits the axis is broken in."""
    return sorted({v["state"] for v in visits for c in cuts
                   if v["entered_at"] <= c.start and c.end <= v["entered_at"] + _span(v, total)})


def _axis(axis: TimeAxis, height: int, clock: str, cut_states: list[str]) -> list[str]:
    y = height - AXIS + 4
    end = axis.x(axis.total)
    out = [f'<line x1="{axis.x0:.1f}" y1="{y}" x2="{end:.1f}" y2="{y}" stroke="#212121"/>']
    for x, label in axis.ticks():
        out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#212121"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 15}" text-anchor="middle">{_e(label)}</text>')
    for cut in axis.cuts:
        out.append(_zigzag(axis.gap_x(cut), y - 5, 10))
    broken = (f'<tspan font-weight="normal">; axis broken in {_e(", ".join(cut_states))} '
              '(drawn shortened)</tspan>' if cut_states else "")
    out.append(f'<text x="{axis.x0:.1f}" y="{y + 32}" font-weight="bold">run clock, '
               f'{_e(clock)}{broken}</text>')
    return out


def _zigzag(x: float, y: float, h: float) -> str:
    """A white gap GAP wide with two slanted edges: the axis or a bar is cut here."""
    return (f'<g class="break"><rect x="{x:.1f}" y="{y:.1f}" width="{GAP:.1f}" height="{h:.1f}" '
            f'fill="#ffffff"/><line x1="{x:.1f}" y1="{y + h:.1f}" x2="{x + 4:.1f}" y2="{y:.1f}" '
            f'stroke="#212121"/><line x1="{x + GAP - 4:.1f}" y1="{y + h:.1f}" '
            f'x2="{x + GAP:.1f}" y2="{y:.1f}" stroke="#212121"/></g>')


def _row(v: dict[str, Any], row: int, axis: TimeAxis, total: float, label_w: float,
         uid: str) -> list[str]:
    y = TOP + row * ROW
    kind, failed = visit_kind(v), visit_failed(v)
    x0 = axis.x(v["entered_at"])
    x1 = axis.x(v["entered_at"] + _span(v, total))
    width = max(x1 - x0, MIN_SKIP if kind == "skipped" else MIN_BAR)
    fill = f"url(#hatch-{uid})" if kind == "skipped" else COLOURS[kind]
    stroke = (f' stroke="{COLOURS["failed"]}" stroke-width="2"' if failed else
              ' stroke="#757575" stroke-width="0.5"' if kind == "skipped" else "")
    grey = ' fill="#757575"' if kind == "skipped" else ""
    out = [f'<text x="{label_w:.1f}" y="{y + BAR - 2}" text-anchor="end"{grey}>'
           f'{_e(_fitted(_label(v), label_w))}</text>',
           f'<rect class="bar {kind}{" failed" if failed else ""}" x="{x0:.1f}" y="{y}" '
           f'width="{width:.1f}" height="{BAR}" fill="{fill}"{stroke}>'
           f'<title>{_e(_tooltip(v, total))}</title></rect>']
    out += [_zigzag(axis.gap_x(c), y - 1, BAR + 2) for c in axis.cuts
            if v["entered_at"] <= c.start and c.end <= v["entered_at"] + _span(v, total)]
    out.append(_note(v, kind, failed, x0 + width + 4, y))
    return out


def _note(v: dict[str, Any], kind: str, failed: bool, x: float, y: int) -> str:
    """The duration right of the bar, and what happened there."""
    if kind == "skipped":
        return f'<text x="{x:.1f}" y="{y + BAR - 2}" fill="#757575">skipped</text>'
    words = "end" if v["left_at"] is None and v.get("terminal") else (
        "still here" if v["left_at"] is None else format_duration(v["duration"] or 0.0))
    mark = ('<tspan fill="#c62828" font-weight="bold"> failed</tspan>' if failed else "")
    return f'<text x="{x:.1f}" y="{y + BAR - 2}">{_e(words)}{mark}</text>'


def _fitted(label: str, width: float) -> str:
    """The label, cut with an ellipsis to fit the label column (the bar's title has it all)."""
    room = int((width - 12) / CHAR_W)
    return label if len(label) <= room else label[:room - 1] + "\u2026"


def _label(v: dict[str, Any]) -> str:
    return f"{v['state']} ({v['visit']})" if v["visit"] > 1 else str(v["state"])


def _tooltip(v: dict[str, Any], total: float) -> str:
    end = v["left_at"] if v["left_at"] is not None else total
    text = (f"{v['state']}: {format_duration(v['entered_at'])} to {format_duration(end)}"
            f" on the run clock, left by {v['left_by'] or 'nothing (the run ended here)'}")
    return text + (f"; {v['reason']}" if v["reason"] else "")


def _e(text: str) -> str:
    return escape(str(text), quote=True)
