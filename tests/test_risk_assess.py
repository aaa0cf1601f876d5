"""risk.assess: the procedure starts with a risk assessment that records score and due date
in the journal; bad input fails the step with one clear message."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from otpatch.engine import runs
from otpatch.engine.clock import VirtualClock
from otpatch.engine.context import RunContext
from otpatch.engine.display import PlainDisplay
from otpatch.engine.inventory import load_inventory
from otpatch.engine.journal import Journal
from otpatch.engine.record import RunStatus
from otpatch.modules import registry
from otpatch.modules.risk.assess import Assess

from conftest import FIXTURES

RISK = FIXTURES / "risk"
INVENTORY = FIXTURES / "risk" / "inventory.yml"
MODBUS_98 = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def context(mode: str = "dry_run", targets: dict | None = None) -> RunContext:
    inventory = load_inventory(INVENTORY)
    return RunContext(mode=mode, clock=VirtualClock(), run_id="r-20261126T000000-000000",
                      run_dir=RISK / "unused", inventory=inventory, playbook_dir=RISK,
                      targets=targets or {}, facts={}, namespace={})


def test_the_module_declares_it_reads_only():
    assert registry.get("risk.assess") is Assess
    assert Assess.supports_dry_run and not Assess.changes_device


@pytest.mark.parametrize("mode", ["dry_run", "execute"])
def test_facts_record_scores_and_due_date_in_any_mode(mode):
    result = Assess().run({"vector": MODBUS_98, "published": "2021-07-13",
                           "advisory": "ICSA-21-194-02", "controls": ["mguard-blocks-modbus"],
                           "controls_file": "controls.yml"}, context(mode))
    assert not result.failed and not result.changed
    assert result.msg == ("ICSA-21-194-02: base 9.8 Critical, effective 8.8 High with "
                          "mguard-blocks-modbus; within_30d by 2021-08-12T00:00:00+00:00")
    assert result.facts["risk"] == {
        "advisory": "ICSA-21-194-02", "vector": MODBUS_98,
        "effective_vector": MODBUS_98 + "/MAV:A", "version": "3.0", "base": 9.8,
        "base_severity": "Critical", "effective": 8.8, "effective_basis": "environmental",
        "severity": "High", "controls": ["mguard-blocks-modbus"],
        "control_evidence": [{
            "id": "mguard-blocks-modbus",
            "description": "mGuard blocks TCP 502 from outside VLAN 10", "metrics": {"MAV": "A"},
            "evidence": [{"kind": "firewall_rule",
                          "ref": 'lab-mguard-1 FW_INCOMING rule "deny modbus from VLAN 20"'},
                         {"kind": "check", "ref": "otpatch firewall review (planned)"}]}],
        "published": "2021-07-13T00:00:00+00:00", "due_category": "within_30d",
        "deadline": "2021-08-12T00:00:00+00:00",
        "due_rule": "effective 8.8 is above 7.0 and not above 9.0: act within 30 days of "
                    "publication"}


def test_without_controls_a_critical_score_is_an_emergency():
    result = Assess().run({"vector": MODBUS_98, "published": "2021-07-13T08:00+02:00"},
                          context())
    facts = result.facts["risk"]
    assert (facts["effective"], facts["due_category"], facts["deadline"]) == (
        9.8, "emergency_72h", "2021-07-16T08:00:00+02:00")
    assert facts["controls"] == [] and facts["advisory"] is None


def test_a_low_score_waits_for_the_next_cycle():
    result = Assess().run({"vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
                           "published": "2025-02-04", "next_cycle": "2025-03-15",
                           "controls": ["mguard-blocks-modbus"],
                           "controls_file": str(RISK / "controls.yml")}, context())
    facts = result.facts["risk"]
    assert (facts["base"], facts["effective"], facts["due_category"], facts["deadline"]) == (
        7.5, 6.5, "next_cycle", "2025-03-15T00:00:00+00:00")


FAILURES = [  # id, args beyond vector/published, what the message says
    ("bad vector", {"vector": "CVSS:3.1/AV:N"},
     "CVSS vector 'CVSS:3.1/AV:N': base metric(s) AC, PR, UI, S, C, I, A missing"),
    ("unknown control", {"controls": ["firewall-off"], "controls_file": "controls.yml"},
     "unknown control 'firewall-off': "),
    ("control without a file", {"controls": ["mguard-blocks-modbus"]},
     "control 'mguard-blocks-modbus' cited but no controls file given"),
    ("bad published date", {"published": "13.07.2021"},
     "published '13.07.2021' is not an ISO date"),
    ("bad next cycle", {"next_cycle": "soon"}, "next_cycle 'soon' is not an ISO date"),
    ("bad controls file", {"controls_file": "controls-bad-value.yml"},
     "controls-bad-value.yml:5:7: [schema] controls[0].metrics.MAV: MAV (Modified Attack"),
    ("missing controls file", {"controls_file": "nope.yml"}, "nope.yml:1:1: [yaml-unreadable]"),
]


@pytest.mark.parametrize("extra,fragment", [c[1:] for c in FAILURES],
                         ids=[c[0] for c in FAILURES])
def test_bad_input_fails_the_step_with_a_clear_message(extra, fragment):
    args = {"vector": MODBUS_98, "published": "2021-07-13", **extra}
    result = Assess().run(args, context())
    assert result.failed and fragment in result.msg and "\n" not in result.msg
    assert not result.facts


def test_a_control_must_hold_for_every_host_of_the_target():
    inventory = load_inventory(INVENTORY)
    targets = {"firewall": inventory.group_hosts("mguards")}
    result = Assess().run({"vector": MODBUS_98, "published": "2021-07-13",
                           "controls": ["mguard-blocks-modbus"],
                           "controls_file": "controls.yml", "target": "firewall"},
                          context(targets=targets))
    assert result.failed
    assert result.msg == ("control 'mguard-blocks-modbus' does not apply to line1-mguard "
                          "(zone level2-3-boundary): it applies to zones level2")


@pytest.mark.parametrize("args,path", [({"published": "2021-07-13"}, ()),
                                       ({"vector": MODBUS_98, "published": "x",
                                         "controls": "mguard-blocks-modbus"}, ("controls",))],
                         ids=["vector missing", "controls not a list"])
def test_arguments_are_checked_before_the_module_runs(args, path):
    problems = registry.arg_problems("risk.assess", args)
    assert [p for p, _ in problems] == [path]


def run_playbook(home: Path, playbook: Path) -> tuple:
    out = io.StringIO()
    progress = runs.start(str(playbook), str(INVENTORY), "dry_run", {}, home,
                          PlainDisplay(out))
    return progress, out.getvalue()


def test_the_assessment_is_recorded_in_the_journal(home):
    progress, out = run_playbook(home, RISK / "risk-first.yml")
    assert progress.status is RunStatus.COMPLETED, progress.message
    assert "effective 8.8 High with mguard-blocks-modbus; within_30d by 2021-08-12" in out
    with Journal.open(home, create=False) as journal:
        results = [e.payload for e in journal.entries(progress.run_id)
                   if e.event_type == "step_result" and e.payload["module"] == "risk.assess"]
    (recorded,) = results
    risk = recorded["result"]["facts"]["risk"]
    assert (risk["base"], risk["effective"], risk["due_category"], risk["deadline"]) == (
        9.8, 8.8, "within_30d", "2021-08-12T00:00:00+00:00")
    assert progress.facts["plc"]["risk"]["effective_vector"].endswith("/MAV:A")


def test_a_control_that_does_not_cover_the_target_aborts_the_run(home, tmp_path):
    text = (RISK / "risk-first.yml").read_text()
    playbook = tmp_path / "risk-first.yml"
    playbook.write_text(text.replace("{group: m580_cpus}", "{group: mguards}"))
    (tmp_path / "controls.yml").write_text((RISK / "controls.yml").read_text())
    progress, out = run_playbook(home, playbook)
    assert progress.status is RunStatus.ABORTED
    assert "does not apply to line1-mguard (zone level2-3-boundary)" in out
