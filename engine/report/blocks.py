"""The report's sections as plain blocks (headings, paragraphs, tables, the timeline's
place) and the words its values are shown with: sections.py makes them, markdown.py and
html.py render the same blocks."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from otpatch.engine.report.devices import OUTCOME_WORDS as DEVICE_OUTCOMES

# an outcome as the record shows it: devices.py's words, the two that need it explained
OUTCOME_WORDS = {**DEVICE_OUTCOMES, "left_changed": "left changed (not as found)",
                 "unknown": "unknown (not read back)"}
STEP_WORDS = {"ok": "ok", "failed": "FAILED", "interrupted": "interrupted (no result)",
              "read_back": "read back"}
LEFT_BY_WORDS = {"succeed": "succeeded", "fail": "failed", "roll_back": "rolled back",
                 "skip": "skipped"}
CLOCK_WORDS = {"simulated": "simulated: a dry run's clock, durations are what the devices "
                            "would take", "wall": "wall: the time the run took"}


class Code(str):
    """Inline text shown as code: hashes, keys, state, step and module names."""


class Strong(str):
    """Inline text shown bold: an outcome, a status, a failed result."""


class Stamp(str):
    """A UTC time, kept on one line."""


@dataclass(frozen=True)
class Heading:
    """A heading; `mark` is the kind of section it opens (the HTML's class)."""

    text: Any
    level: int
    mark: str = ""


@dataclass(frozen=True)
class Para:
    """A paragraph: a cell of inline text."""

    cell: Any
    mark: str = ""


@dataclass(frozen=True)
class Table:
    """A table of cells (str, Code, Strong or a tuple of them); `marks`: one per row."""

    headers: tuple[Any, ...]
    rows: tuple[tuple[Any, ...], ...]
    marks: tuple[str, ...] = ()
    mark: str = ""


@dataclass(frozen=True)
class Timeline:
    """Where the HTML draws the run's state timeline (timeline.py), first in the run's section;
    Markdown leaves it out: the table of visits gives every time."""

    run: dict[str, Any] = field(hash=False, compare=False)


# -- words -----------------------------------------------------------------------------------

def words(name: str) -> str:
    """An enum value in words: rolled_back -> rolled back, dry_run -> dry run."""
    return str(name).replace("_", " ")


def yes(flag: Any) -> str:
    """A flag in words."""
    return "yes" if flag else "no"


def value(v: Any) -> str:
    """An observed or bound value as text: strings as they are, the rest as compact JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def fields(item: Any) -> str:
    if isinstance(item, dict):
        return "; ".join(f"{k}: {value(v)}" for k, v in sorted(item.items()))
    return value(item)


def codes(items: list[str]) -> tuple[Any, ...]:
    return tuple(p for i, item in enumerate(items) for p in ((", " if i else ""), Code(item)))
