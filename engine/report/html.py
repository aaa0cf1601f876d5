"""The change-control record as one self-contained, printable HTML5 file: the sections of
markdown.py, an inline stylesheet (A4 print rules) and an inline SVG timeline per run; no
script, font, image or link is fetched, and every text is escaped."""
from __future__ import annotations

import re
from html import escape
from typing import Any

from otpatch.engine.report.blocks import (Code, Heading, Para, Stamp, Strong, Table,
                                          Timeline)
from otpatch.engine.report.sections import sections
from otpatch.engine.report.timeline import timeline_svg

STYLE = """\
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
html { background: #fff; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 28px 40px; color: #111; background: #fff;
  font: 13px/1.45 "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
code { font: 0.92em/1.3 "DejaVu Sans Mono", "Liberation Mono", Consolas, monospace;
  white-space: nowrap; background: #f3f3f3; padding: 0 2px; border-radius: 2px; }
code.long { white-space: normal; overflow-wrap: anywhere; }
h1 { font-size: 22px; margin: 4px 0 6px; padding: 6px 10px; border-left: 8px solid #555; }
h2 { font-size: 18px; margin: 26px 0 8px; padding-bottom: 3px; border-bottom: 2px solid #222; }
h3 { font-size: 15px; margin: 20px 0 6px; }
h4 { font-size: 13px; margin: 14px 0 4px; }
p { margin: 4px 0 8px; }
.kicker { margin: 0; color: #444; font-size: 11px; letter-spacing: 0.06em; text-transform: uppercase; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 12px; font-size: 12px; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top;
  overflow-wrap: break-word; }
thead th { background: #e8e8e8; }
table.summary td:first-child { width: 11em; font-weight: bold; background: #f6f6f6; }
.stamp { white-space: nowrap; }
table.steps td:nth-child(6) { width: 40%; }
tr.failed td, tr.failure td, tr.gate_refused td, tr.budget_over td, tr.halted td
  { background: #fdecea; }
tr.failed strong, tr.failure strong { color: #b71c1c; }
tr.rollback td { background: #fff1ee; }
tr.skipped td { color: #757575; background: #fafafa; }
tr.waiver td, tr.emergency td, tr.read_back td { background: #fff8e1; }
.status-completed > h1 { border-color: #2e7d32; }
.status-rolled_back > h1, .status-aborted > h1, .status-halted > h1 { border-color: #c62828; }
.status-running > h1, .status-awaiting > h1, .status-interrupted > h1 { border-color: #f9a825; }
table.outcomes td:nth-child(3) { font-weight: bold; }
table.outcomes tr td:first-child { border-left: 6px solid #9e9e9e; }
tr.changed_and_verified td:first-child, .outcome-changed_and_verified { border-color: #2e7d32 !important; }
tr.restored_and_verified td:first-child, .outcome-restored_and_verified { border-color: #1565c0 !important; }
tr.left_changed td:first-child, .outcome-left_changed { border-color: #ef6c00 !important; }
tr.unknown td:first-child, .outcome-unknown { border-color: #c62828 !important; }
section.device { border: 1px solid #9e9e9e; border-left-width: 6px; padding: 2px 12px 4px;
  margin: 12px 0; }
p.statement { font-size: 15px; }
figure.timeline { margin: 8px 0 14px; }
svg.timeline { display: block; width: 100%; max-width: 920px; height: auto; }
@media print {
  body { max-width: none; padding: 0; font-size: 9pt; }
  h2 { break-before: auto; }
  h1, h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
  tr, figure, section.device, section.journal, section.budgets, section.signed, section.risk
    { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  code { background: none; }
}
"""
LONG_CODE = 28  # characters: longer code (hashes, keys, vectors) may break anywhere
_NEWLINE = re.compile(r"\r\n|\r|\n")


def html(doc: dict[str, Any]) -> str:
    """`doc` (schemas/report.schema.json) as one HTML5 file; the same document, the same
    bytes."""
    blocks = sections(doc)
    title = plain(blocks[0].text) if blocks and isinstance(blocks[0], Heading) else "report"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{esc(title)}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n"
            "<p class=\"kicker\">otpatch change-control record (IEC 62443-2-3)</p>\n"
            f"{_body(blocks)}</body>\n</html>\n")


def _body(blocks: list[Any]) -> str:
    """Each heading opens a section that runs to the next heading of its level or above."""
    out: list[str] = []
    levels: list[int] = []
    for block in blocks:
        if isinstance(block, Heading):
            while levels and levels[-1] >= block.level:
                out.append("</section>")
                levels.pop()
            levels.append(block.level)
            out.append(f"<section{_class(block.mark)}>\n<h{block.level}>"
                       f"{inline(block.text)}</h{block.level}>")
        else:
            out.append(_block(block))
    out += ["</section>"] * len(levels)
    return "\n".join(out) + "\n"


def _block(block: Any) -> str:
    if isinstance(block, Para):
        return f"<p{_class(block.mark)}>{inline(block.cell)}</p>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Timeline):
        return f'<figure class="timeline">\n{timeline_svg(block.run)}\n</figure>'
    raise TypeError(f"no HTML for a {type(block).__name__}")


def _table(table: Table) -> str:
    head = "".join(f"<th>{inline(h)}</th>" for h in table.headers)
    marks = table.marks or ("",) * len(table.rows)
    rows = "\n".join(f"<tr{_class(mark)}>" + "".join(f"<td>{inline(c)}</td>" for c in row)
                     + "</tr>" for row, mark in zip(table.rows, marks))
    return (f"<table{_class(table.mark)}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n"
            "</tbody>\n</table>")


def inline(cell: Any) -> str:
    """A cell or paragraph as HTML: code, bold, escaped text; newlines as <br>."""
    if isinstance(cell, tuple):
        return "".join(inline(part) for part in cell)
    if isinstance(cell, Code):  # a hash or key may wrap anywhere; a name stays whole
        kind = ' class="long"' if len(cell) > LONG_CODE else ""
        return f"<code{kind}>{esc(cell)}</code>" if cell else ""
    if isinstance(cell, Stamp):
        return f'<span class="stamp">{esc(cell)}</span>'
    if isinstance(cell, Strong):
        return f"<strong>{esc(cell)}</strong>" if cell.strip() else ""
    return esc(str(cell))


def esc(text: str) -> str:
    """Text escaped for HTML, quotes too; a newline becomes <br>."""
    return _NEWLINE.sub("<br>", escape(str(text), quote=True))


def plain(cell: Any) -> str:
    """A cell's text without markup: the document's <title>."""
    return "".join(plain(p) for p in cell) if isinstance(cell, tuple) else str(cell)


def _class(mark: str) -> str:
    names = re.sub(r"[^A-Za-z0-9_ -]", "", mark or "").strip()
    return f' class="{names}"' if names else ""
