"""Compensating controls backed by evidence (issue 13 item 4): a control's claims about the
firewall are checked against the mGuard's exported profile (the simulator's own export,
edited); a control whose claims do not hold gets no credit, the effective score returns to
the base, and the output names the rule and its line. Through `otpatch risk score` in
process, through risk.assess and through a journaled run; a profile that does not parse is
one line, exit 2. The claim checks themselves: test_risk_claims.py."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from otpatch.engine import runs
from otpatch.engine.clock import VirtualClock
from otpatch.engine.context import RunContext
from otpatch.engine.cli import main
from otpatch.engine.display import PlainDisplay
from otpatch.engine.inventory import load_inventory
from otpatch.engine.journal import Journal
from otpatch.modules.risk.assess import Assess

from conftest import FIXTURES
from profile_edits import (ALL_EXCEPTED, DEFAULT_DROP, HISTORIAN, LAB, LAB_CONTROLS, MODBUS,
                           change, controls_file, insert, opening_line, profile_text, remove,
                           rule)

PROFILES = [  # id, edits of the exported profile, the witness (where, comment) or None: holds
    ("the simulator's export holds", (), None),
    ("all of VLAN 20 accepted first", (insert("FW_INCOMING", 0, rule(
        "VLAN 20 to Modbus", "tcp", "10.20.20.0/24", "10.10.10.0/24", "502")),),
     ("incoming rule 1 (FW_INCOMING.0", "VLAN 20 to Modbus")),
    ("the historian's rule widened to its VLAN", (change(
        "FW_INCOMING", HISTORIAN, "SRC_IP", "10.20.20.0/24"),),
     ("incoming rule 1 (FW_INCOMING.0", HISTORIAN)),
    ("default drop removed, any accepted", (remove("FW_INCOMING", DEFAULT_DROP), insert(
        "FW_INCOMING", 7, rule("accept the rest", "all", "any", "any", "any"))),
     ("incoming rule 8 (FW_INCOMING.7", "accept the rest")),
    ("an earlier accept wins over a later drop", (
        insert("FW_INCOMING", 0, rule("S7 and Modbus", "tcp", "any", "10.10.10.0/24", "500:510")),
        insert("FW_INCOMING", 1, rule("no Modbus", "tcp", "any", "10.10.10.0/24", "502",
                                      "drop"))),
     ("incoming rule 1 (FW_INCOMING.0", "S7 and Modbus")),
    ("an accept after the default drop is never reached", (insert(
        "FW_INCOMING", 8, rule("too late", "tcp", "any", "10.10.10.0/24", "502")),), None),
    ("an accept covered by an earlier drop is never reached", (
        insert("FW_INCOMING", 0, rule("no Modbus", "tcp", "any", "10.10.10.0/24", "502", "drop")),
        insert("FW_INCOMING", 1, rule("shadowed", "tcp", "10.20.20.0/24", "10.10.10.20", "502"))),
     None),
    ("UDP 502 is not the claim's TCP", (insert("FW_INCOMING", 0, rule(
        "udp 502", "udp", "any", "10.10.10.0/24", "502")),), None),
    ("a VPN rule from beyond the excepted network", (change(
        "plant-b-historian:FW_INCOMING", "plant-b-historian: service access", "SRC_IP",
        "172.16.0.0/16"),),
     ("vpn:plant-b-historian:incoming rule 1 (VPN_CONNECTION.1.FW_INCOMING.0",
      "plant-b-historian: service access")),
    ("a new VPN rule to 502", (insert("remote-service:FW_INCOMING", 1, rule(
        "service Modbus", "tcp", "192.168.100.0/24", "10.10.10.20", "502")),),
     ("vpn:remote-service:incoming rule 2 (VPN_CONNECTION.0.FW_INCOMING.1", "service Modbus")),
]


def score(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["risk", "score", MODBUS, "--controls", LAB_CONTROLS, "--control",
                 "mguard-blocks-modbus", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("edits,witness", [c[1:] for c in PROFILES], ids=[c[0] for c in PROFILES])
def test_the_cli_credits_the_control_only_while_its_claim_holds(tmp_path, capsys, edits,
                                                                witness):
    text = profile_text(*edits)
    (tmp_path / "fw.atv").write_text(text)
    code, out, err = score(capsys, "--profile", str(tmp_path / "fw.atv"))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    claims = next(line for line in lines if line.startswith("claims "))
    if witness is None:
        assert "effective   8.8 High (environmental score of " + MODBUS + "/MAV:A)" in lines
        assert claims == (f"claims      control mguard-blocks-modbus: claims hold against "
                          f"{tmp_path / 'fw.atv'}: blocks tcp port 502 from outside:control "
                          f"except {ALL_EXCEPTED} to control (incoming tables)")
        return
    where, comment = witness
    assert f"effective   9.8 Critical (base score of {MODBUS})" in lines
    assert "control     mguard-blocks-modbus: MAV:A withdrawn (" in out
    assert claims.startswith("claims      control mguard-blocks-modbus: credit withdrawn: "
                             f"{where}, line {opening_line(text, comment)}) accepts ")


@pytest.mark.parametrize("text,says", [
    (profile_text()[:2000], "fw.atv:"), ("not a profile\n", "fw.atv:1:5: expected '='"),
    (None, "otpatch: profile ")], ids=["truncated", "not a profile", "missing"])
def test_a_profile_that_does_not_parse_is_one_line_exit_2(tmp_path, capsys, text, says):
    if text is not None:
        (tmp_path / "fw.atv").write_text(text)
    code, out, err = score(capsys, "--profile", str(tmp_path / "fw.atv"))
    assert (code, out, len(err.splitlines())) == (2, "", 1)
    assert says in err and "Traceback" not in err


def test_without_a_profile_the_claim_is_credited_and_marked_unchecked(capsys):
    code, out, _ = score(capsys)
    assert code == 0 and "effective   8.8 High" in out
    assert ("claims      control mguard-blocks-modbus: claims not checked: no profile given "
            "(credited on its cited evidence alone)") in out.splitlines()


def test_json_names_the_rule_its_line_and_what_it_lets_through(tmp_path, capsys):
    text = profile_text(change("FW_INCOMING", HISTORIAN, "SRC_IP", "10.20.20.0/24"))
    (tmp_path / "fw.atv").write_text(text)
    code, out, _ = score(capsys, "--profile", str(tmp_path / "fw.atv"), "--json")
    doc = json.loads(out)
    assert (code, doc["effective"], doc["controls"], doc["due"]["category"]) == (
        0, 9.8, [], "emergency_72h")
    (verdict,) = doc["claims"]
    assert (verdict["status"], verdict["credited"]) == ("violated", False)
    (witness,) = verdict["witnesses"]
    assert witness["rule"]["line"] == opening_line(text, HISTORIAN) == 30
    assert witness["lets_through"]["destination"] == "10.10.10.20/32"
    assert "10.20.20.5/32" not in witness["lets_through"]["source"]  # the historian is spared


def test_a_site_policy_names_the_hosts_a_claim_excepts(tmp_path, capsys):
    (tmp_path / "site.yml").write_text("extends: default\nhosts:\n"
                                       "  plant_b_historian: 172.16.20.0/24\n")
    path = controls_file(tmp_path, LAB % "historian, engineering_workstation, plant_b_historian")
    (tmp_path / "fw.atv").write_text(profile_text())
    args = ["risk", "score", MODBUS, "--controls", str(path), "--control",
            "mguard-blocks-modbus", "--profile", str(tmp_path / "fw.atv")]
    assert main(args) == 2 and "'plant_b_historian' is not a zone" in capsys.readouterr().err
    assert main(args + ["--policy", str(tmp_path / "site.yml")]) == 0
    assert "effective   8.8 High" in capsys.readouterr().out


def context(tmp_path: Path) -> RunContext:
    return RunContext(mode="dry_run", clock=VirtualClock(), run_id="r-20261126T000000-000000",
                      run_dir=tmp_path, inventory=load_inventory(FIXTURES / "risk" /
                                                                 "inventory.yml"),
                      playbook_dir=tmp_path, targets={}, facts={}, namespace={})


@pytest.mark.parametrize("edits,witness", [PROFILES[0][1:], PROFILES[2][1:]],
                         ids=["holds", "violated"])
def test_risk_assess_records_the_verdict_and_scores_by_it(tmp_path, edits, witness):
    text = profile_text(*edits)
    (tmp_path / "fw.atv").write_text(text)
    result = Assess().run({"vector": MODBUS, "published": "2026-11-20",
                           "controls": ["mguard-blocks-modbus"], "controls_file": LAB_CONTROLS,
                           "profile": "fw.atv"}, context(tmp_path))  # beside the playbook
    risk = result.facts["risk"]
    (verdict,) = risk["claims"]
    assert not result.failed and verdict["profile"] == str(tmp_path / "fw.atv")
    assert [e["id"] for e in risk["control_evidence"]] == ["mguard-blocks-modbus"]
    if witness is None:
        assert (risk["effective"], risk["due_category"], risk["controls"]) == (
            8.8, "within_30d", ["mguard-blocks-modbus"])
        assert verdict["status"] == "holds" and "claims" not in result.msg
        return
    assert (risk["effective"], risk["due_category"], risk["controls"]) == (
        9.8, "emergency_72h", [])
    assert verdict["witnesses"][0]["rule"]["line"] == opening_line(text, HISTORIAN)
    assert result.msg.startswith("base 9.8 Critical, effective 9.8 Critical; emergency_72h")
    assert ("; control mguard-blocks-modbus: credit withdrawn: incoming rule 1 "
            f"(FW_INCOMING.0, line {opening_line(text, HISTORIAN)}) accepts tcp from "
            "10.20.20.0/24 to 10.10.10.20/32 port 502") in result.msg


def test_risk_assess_without_a_profile_credits_and_says_so(tmp_path):
    result = Assess().run({"vector": MODBUS, "published": "2026-11-20",
                           "controls": ["mguard-blocks-modbus"],
                           "controls_file": LAB_CONTROLS}, context(tmp_path))
    assert result.facts["risk"]["effective"] == 8.8
    assert result.facts["risk"]["claims"][0]["status"] == "unchecked"
    assert result.msg.endswith("; control mguard-blocks-modbus: claims not checked: no profile "
                               "given (credited on its cited evidence alone)")


def test_risk_assess_with_a_bad_profile_fails_the_step_in_one_line(tmp_path):
    (tmp_path / "fw.atv").write_text(profile_text()[:2000])
    result = Assess().run({"vector": MODBUS, "published": "2026-11-20",
                           "controls": ["mguard-blocks-modbus"], "controls_file": LAB_CONTROLS,
                           "profile": str(tmp_path / "fw.atv")}, context(tmp_path))
    assert result.failed and not result.facts and "\n" not in result.msg
    assert result.msg.startswith(f"{tmp_path / 'fw.atv'}:")


PLAYBOOK = """apiVersion: otpatch/v1
kind: Playbook
metadata: {name: risk-with-evidence, version: 1.0.0}
params:
  profile: {type: string, default: fw.atv}
targets:
  plc: {group: m580_cpus}
initial: assess
states:
  assess:
    do:
      - risk.assess:
          vector: %s
          published: "2026-11-20"
          controls: [mguard-blocks-modbus]
          controls_file: %s
          profile: "{{ params.profile }}"
          target: plc
    next: completed
""" % (MODBUS, LAB_CONTROLS)


def test_a_run_journals_the_withdrawn_credit(tmp_path, home):
    text = profile_text(change("FW_INCOMING", HISTORIAN, "SRC_IP", "10.20.20.0/24"))
    (tmp_path / "fw.atv").write_text(text)
    (tmp_path / "risk.yml").write_text(PLAYBOOK)
    out = io.StringIO()
    progress = runs.start(str(tmp_path / "risk.yml"), str(FIXTURES / "risk" / "inventory.yml"),
                          "dry_run", {}, home, PlainDisplay(out))
    assert progress.status.value == "completed", progress.message
    assert "effective 9.8 Critical; emergency_72h" in out.getvalue()
    assert "credit withdrawn: incoming rule 1 (FW_INCOMING.0, line 30)" in out.getvalue()
    with Journal.open(home, create=False) as journal:
        (recorded,) = [e.payload["result"]["facts"]["risk"]
                       for e in journal.entries(progress.run_id)
                       if e.event_type == "step_result" and e.payload["module"] == "risk.assess"]
    (verdict,) = recorded["claims"]
    assert verdict["status"] == "violated" and len(verdict["profile_sha256"]) == 64
