"""Compensating controls files: loaded typed, every problem located, ids resolved, scope."""
from __future__ import annotations

import re

import pytest

from otpatch.modules.contract.errors import PlaybookError
from otpatch.engine.inventory import load_inventory
from otpatch.modules.risk.controls import (AppliesTo, Evidence, covering, load_controls,
                                           select_controls)
from otpatch.modules.risk.scoring import RiskError, score

from conftest import FIXTURES, ROOT

RISK = FIXTURES / "risk"
LOCATED = re.compile(r"^\S+\.yml:\d+:\d+: \[[a-z-]+\] \S")


def test_the_example_controls_file_loads_typed():
    controls = load_controls(RISK / "controls.yml")
    assert list(controls) == ["mguard-blocks-modbus", "engineering-station-only",
                              "spare-plc-offline"]
    modbus = controls["mguard-blocks-modbus"]
    assert modbus.description == "mGuard blocks TCP 502 from outside VLAN 10"
    assert dict(modbus.metrics) == {"MAV": "A"} and modbus.metrics_text() == "MAV:A"
    assert modbus.evidence == (
        Evidence("firewall_rule", 'lab-mguard-1 FW_INCOMING rule "deny modbus from VLAN 20"'),
        Evidence("check", "otpatch firewall review (planned)"))
    assert modbus.applies_to == AppliesTo(zones=("level2",))
    assert modbus.source.endswith("controls.yml:3:5")
    assert controls["spare-plc-offline"].metrics_text() == "MAV:P/AR:L"


def test_the_shipped_lab_controls_lower_the_modbus_score():
    controls = load_controls(ROOT / "inventory" / "lab-controls.yml")
    s = score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
              select_controls(controls, ["mguard-blocks-modbus"], "lab-controls.yml"))
    assert (s.base, s.effective, s.severity) == (9.8, 8.8, "High")


INVALID = [  # fixture, rule, line:col, what the line says
    ("controls-unknown-metric.yml", "schema", "5:7",
     "controls[0].metrics.AV: unknown key 'AV' (allowed: the CVSS v3 environmental metrics"),
    ("controls-bad-value.yml", "schema", "5:7",
     "MAV (Modified Attack Vector) is one of N (network), A (adjacent), L (local), "
     "P (physical) or X (not defined) (got 'Adjacent')"),
    ("controls-duplicate-id.yml", "control-duplicate-id", "8:5",
     "control id 'mguard-blocks-modbus' is already defined on line 2"),
    ("controls-no-evidence.yml", "schema", "5:5", "cite at least one piece of evidence"),
    ("controls-applies-to-nothing.yml", "schema", "7:5",
     "name at least one of zones, groups, hosts"),
    ("controls-bad-evidence-kind.yml", "schema", "6:10", "(got 'hearsay')"),
]


@pytest.mark.parametrize("fixture,rule,at,fragment", INVALID, ids=[c[0] for c in INVALID])
def test_a_bad_controls_file_is_one_located_line(fixture, rule, at, fragment):
    with pytest.raises(PlaybookError) as e:
        load_controls(RISK / fixture)
    (line,) = e.value.lines()
    assert line.startswith(f"{RISK / fixture}:{at}: [{rule}] ")
    assert fragment in line


def test_every_problem_of_a_file_is_reported_at_once():
    with pytest.raises(PlaybookError) as e:
        load_controls(RISK / "controls-many-problems.yml")
    lines = e.value.lines()
    assert [line.split(": [")[0].rsplit(".yml:", 1)[1] for line in lines] == [
        "2:5", "4:23", "9:5", "10:5", "12:9", "13:35"]
    assert all(LOCATED.match(line) for line in lines)


def test_a_missing_file_is_a_located_problem(tmp_path):
    with pytest.raises(PlaybookError, match="cannot read"):
        load_controls(tmp_path / "nope.yml")


def test_an_unknown_control_id_lists_the_known_ones():
    controls = load_controls(RISK / "controls.yml")
    with pytest.raises(RiskError) as e:
        select_controls(controls, ["mguard-blocks-modbus", "firewall-off"], "controls.yml")
    assert str(e.value) == ("unknown control 'firewall-off': controls.yml defines "
                            "engineering-station-only, mguard-blocks-modbus, spare-plc-offline")


def test_a_control_cited_without_a_file_says_to_give_one():
    with pytest.raises(RiskError, match="no controls file given: name the file"):
        select_controls({}, ["mguard-blocks-modbus"], None)


@pytest.fixture(scope="module")
def lab():
    return load_inventory(RISK / "inventory.yml")


COVERS = [  # id, applies_to, host, covered
    ("zone covers the PLC", AppliesTo(zones=("level2",)), "line1-plc", True),
    ("zone does not cover the mGuard", AppliesTo(zones=("level2",)), "line1-mguard", False),
    ("group covers its member", AppliesTo(groups=("m580_cpus",)), "line1-plc", True),
    ("group does not cover others", AppliesTo(groups=("m580_cpus",)), "line1-x80", False),
    ("host by name", AppliesTo(hosts=("line1-mguard",)), "line1-mguard", True),
    ("any of them", AppliesTo(zones=("level3",), hosts=("line1-x80",)), "line1-x80", True),
]


@pytest.mark.parametrize("scope,host,covered", [c[1:] for c in COVERS],
                         ids=[c[0] for c in COVERS])
def test_applies_to_covers_hosts_by_zone_group_or_name(lab, scope, host, covered):
    assert scope.covers(lab.hosts[host], lab) is covered


def test_covering_lists_the_controls_that_hold_for_a_host(lab):
    controls = load_controls(RISK / "controls.yml")
    ids = {name: [c.id for c in covering(controls, host, lab)]
           for name, host in lab.hosts.items()}
    assert ids == {"line1-plc": ["mguard-blocks-modbus", "engineering-station-only"],
                   "line1-x80": ["mguard-blocks-modbus"], "line1-mguard": []}
