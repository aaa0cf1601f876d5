"""`otpatch risk score` in a real child process: what it prints, --json, exit codes, and one
clear line (never a traceback) for anything a user can get wrong."""
from __future__ import annotations

import json

import pytest

from conftest import FIXTURES, otpatch_child

RISK = FIXTURES / "risk"
CONTROLS = str(RISK / "controls.yml")
MODBUS_98 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def risk(home, *args: str):
    result = otpatch_child(home, "risk", "score", *args, timeout=30)
    assert "Traceback" not in result.stderr
    return result


def test_the_mguard_control_example_prints_scores_due_and_thresholds(home):
    result = risk(home, MODBUS_98, "--controls", CONTROLS, "--control",
                  "mguard-blocks-modbus", "--published", "2026-11-20")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (RISK / "score-modbus.txt").read_text()


def test_temporal_metrics_are_shown_and_no_deadline_without_a_date(home):
    result = risk(home, MODBUS_98 + "/E:P/RL:O/RC:C")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[1:4] == [
        "base        9.8 Critical", "temporal    8.8",
        "effective   8.8 High (temporal score of " + MODBUS_98 + "/E:P/RL:O/RC:C)"]
    assert "due         within_30d (give --published DATE for the deadline)" in lines


def test_emergency_deadline_is_72_hours_after_publication(home):
    result = risk(home, MODBUS_98, "--published", "2026-11-20T14:00:00+01:00")
    assert "due         emergency_72h: effective 9.8 is above 9.0: emergency patch within " \
           "72 hours of publication" in result.stdout
    assert "deadline    2026-11-23T14:00:00+01:00 (published 2026-11-20T14:00:00+01:00)" \
           in result.stdout


def test_json_is_one_document(home):
    result = risk(home, MODBUS_98, "--controls", CONTROLS, "--control",
                  "mguard-blocks-modbus", "--published", "2026-11-20", "--json")
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert (doc["base"], doc["effective"], doc["severity"], doc["version"]) == (
        9.8, 8.8, "High", "3.1")
    assert doc["effective_vector"] == MODBUS_98 + "/MAV:A"
    assert doc["controls"] == [{"id": "mguard-blocks-modbus",
                                "description": "mGuard blocks TCP 502 from outside VLAN 10",
                                "metrics": {"MAV": "A"}, "applies_to": "zones level2"}]
    assert doc["due"]["category"] == "within_30d"
    assert doc["due"]["deadline"] == "2026-12-20T00:00:00+00:00"
    assert doc["thresholds"] == {"emergency_above": 9.0, "emergency_within_hours": 72,
                                 "action_above": 7.0, "action_within_days": 30}


def test_json_without_a_date_still_gives_the_category(home):
    doc = json.loads(risk(home, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", "--json").stdout)
    assert (doc["effective"], doc["due"]) == (
        5.3, {"category": "next_cycle", "deadline": None, "rule": None})


ERRORS = [  # id, arguments, the one line on stderr
    ("bad vector", ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q"],
     "otpatch: CVSS vector 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q': A cannot be 'Q' "
     "(allowed: H, L, N)"),
    ("cvss v2 vector", ["AV:N/AC:L/Au:N/C:P/I:P/A:P"],
     "otpatch: CVSS vector 'AV:N/AC:L/Au:N/C:P/I:P/A:P': does not start with CVSS:3.0/ or "
     "CVSS:3.1/ (CVSS v2 and bare vectors are not scored here)"),
    ("control without controls file", [MODBUS_98, "--control", "mguard-blocks-modbus"],
     "otpatch: control 'mguard-blocks-modbus' cited but no controls file given: name the file "
     "that defines it (--controls FILE, or controls_file in a playbook)"),
    ("unknown control", [MODBUS_98, "--controls", CONTROLS, "--control", "firewall-off"],
     f"otpatch: unknown control 'firewall-off': {CONTROLS} defines engineering-station-only, "
     "mguard-blocks-modbus, spare-plc-offline"),
    ("bad date", [MODBUS_98, "--published", "20.11.2026"],
     "otpatch: --published '20.11.2026' is not an ISO date (2026-11-20) or date and time "
     "(2026-11-20T14:00:00+01:00)"),
    ("next cycle without publication", [MODBUS_98, "--next-cycle", "2027-01-15"],
     "otpatch: --next-cycle needs --published DATE: the due date is taken from the "
     "advisory's publication"),
    ("bad controls file", [MODBUS_98, "--controls", str(RISK / "controls-duplicate-id.yml")],
     f"{RISK / 'controls-duplicate-id.yml'}:8:5: [control-duplicate-id] controls[1].id: "
     "control id 'mguard-blocks-modbus' is already defined on line 2"),
]


@pytest.mark.parametrize("args,line", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_bad_input_is_one_clear_line_and_exit_2(home, args, line):
    result = risk(home, *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [line]


def test_a_low_score_is_due_at_the_next_cycle(home):
    result = risk(home, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", "--controls",
                  CONTROLS, "--control", "mguard-blocks-modbus", "--published", "2025-02-04",
                  "--next-cycle", "2025-03-15")
    assert result.returncode == 0
    assert "effective   6.5 Medium (environmental score of " in result.stdout
    assert "deadline    2025-03-15T00:00:00+00:00 (published 2025-02-04T00:00:00+00:00)" \
        in result.stdout


def test_json_errors_stay_off_stdout(home):
    result = risk(home, "CVSS:3.1/AV:N", "--json")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("otpatch: CVSS vector 'CVSS:3.1/AV:N': ")
