"""When a patch is due, from the effective score: the seed's 72-hour and 30-day rules.

The article: "A score above 7.0 requires action within 30 days. A score above 9.0 requires
emergency patching within 72 hours." Implemented literally, strictly above:

- effective > 9.0: `emergency_72h`, deadline = published + 72 hours;
- effective > 7.0: `within_30d`, deadline = published + 30 days;
- otherwise: `next_cycle`, deadline = the next planned patch cycle if one is given, else None.

So 9.0 exactly, although CVSS calls it Critical (Critical begins at 9.0), lands in the 30-day
category, and 7.0 exactly (High) in the next cycle, because the article says "above". A site
that wants "at or above" changes the thresholds: they are the module constants below, read
by `due` at call time (no configuration file yet). Deadlines count from the advisory's
publication; `parse_when` reads a date as midnight UTC and a time without offset as UTC.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from otpatch.modules.risk.scoring import RiskError

EMERGENCY_ABOVE = 9.0
EMERGENCY_WITHIN = timedelta(hours=72)
ACTION_ABOVE = 7.0
ACTION_WITHIN = timedelta(days=30)

EMERGENCY, WITHIN_30D, NEXT_CYCLE = "emergency_72h", "within_30d", "next_cycle"
CATEGORIES = (EMERGENCY, WITHIN_30D, NEXT_CYCLE)


@dataclass(frozen=True)
class Due:
    """The due category, its deadline (None: next cycle with no date known) and the rule."""

    category: str  # emergency_72h | within_30d | next_cycle
    deadline: datetime | None
    rule: str  # the rule applied, in words, with the numbers

    def to_dict(self) -> dict[str, str | None]:
        return {"category": self.category,
                "deadline": self.deadline.isoformat() if self.deadline else None,
                "rule": self.rule}


def thresholds() -> dict[str, float]:
    """The thresholds in force, for output: shown wherever a category is."""
    return {"emergency_above": EMERGENCY_ABOVE,
            "emergency_within_hours": EMERGENCY_WITHIN / timedelta(hours=1),
            "action_above": ACTION_ABOVE,
            "action_within_days": ACTION_WITHIN / timedelta(days=1)}


def thresholds_text() -> str:
    t = thresholds()
    return (f"above {t['emergency_above']}: emergency patch within "
            f"{t['emergency_within_hours']:g} hours; above {t['action_above']}: act within "
            f"{t['action_within_days']:g} days; otherwise the next planned patch cycle")


def category(effective: float) -> str:
    """The due category of an effective score (strictly above each threshold)."""
    _check_score(effective)
    if effective > EMERGENCY_ABOVE:
        return EMERGENCY
    if effective > ACTION_ABOVE:
        return WITHIN_30D
    return NEXT_CYCLE


def due(effective: float, published: datetime, next_cycle: datetime | None = None) -> Due:
    """The due category and deadline of a vulnerability with this effective score, published
    at `published`; `next_cycle` is the next planned patch cycle (for low scores)."""
    kind = category(effective)
    if kind == EMERGENCY:
        return Due(kind, published + EMERGENCY_WITHIN,
                   f"effective {effective} is above {EMERGENCY_ABOVE}: emergency patch within "
                   f"{EMERGENCY_WITHIN / timedelta(hours=1):g} hours of publication")
    if kind == WITHIN_30D:
        critical = (f" ({effective} is CVSS Critical; the rule is strictly above)"
                    if effective >= EMERGENCY_ABOVE else "")
        return Due(kind, published + ACTION_WITHIN,
                   f"effective {effective} is above {ACTION_ABOVE} and not above "
                   f"{EMERGENCY_ABOVE}{critical}: act within "
                   f"{ACTION_WITHIN / timedelta(days=1):g} days of publication")
    when = f" ({next_cycle.isoformat()})" if next_cycle else " (no cycle date given)"
    return Due(kind, next_cycle, f"effective {effective} is not above {ACTION_ABOVE}: the next "
                                 f"planned patch cycle{when}")


def window(kind: str) -> timedelta | None:
    """How long after publication a category allows (None: until the next cycle)."""
    return {EMERGENCY: EMERGENCY_WITHIN, WITHIN_30D: ACTION_WITHIN}.get(kind)


FIRST_YEAR, LAST_YEAR = 1970, 9000  # a deadline past 9000 would leave datetime's range
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)


def parse_when(text: str, what: str = "published") -> datetime:
    """An ISO date (midnight UTC) or date and time (UTC unless it carries an offset), in
    the years FIRST_YEAR to LAST_YEAR."""
    text = str(text).strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise RiskError(f"{what} {_shown(text)} is {_not_a_date(text)}") from None
    return in_range(when if when.tzinfo else when.replace(tzinfo=timezone.utc), what)


def in_range(when: datetime, what: str) -> datetime:
    """`when` itself, if its year is one a deadline can be counted from; RiskError if not."""
    if not FIRST_YEAR <= when.year <= LAST_YEAR:
        raise RiskError(f"{what} {when.date().isoformat()} is outside the years {FIRST_YEAR} "
                        f"to {LAST_YEAR} that deadlines are counted in")
    return when


def _not_a_date(text: str) -> str:
    m = _DATE.match(text)
    if m:
        year, month, day = (int(g) for g in m.groups())
        if month == 2 and day == 29 and not calendar.isleap(year):
            return f"not a real date: {year} is not a leap year"
        if 1 <= month <= 12 and not 1 <= day <= calendar.monthrange(year or 1, month)[1]:
            return f"not a real date: month {month} has no day {day}"
        if not 1 <= month <= 12:
            return f"not a real date: there is no month {month}"
    return "not an ISO date (2026-11-20) or date and time (2026-11-20T14:00:00+01:00)"


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}..."


def _check_score(effective: float) -> None:
    if isinstance(effective, bool) or not isinstance(effective, (int, float)) \
            or not 0.0 <= effective <= 10.0:
        raise RiskError(f"effective score {effective!r} is not a CVSS score from 0.0 to 10.0")
