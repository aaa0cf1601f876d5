"""Controls lower (never raise) effective scores; due dates; urgency order; playbooks; the step."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from conftest import FIXTURES, ROOT, SHARED
from otpatch.engine.loader import load_playbook
from otpatch.engine.inventory import load_inventory
from otpatch.modules.advisories.load import load_advisories
from otpatch.modules.advisories.match import match, urgency_key
from otpatch.modules.advisories.playbooks import load_playbooks
from otpatch.modules.advisories.step import AdvisoriesMatch
from otpatch.modules.risk.controls import load_controls

ADV = FIXTURES / "advisories"
REAL = SHARED / "data" / "csaf" / "advisories"
FILES = [REAL / f for f in ("icsa-21-194-02.json", "icsa-17-103-02a.json",
                            "icsa-25-035-04.json", "icsa-17-250-02.json")]


@pytest.fixture(scope="module")
def plant():
    return load_inventory(ADV / "plant.yml")


@pytest.fixture(scope="module")
def advisories():
    return load_advisories(FILES).advisories


def _one(matches, host, cve):
    return next(m for m in matches if (m.host, m.cve) == (host, cve))


def test_a_control_covering_the_asset_lowers_the_effective_score(plant, advisories):
    controls = load_controls(ADV / "controls.yml")
    m = _one(match(plant, advisories, controls), "plc-a", "CVE-2021-22779")
    assert (m.urgency.base, m.effective, m.urgency.controls) == (9.8, 8.8,
                                                              ("mguard-blocks-modbus",))
    assert m.urgency.effective_vector.endswith("/MAV:A") and m.due_category == "within_30d"
    plain = _one(match(plant, advisories), "plc-a", "CVE-2021-22779")
    assert (plain.effective, plain.due_category) == (9.8, "emergency_72h")


def test_a_control_that_would_raise_the_score_is_not_applied_and_said(plant, advisories):
    controls = load_controls(ADV / "controls.yml")
    local = _one(match(plant, advisories, controls), "ews-1", "CVE-2021-22778")  # AV:L
    assert (local.urgency.base, local.effective, local.urgency.controls) == (8.6, 8.6, ())
    assert "ews-adjacent-only (MAV:A) not applied: it would raise 8.6" in local.reason
    remote = _one(match(plant, advisories, controls), "ews-1", "CVE-2021-22779")  # AV:N
    assert remote.urgency.controls == ("ews-adjacent-only",)
    assert remote.effective < remote.urgency.base


def test_due_dates_count_from_the_release_date_named(plant, advisories):
    initial = _one(match(plant, advisories), "ews-2", "CVE-2017-7574")
    current = _one(match(plant, advisories, due_from="current"), "ews-2", "CVE-2017-7574")
    assert initial.due_basis == "initial_release_date"
    assert current.due_basis == "current_release_date"
    assert initial.deadline == datetime(2017, 4, 16, tzinfo=timezone.utc)  # 13 Apr + 72 h
    assert current.deadline == datetime(2017, 7, 23, tzinfo=timezone.utc)  # 20 Jul + 72 h


def test_matches_come_most_urgent_first(plant, advisories):
    found = match(plant, advisories, load_controls(ADV / "controls.yml"))
    assert found == sorted(found, key=urgency_key)
    order = {"emergency_72h": 0, "within_30d": 1, "next_cycle": 2}
    ranks = [order[m.due_category] for m in found]
    assert ranks == sorted(ranks) and ranks[0] == 0 and ranks[-1] == 2


@pytest.mark.parametrize("host, cve, books", [
    ("plc-a", "CVE-2021-22779", ("m580-cpu@2.0.0",)),  # BMEP581020 is BMEP58*
    ("plc-safety", "CVE-2021-22779", ("m580-cpu@2.0.0",)),
    ("plc-hsby", "CVE-2021-22779", ()),  # BMEH584040 is not BMEP58*
    ("fw-old", "CVE-2013-6466", ("mguard@1.1.0",)),  # model, vendor spelled another way
    ("fw-rs2000", "CVE-2013-6466", ()),
])
def test_the_playbook_that_applies_is_named(plant, advisories, host, cve, books):
    refs, problems = load_playbooks(ADV / "playbooks", load_playbook)
    assert problems == [] and len(refs) == 2
    assert _one(match(plant, advisories, playbooks=refs), host, cve).playbooks == books


def test_a_playbook_that_fails_to_load_is_reported_and_skipped(tmp_path):
    (tmp_path / "broken.yml").write_text("apiVersion: otpatch/v1\nkind: Playbook\n")
    (tmp_path / "notes.txt").write_text("not a playbook")
    refs, problems = load_playbooks(tmp_path, load_playbook)
    assert refs == [] and len(problems) == 1 and "broken.yml: skipped" in problems[0]
    assert "no such folder" in load_playbooks(tmp_path / "none", load_playbook)[1][0]


def _ctx(plant):
    clock = SimpleNamespace(now=time.time, simulated=True)
    return SimpleNamespace(inventory=plant, clock=clock, playbook_dir=ROOT,
                           hosts=lambda target: plant.group_hosts(target))


def test_the_playbook_step_records_the_matches_as_facts(plant):
    args = {"advisories": [str(FILES[2]), "tests/fixtures/advisories/broken"],
            "controls_file": "tests/fixtures/advisories/controls.yml", "target": "m580_cpus"}
    result = AdvisoriesMatch().run(args, _ctx(plant))
    facts = result.facts["advisories"]
    assert not result.failed and facts["count"] == 4  # plc-a, plc-b, plc-hsby, plc-safety
    assert {m["host"] for m in facts["matches"]} == {"plc-a", "plc-b", "plc-hsby",
                                                     "plc-safety"}
    assert len(facts["skipped"]) == 4 and facts["most_urgent"]["cvss"]["controls"]
    assert "4 affected asset/CVE pair(s)" in result.msg


def test_the_playbook_step_fails_plainly_on_a_missing_file(plant):
    result = AdvisoriesMatch().run({"advisories": "no/such/folder"}, _ctx(plant))
    assert result.failed and "no/such/folder: no such file or folder" in result.msg


@pytest.mark.parametrize("model, family, applies", [
    ("FL MGUARD RS4000", "FL MGUARD RS4000", True),
    ("FL MGUARD RS4000 TX/TX", "FL MGUARD RS4000", True),  # the label's port suffix
    ("FL MGUARD RS4000 TX/TX VPN", "FL MGUARD RS4000", True),
    ("fl mguard  rs4000", "FL MGUARD RS4000", True),  # spelling and spacing
    ("FL MGUARD RS4004", "FL MGUARD RS4000", False),  # another model
    ("FL MGUARD RS40004", "FL MGUARD RS4000", False),
    ("FL MGUARD", "FL MGUARD RS4000", False),  # less than the family
    ("FL MGUARD 4302", "FL MGUARD RS4000", False),
])
def test_a_playbook_for_a_model_applies_to_its_variants(model, family, applies):
    from otpatch.modules.advisories.playbooks import applies as applies_to

    entry = SimpleNamespace(vendor="Phoenix Contact", model=family, part_numbers=())
    host = SimpleNamespace(vendor="Phoenix Contact", model=model, part_number="")
    assert applies_to(entry, host) is applies


def test_the_playbooks_are_found_beside_the_inventory_from_any_folder(tmp_path, monkeypatch,
                                                                       capsys):
    """Run from another folder, `advisories match -i inventory/lab.yml` still names the
    project's playbooks (playbooks/ beside the inventory's folder)."""
    import json

    from otpatch.engine.cli import main

    monkeypatch.chdir(tmp_path)
    advisory = REAL / "icsa-21-194-02.json"
    assert main(["advisories", "match", str(advisory), "-i",
                 str(ROOT / "inventory" / "lab.yml"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    books = {b for m in doc["matches"] for b in m["playbooks"]}
    assert any(b.startswith("m580-firmware-update@") for b in books), books
