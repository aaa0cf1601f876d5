"""Durations as procedures write them (`90s`, `8m`, `4h`, `1h30m`, `250ms`), at most 30 days."""
from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*"
                       r"(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+(?:\.\d+)?)ms)?\s*$", re.ASCII)
MAX_DURATION = 30 * 86400.0  # seconds: no step, state, budget or wait of a procedure is longer
MAX_DURATION_TEXT = 40  # characters of a written duration (`1h30m` needs five)


class DurationTooLong(ValueError):
    """A well-formed duration past MAX_DURATION."""


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `90s`, `8m`, `4h`, `1h30m` or `250ms`, at most 30 days;
    ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if value != value or value < 0:
            raise ValueError(f"not a duration: {_shown(value)} (negative or not a number)")
        return _bounded(value, _shown(value))
    text = str(value)
    m = _DURATION.match(text) if len(text) <= MAX_DURATION_TEXT else None
    if not text.strip() or not m or not any(m.groups()):
        raise ValueError(f"not a duration: {_shown(text)} (use e.g. 90s, 8m, 4h, 1h30m; "
                         f"at most {MAX_DURATION_TEXT} characters)")
    h, mins, s, ms = (float(g) if g else 0.0 for g in m.groups())
    return _bounded(h * 3600 + mins * 60 + s + ms / 1000, _shown(text))


def _bounded(seconds: int | float, shown: str) -> float:
    if seconds > MAX_DURATION:  # compared before float(): a 400-digit int overflows it
        raise DurationTooLong(f"duration {shown} is longer than the bound of 30 days")
    return float(seconds)


def _shown(value: Any) -> str:
    if isinstance(value, int) and abs(value) >= 10 ** MAX_DURATION_TEXT:
        return f"of about {int(value.bit_length() * 0.30103) + 1} digits"  # str() may refuse
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_DURATION_TEXT + 2 else text[:MAX_DURATION_TEXT] + "..."


def format_duration(seconds: float) -> str:
    """`8m`, `45s`, `4h`, `1h30m5s`: the inverse of parse_duration for whole seconds."""
    if seconds < 1 and seconds > 0:
        return f"{seconds * 1000:.0f}ms"
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v]
    return "".join(parts) or "0s"
