"""The risk register: written from scores, valid against its schema, reloaded equal; a
register that contradicts its own vectors or rules is refused, located."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from otpatch.modules.contract.errors import PlaybookError
from otpatch.modules.contract.schemas import schema_problems
from otpatch.modules.contract.yamlsrc import read_yaml
from otpatch.modules.risk.controls import load_controls, select_controls
from otpatch.modules.risk.due import due, parse_when
from otpatch.modules.risk.register import (Decision, RiskRegister, dump_register, load_register,
                                           register_entry, write_register)
from otpatch.modules.risk.scoring import RiskError, score

from conftest import FIXTURES

RISK = FIXTURES / "risk"
UTC = timezone.utc


def written_register() -> RiskRegister:
    """Three assessments as otpatch records them: with a control, deferred, plain."""
    controls = load_controls(RISK / "controls.yml")
    modbus = select_controls(controls, ["mguard-blocks-modbus"], "controls.yml")
    cases = [
        ("lab-plc-1", "ICSA-21-194-02", "CVE-2021-22779",
         "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", modbus, "mitigate", "2021-07-13"),
        ("lab-plc-1", "ICSA-25-035-04", "CVE-2024-11425",
         "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", modbus, "defer", "2025-02-04"),
        ("lab-mguard-1", None, "CVE-2017-7935",
         "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:N/A:H", (), "patch", "2017-05-11T09:30+02:00"),
    ]
    entries = []
    for asset, advisory, cve, vector, cited, decision, published in cases:
        scored, when = score(vector, cited), parse_when(published)
        entries.append(register_entry(
            scored, due(scored.effective, when, parse_when("2025-03-15T06:00+01:00")),
            asset=asset, decision=decision, rationale="yes", owner="Bernd Maier",
            advisory=advisory, cves=[cve], published=when))
    return RiskRegister(tuple(entries), site="simulator lab")


def test_a_written_register_validates_and_reloads_equal(tmp_path):
    register = written_register()
    path = tmp_path / "register.yml"
    write_register(path, register)
    assert schema_problems(read_yaml(path), "risk-register") == []
    assert load_register(path) == register


def test_the_written_document_reads_as_a_person_expects(tmp_path):
    text = dump_register(written_register())
    assert text.startswith("# IEC 62443-2-1 risk register")
    assert "effective_vector: CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/MAV:A\n" in text
    assert "deadline: '2021-08-12T00:00:00+00:00'\n" in text
    assert "rationale: 'yes'\n" in text  # YAML 1.1 readers would take yes for true
    assert "deadline: '2017-05-13T09:30:00+02:00'" not in text  # 8.6 is 30 days, not 72 h
    assert "deadline: '2017-06-10T09:30:00+02:00'\n" in text


def test_a_register_kept_by_hand_loads_typed():
    register = load_register(RISK / "register.yml")
    first, deferred, firewall = register.entries
    assert register.site == "simulator lab"
    assert (first.asset, first.advisory, first.cves) == ("lab-plc-1", "ICSA-21-194-02",
                                                         ("CVE-2021-22779",))
    assert (first.base, first.effective, first.severity) == (9.8, 8.8, "High")
    assert first.decision is Decision.MITIGATE and first.controls == ("mguard-blocks-modbus",)
    assert first.due.deadline == datetime(2021, 8, 10, tzinfo=UTC)  # earlier than allowed: ok
    assert deferred.due.category == "next_cycle" and deferred.effective == 6.5
    assert firewall.published == datetime(2017, 5, 11, tzinfo=UTC)


INVALID = [  # id, text in register.yml, replaced by, rule, line, what the line says
    ("base not the vector's", "    base: 9.8\n", "    base: 9.1\n", "register-score", 11,
     "entries[0].base: 9.1 is not what the vector gives (9.8)"),
    ("effective not the effective vector's", "    effective: 8.8\n", "    effective: 7.5\n",
     "register-score", 13, "entries[0].effective: 7.5 is not what the vector gives (8.8)"),
    ("severity not the effective score's", "    severity: High\n    controls: [mg",
     "    severity: Critical\n    controls: [mg", "register-score", 14,
     "entries[0].severity: Critical is not what the vector gives (High)"),
    ("category not the effective score's", "      category: within_30d\n      deadline: 2021",
     "      category: emergency_72h\n      deadline: 2021", "register-due", 19,
     "entries[0].due.category: emergency_72h but effective 8.8 gives within_30d"),
    ("deadline later than 30 days", "deadline: 2021-08-10", "deadline: 2021-08-13",
     "register-due", 20, "later than within_30d allows (at the latest 2021-08-12T00:00:00"),
    ("malformed vector", "vector: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H\n",
     "vector: CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:Q\n", "register-vector", 27,
     "A cannot be 'Q' (allowed: H, L, N)"),
    ("effective vector changes a base metric",
     "effective_vector: CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:N/A:H\n",
     "effective_vector: CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:N/A:H/E:H\n", "register-vector", 46,
     "the effective vector changes base or temporal metrics"),
    ("impossible date", "published: 2025-02-04", "published: 2025-02-30", "register-time", 40,
     "published '2025-02-30' is not a real date: month 2 has no day 30"),
    ("unknown decision", "decision: defer", "decision: accept", "schema", 33,
     "must be one of patch, mitigate, defer (got 'accept')"),
    ("neither advisory nor cves", "    advisory: ICSA-17-131-01\n    cves: [CVE-2017-7935]\n",
     "", "schema", 41, "entries[2]: name the advisory, the CVEs, or both"),
    ("not a CVE id", "cves: [CVE-2017-7935]", "cves: [2017-7935]", "schema", 43,
     "a CVE id like CVE-2024-48849 (got '2017-7935')"),
    ("unknown key", "    owner: Alice Chen\n", "    owner: Alice Chen\n    approver: Dana\n",
     "schema", 40, "unknown key 'approver'"),
]


@pytest.mark.parametrize("old,new,rule,line,fragment", [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_a_register_that_contradicts_itself_is_refused(tmp_path, old, new, rule, line,
                                                       fragment):
    text = (RISK / "register.yml").read_text()
    assert text.count(old) == 1
    path = tmp_path / "register.yml"
    path.write_text(text.replace(old, new))
    with pytest.raises(PlaybookError) as e:
        load_register(path)
    (problem,) = e.value.problems
    assert (problem.rule, problem.line) == (rule, line), str(problem)
    assert fragment in problem.message


def test_every_problem_of_a_register_is_reported_at_once(tmp_path):
    text = (RISK / "register.yml").read_text()
    text = text.replace("    base: 9.8\n", "    base: 9.1\n").replace(
        "deadline: 2021-08-10", "deadline: 2021-08-13").replace(
        "published: 2025-02-04", "published: 2025-02-30")
    path = tmp_path / "register.yml"
    path.write_text(text)
    with pytest.raises(PlaybookError) as e:
        load_register(path)
    assert [(p.rule, p.line) for p in e.value.problems] == [
        ("register-score", 11), ("register-due", 20), ("register-time", 40)]


@pytest.mark.parametrize("fields,what", [
    ({"rationale": " "}, "rationale must be given"),
    ({"owner": ""}, "owner must be given"),
    ({"advisory": None, "cves": ()}, "an advisory or a CVE must be given"),
    ({"decision": "accept"}, "decision 'accept' is not one of patch, mitigate, defer")],
    ids=["blank rationale", "no owner", "neither advisory nor CVE", "unknown decision"])
def test_the_writer_refuses_an_entry_the_schema_would_refuse(fields, what):
    scored = score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    args = {"asset": "lab-plc-1", "decision": "patch", "rationale": "r", "owner": "o",
            "advisory": "ICSA-21-194-02", "cves": (), **fields}
    with pytest.raises(RiskError, match=f"entry for lab-plc-1: {what}"):
        register_entry(scored, due(scored.effective, parse_when("2026-11-20")), **args)
