"""The change-control record as Markdown for a ticket (GitHub or Jira style): the blocks
sections.py makes, rendered."""
from __future__ import annotations

import re
from typing import Any

from otpatch.engine.report.blocks import Code, Heading, Para, Strong, Table
from otpatch.engine.report.sections import sections

# -- rendering as Markdown ----------------------------------------------------------------

_SPECIAL = re.compile(r"[\\`*\[\]<>|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|&(?=#?\w+;)")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_CODE_UNSAFE = re.compile(r"[`<>|&\n\r]")


def markdown(doc: dict[str, Any]) -> str:
    """`doc` (schemas/report.schema.json) as Markdown; the same document, the same text."""
    return "\n\n".join(t for t in (_md_block(b) for b in sections(doc)) if t) + "\n"


def _md_block(block: Any) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + md_inline(block.text)
    if isinstance(block, Para):
        line = md_inline(block.cell)
        return "\\" + line if line.startswith(("#", "-", "+", "=")) else line
    if isinstance(block, Table):
        head = "| " + " | ".join(md_inline(h) or " " for h in block.headers) + " |"
        rule = "|" + "|".join("---" for _ in block.headers) + "|"
        rows = ["| " + " | ".join(md_inline(c) or " " for c in r) + " |" for r in block.rows]
        return "\n".join([head, rule, *rows])
    return ""  # a Timeline: drawn in the HTML only; the tables give every time


def md_inline(cell: Any) -> str:
    """One cell or paragraph: code spans, bold, escaped text; a newline becomes <br>."""
    if isinstance(cell, tuple):
        return "".join(md_inline(part) for part in cell)
    if isinstance(cell, Code) and cell and not _CODE_UNSAFE.search(cell):
        return f"`{cell}`"  # otherwise escaped text: a code span cannot escape `<` or `|`
    if isinstance(cell, Strong) and cell.strip():  # a Stamp is plain text here
        return f"**{md_text(cell.strip())}**"
    return md_text(str(cell))


def md_text(plain: str) -> str:
    """Plain text that Markdown shows as written: markup characters escaped, `<` `>` `&` as
    entities (no HTML passes), `|` escaped for tables, newlines as <br>."""
    escaped = _SPECIAL.sub(lambda m: _ENTITIES.get(m.group(), "\\" + m.group()), plain)
    return re.sub(r"\r\n|\r|\n", "<br>", escaped)
