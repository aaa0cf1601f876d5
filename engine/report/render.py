"""A report document in one of its three formats, the same bytes for the same document
(verify-bundle re-renders and compares)."""
from __future__ import annotations

import json
from typing import Any

FORMATS = ("json", "md", "html")


def render(doc: dict[str, Any], fmt: str) -> str:
    """The document as `fmt`: json (sorted keys, two-space indent), md or html."""
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if fmt == "md":
        from otpatch.engine.report.markdown import markdown

        return markdown(doc)
    if fmt == "html":
        from otpatch.engine.report.html import html

        return html(doc)
    raise ValueError(f"report format {fmt!r}: one of {', '.join(FORMATS)}")
