"""`otpatch firewall diff` (modules/firewall/diff.py, diff_cli.py): rules compared by what they
do, so the 8.1 TARGET -> TARGET_REF rename is a migration and not a lost rule; hand-written
before/after pairs (tests/fixtures/firewall/diff/<case>/, each with the text the command
prints: OTPATCH_UPDATE_GOLDEN=1 rewrites it), and the simulator's own exports before and
after a firmware update, with and without a migration that drops a rule."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from otpatch.engine.cli import main
from otpatch.engine.simlab import check_faults
from otpatch.modules.firewall.diff import diff
from otpatch.modules.firewall.ruleset import read
from otpatch.modules.mguard import atv, profile
from otpatch.modules.mguard.simdevice import (INSTALL_S, REBOOT_S, UPDATE_DROPS, MguardDevice,
                                              firmware_image)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "firewall" / "diff"

# case, exit code, rule changes (kind, table, position before, position after), lost
# (table, position), migrations, setting changes (area, subject, before, after)
CASES = [
    ("rule-removed", 1, [("removed", "incoming", 2, None)], [("incoming", 2)], 0, []),
    ("rule-changed", 1, [("changed", "incoming", 2, 2)], [("incoming", 2)], 0, []),
    ("rule-changed-no-comment", 1, [("changed", "incoming", 3, 3)], [("incoming", 3)], 0, []),
    ("rule-added", 1, [("added", "incoming", None, 4)], [], 0, []),
    ("reordered", 1, [("moved", "incoming", 2, 1)], [], 0, []),
    ("migration-only", 0, [], [], 2, []),
    ("comment-edited", 0, [("recommented", "incoming", 4, 4)], [], 0, []),
    ("syslog-disabled", 1, [], [], 0, [("syslog", "remote syslog", "yes", "no")]),
    ("tunnel-stopped", 1, [], [], 0,
     [("tunnel", "tunnel remote-service", "started", "stopped")]),
    ("unchanged", 0, [], [], 0, []),
]


def pair(case: str):
    folder = FIXTURES / case
    return tuple(read((folder / f"{side}.atv").read_bytes(), f"{side}.atv")
                 for side in ("before", "after"))


def command(before: str, after: str, as_json: bool = False) -> int:
    """`otpatch firewall diff BEFORE AFTER [--json]`, its exit code."""
    return main(["firewall", "diff", before, after, *(["--json"] if as_json else [])])


def position(rule):
    return rule.position if rule else None


@pytest.mark.parametrize("case, code, changes, lost, migrations, settings", CASES,
                         ids=[c[0] for c in CASES])
def test_each_pair_diffs_by_meaning(case, code, changes, lost, migrations, settings):
    found = diff(*pair(case))
    assert [(c.kind, c.table, position(c.before), position(c.after))
            for c in found.rules] == changes
    assert [(r.table, r.position) for r in found.lost] == lost
    assert len(found.migrations) == migrations
    assert [(s.area, s.subject, s.before, s.after) for s in found.settings] == settings
    assert found.equivalent is (code == 0)


@pytest.mark.parametrize("case, code", [c[:2] for c in CASES], ids=[c[0] for c in CASES])
def test_the_command_prints_its_golden_text_and_says_by_its_exit_code(case, code, capsys,
                                                                      monkeypatch):
    monkeypatch.chdir(FIXTURES / case)
    assert command("before.atv", "after.atv") == code
    got = capsys.readouterr().out
    golden = FIXTURES / case / "expected.txt"
    if os.environ.get("OTPATCH_UPDATE_GOLDEN"):
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8"), \
        f"{case}/expected.txt differs: OTPATCH_UPDATE_GOLDEN=1 rewrites it; look at the diff"


def test_a_changed_rule_says_what_changed():
    (changed,) = diff(*pair("rule-changed")).rules
    assert changed.fields_changed() == ["destination port"]
    assert changed.before.comment == changed.after.comment  # paired by its comment
    (by_slot,) = diff(*pair("rule-changed-no-comment")).rules
    assert by_slot.fields_changed() == ["action"] and not by_slot.before.comment


def test_the_81_migration_is_counted_and_said_not_lost():
    before, after = pair("migration-only")
    found = diff(before, after)
    assert found.renamed() == {"TARGET -> TARGET_REF": 2}
    assert [(b.table, a.action_setting) for b, a in found.migrations] == [
        ("vpn:remote-service:incoming", "TARGET_REF"),
        ("vpn:remote-service:outgoing", "TARGET_REF")]
    assert not found.lost and found.equivalent
    assert before.tunnels[0].started is after.tunnels[0].started is True  # VPN_ENABLED read


def test_a_connection_gone_loses_its_rules_and_says_the_tunnel_is_absent():
    text = (FIXTURES / "unchanged" / "before.atv").read_text()
    doc = atv.parse(text)
    del doc.settings["VPN_CONNECTION"]
    found = diff(read(text.encode(), "before.atv"), read(atv.dump(doc).encode(), "after.atv"))
    assert [(c.kind, c.table) for c in found.rules] == [
        ("removed", "vpn:remote-service:incoming"), ("removed", "vpn:remote-service:outgoing")]
    assert found.counts["vpn:remote-service:incoming"] == (1, 0) and len(found.lost) == 2
    assert [(s.subject, s.after) for s in found.settings] == [
        ("tunnel remote-service", "absent"), ("tunnel remote-service networks", "absent")]

def test_json_is_one_document_with_counts_changes_and_what_was_lost(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES / "rule-removed")
    assert command("before.atv", "after.atv", as_json=True) == 1
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"before", "after", "counts", "rules", "migrations", "settings",
                        "lost", "equivalent"}
    assert doc["counts"]["incoming"] == {"before": 4, "after": 3}
    assert doc["counts"]["total"] == {"before": 7, "after": 6}
    assert set(doc["rules"]) == {"removed", "changed", "moved", "added", "recommented"}
    (removed,) = doc["rules"]["removed"]
    assert removed["after"] is None and removed["before"]["position"] == 2
    opened = (FIXTURES / "rule-removed" / "before.atv").read_text().splitlines()
    assert opened[removed["before"]["line"] - 1].strip() == "{"  # where the rule's row opens
    assert removed["before"]["path"] == "FW_INCOMING.1"
    assert doc["lost"] == [removed["before"]] and doc["equivalent"] is False
    assert doc["migrations"] == {"count": 0, "renamed": {}, "rules": []}


def test_the_same_inputs_give_the_same_output(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES / "reordered")
    outputs = []
    for _ in range(2):
        command("before.atv", "after.atv", as_json=True)
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]


BAD = [  # file, what the one line says
    ("bad/truncated.atv", "bad/truncated.atv:29:3: row opened here is not closed"),
    ("bad/port-out-of-range.atv", "bad/port-out-of-range.atv:20: port range '70000' is "
                                  "outside 0-65535"),
    ("no-such.atv", "profile no-such.atv: cannot read"),
    ("bad", "profile bad: cannot read"),  # a directory
]


@pytest.mark.parametrize("name, says", BAD, ids=[b[0] for b in BAD])
@pytest.mark.parametrize("side", ["before", "after"])
def test_a_profile_that_cannot_be_read_is_one_line_and_exit_2(name, says, side, capsys,
                                                              monkeypatch):
    monkeypatch.chdir(FIXTURES)
    good = "unchanged/before.atv"
    assert command(name if side == "before" else good, name if side == "after" else good) == 2
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert not out and line.startswith("otpatch: ") and says in line


# -- the simulator: its exports before and after a firmware update ---------------------------

def updated(faults: tuple[str, ...] = (), firmware: str = "10.3.1", to: str = "10.5.0"):
    """The simulated mGuard's profile exported before and after a firmware update."""
    device = MguardDevice("lab-mguard-1", firmware=firmware, faults=frozenset(faults))
    before = device.export_profile().encode()
    device.upload_firmware(firmware_image(to))
    device.install_firmware()
    device.advance(INSTALL_S + REBOOT_S + 1)
    assert (device.phase, device.firmware) == ("ready", to)
    after = device.export_profile().encode()
    return (read(before, f"as-found-{firmware}.atv"), read(after, f"updated-{to}.atv"),
            before, after)


def test_an_update_that_migrates_well_loses_nothing():
    before, after, raw_before, raw_after = updated()
    found = diff(before, after)
    assert (found.before_version, found.after_version) == ("10.3.1.default", "10.5.0.default")
    assert found.equivalent and not found.lost and not found.rules and not found.settings
    assert found.counts["total"] == (16, 16)
    assert profile.summary(profile.load(raw_before).document)["rules_digest"] == \
        profile.summary(profile.load(raw_after).document)["rules_digest"]


def test_an_update_that_drops_a_rule_is_caught_with_exactly_that_rule():
    before, after, _, _ = updated(("update_drops_rule",))
    found = diff(before, after)
    dropped = before.tables["incoming"][UPDATE_DROPS[1]]
    assert found.lost == (dropped,) and found.lost[0].line == dropped.line
    assert [(c.kind, c.before) for c in found.rules] == [("removed", dropped)]
    assert found.counts["incoming"] == (8, 7) and found.counts["total"] == (16, 15)


def test_an_update_across_81_renames_the_vpn_rules_actions_and_loses_nothing():
    before, after, raw_before, raw_after = updated(firmware="8.0.2", to="8.9.3")
    assert b"TARGET_REF" not in raw_before and b"VPN_ENABLED" in raw_before
    found = diff(before, after)
    assert found.renamed() == {"TARGET -> TARGET_REF": 4}
    assert all(b.table.startswith("vpn:") for b, _ in found.migrations)
    assert found.equivalent and not found.lost
    assert profile.summary(profile.load(raw_before).document)["rules_digest"] == \
        profile.summary(profile.load(raw_after).document)["rules_digest"]


def test_an_update_that_resets_syslog_is_a_setting_change_not_a_lost_rule():
    found = diff(*updated(("syslog_gap",))[:2])
    assert not found.lost and not found.equivalent
    assert [s.describe() for s in found.settings] == ["remote syslog: yes -> no"]


def test_sim_up_accepts_the_fault():
    assert check_faults(["update_drops_rule", "update_drops_rule@lab-mguard-1"]) == (
        "update_drops_rule", "update_drops_rule@lab-mguard-1")


DIGEST_RULE = 'FW_INCOMING = {\n  {\n    PROTOCOL = "tcp"\n    DST_PORT = "502"\n    %s\n  }\n}\n'


@pytest.mark.parametrize("one, other, same", [
    ('TARGET = "accept"', 'TARGET_REF = "accept"', True),
    ('TARGET_REF = { rowref = "set-a" }', 'TARGET_REF = { rowref = "set-a" }', True),
    ('TARGET_REF = { rowref = "set-a" }', 'TARGET_REF = { rowref = "set-b" }', False),
    ('TARGET = "accept"', 'TARGET = "drop"', False),
], ids=["renamed-81", "same-rule-set", "other-rule-set", "other-action"])
def test_the_records_rules_digest_follows_the_action_not_its_setting_name(one, other, same):
    def digest(action: str) -> str:
        text = "#version 10.3.1.default\n" + DIGEST_RULE % action
        return profile.summary(atv.parse(text))["rules_digest"]
    assert (digest(one) == digest(other)) is same
