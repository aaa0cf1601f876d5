"""Due categories and deadlines at and around the article's thresholds (strictly above)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from otpatch.modules.risk import due as due_module
from otpatch.modules.risk.due import Due, category, due, parse_when, thresholds_text
from otpatch.modules.risk.scoring import RiskError

UTC = timezone.utc
PUBLISHED = datetime(2026, 11, 20, tzinfo=UTC)
CYCLE = datetime(2027, 1, 15, 6, 0, tzinfo=UTC)

CASES = [  # id, effective, next cycle, category, deadline, words in the rule
    ("10.0 emergency", 10.0, None, "emergency_72h", datetime(2026, 11, 23, tzinfo=UTC),
     "effective 10.0 is above 9.0: emergency patch within 72 hours of publication"),
    ("9.1 emergency", 9.1, None, "emergency_72h", datetime(2026, 11, 23, tzinfo=UTC),
     "above 9.0"),
    ("9.0 exactly is Critical yet 30 days", 9.0, None, "within_30d",
     datetime(2026, 12, 20, tzinfo=UTC),
     "effective 9.0 is above 7.0 and not above 9.0 (9.0 is CVSS Critical; the rule is "
     "strictly above): act within 30 days of publication"),
    ("8.9 within 30 days", 8.9, None, "within_30d", datetime(2026, 12, 20, tzinfo=UTC),
     "not above 9.0: act within 30 days"),
    ("7.1 within 30 days", 7.1, None, "within_30d", datetime(2026, 12, 20, tzinfo=UTC),
     "effective 7.1 is above 7.0"),
    ("7.0 exactly is the next cycle", 7.0, CYCLE, "next_cycle", CYCLE,
     "effective 7.0 is not above 7.0: the next planned patch cycle (2027-01-15T06:00:00+00:00)"),
    ("6.9 next cycle without a date", 6.9, None, "next_cycle", None,
     "the next planned patch cycle (no cycle date given)"),
    ("0.0 next cycle", 0.0, CYCLE, "next_cycle", CYCLE, "effective 0.0 is not above 7.0"),
]


@pytest.mark.parametrize("effective,cycle,kind,deadline,words", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_due_category_and_deadline(effective, cycle, kind, deadline, words):
    d = due(effective, PUBLISHED, cycle)
    assert (d.category, d.deadline) == (kind, deadline)
    assert words in d.rule
    assert category(effective) == kind


def test_deadlines_keep_the_publication_time_and_offset():
    published = datetime(2026, 11, 20, 14, 30, tzinfo=timezone(timedelta(hours=1)))
    assert due(9.8, published).deadline.isoformat() == "2026-11-23T14:30:00+01:00"
    assert due(8.8, published).deadline.isoformat() == "2026-12-20T14:30:00+01:00"


def test_due_as_json_data():
    assert due(9.8, PUBLISHED).to_dict() == {
        "category": "emergency_72h", "deadline": "2026-11-23T00:00:00+00:00",
        "rule": "effective 9.8 is above 9.0: emergency patch within 72 hours of publication"}
    assert Due("next_cycle", None, "r").to_dict()["deadline"] is None


def test_the_thresholds_are_module_constants_a_site_can_change(monkeypatch):
    monkeypatch.setattr(due_module, "EMERGENCY_ABOVE", 8.9)  # "9.0 and above" instead
    assert due(9.0, PUBLISHED).category == "emergency_72h"
    assert "above 8.9: emergency patch within 72 hours" in thresholds_text()


@pytest.mark.parametrize("value", [10.1, -0.1, float("nan"), "9.8", None, True],
                         ids=["above 10", "negative", "nan", "text", "none", "bool"])
def test_a_score_outside_cvss_is_refused(value):
    with pytest.raises(RiskError, match="is not a CVSS score from 0.0 to 10.0"):
        due(value, PUBLISHED)


WHEN = [  # id, text, datetime
    ("date is midnight UTC", "2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
    ("time without offset is UTC", "2026-11-20T14:00", datetime(2026, 11, 20, 14, tzinfo=UTC)),
    ("offset kept", "2026-11-20T14:00:00+01:00",
     datetime(2026, 11, 20, 14, tzinfo=timezone(timedelta(hours=1)))),
    ("Z suffix", "2026-11-20T14:00:00Z", datetime(2026, 11, 20, 14, tzinfo=UTC)),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in WHEN], ids=[c[0] for c in WHEN])
def test_parse_when(text, expected):
    assert parse_when(text) == expected


@pytest.mark.parametrize("text", ["20.11.2026", "yesterday", ""])
def test_parse_when_refuses_what_is_not_iso(text):
    with pytest.raises(RiskError) as e:
        parse_when(text, "--published")
    assert str(e.value) == (f"--published {text!r} is not an ISO date (2026-11-20) or date "
                            "and time (2026-11-20T14:00:00+01:00)")
