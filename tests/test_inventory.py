"""Inventories: Ansible's YAML format, typed; broken ones name their rule and line."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from otpatch.modules.contract.errors import InputError, PlaybookError
from otpatch.engine.inventory import empty_inventory, load_inventory, resolve_targets
from otpatch.engine.loader import load_playbook

FIXTURES = Path(__file__).parent / "fixtures" / "inventory"

INVALID = [
    # (fixture, the rule it breaks, the line the problem is reported on)
    ("inline-password.yml", "credential-inline", 9),
    ("ansible-password.yml", "credential-inline", 6),
    ("unknown-key.yml", "schema", 6),
    ("bad-vlan.yml", "schema", 5),
    ("window-order.yml", "window-order", 5),
    ("window-time.yml", "window-time", 5),
    ("approvers-misplaced.yml", "schema", 5),
    ("approver-no-key.yml", "schema", 5),
    ("group-cycle.yml", "group-cycle", 4),
    ("journal-host-duplicate.yml", "journal-host-duplicate", 6),
    ("serial-and-serial-number.yml", "schema", 4),
    ("unknown-device.yml", "schema", 6),
]


@pytest.fixture(scope="module")
def lab():
    return load_inventory(FIXTURES / "lab.yml")


def test_groups_include_their_children_recursively(lab):
    assert lab.groups["io"] == ("lab-cra-1", "lab-cra-2")
    assert set(lab.groups["all"]) == set(lab.hosts) == {
        "lab-plc-1", "lab-plc-2", "lab-cra-1", "lab-cra-2", "lab-mguard-1"}
    assert lab.group_hosts("empty_group") == ()


def test_group_vars_merge_under_host_vars(lab):
    plc1, plc2 = lab.group_hosts("m580_cpus")
    assert (plc1.vendor, plc1.model, plc1.simulator) == ("Schneider Electric",
                                                         "Modicon M580", True)
    assert (plc1.zone, plc2.zone) == ("level2", "level1")  # all.vars, then the host's own
    assert (plc1.serial, plc1.vlan, plc1.firmware) == ("8F3A0012", 10, "v03.20")
    assert plc1.endpoints["modbus"] == "127.0.0.1:5020"
    assert plc1.vars["ansible_connection"] == "local"
    assert plc2.vars["custom"]["rack"] == "A3"
    assert "approvers" not in plc1.vars
    assert lab.hosts["lab-cra-1"].model == "BMECRA31210"


def test_credentials_name_where_the_secret_is(lab):
    fw = lab.hosts["lab-mguard-1"]
    assert dict(fw.credentials) == {"username": "admin", "password_env": "MGUARD_PASSWORD"}
    with pytest.raises(TypeError):
        fw.credentials["password_env"] = "X"


def test_windows_parse_quoted_or_not_and_know_what_they_contain(lab):
    production = lab.windows["production"]
    inside = datetime(2026, 12, 1, 1, 30, tzinfo=timezone.utc)  # 02:30 at +01:00
    assert production.contains(inside)
    assert not production.contains(datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc))
    assert lab.windows["unquoted"].start == datetime(2026, 12, 2, 2, tzinfo=timezone.utc)


def test_approvers_carry_roles_and_one_key_each(lab):
    alice, bob = lab.approvers
    assert (alice.name, alice.roles, alice.public_key_file) == ("Alice Chen",
                                                                ("process_owner",), None)
    assert bob.public_key is None
    assert bob.public_key_file == str(FIXTURES / "keys" / "bob.pub")  # beside the inventory


@pytest.mark.parametrize("name, rule, line", INVALID, ids=[row[0] for row in INVALID])
def test_invalid_inventory_names_its_rule_and_line(name, rule, line):
    with pytest.raises(PlaybookError) as caught:
        load_inventory(FIXTURES / name)
    problems = caught.value.problems
    assert {p.rule for p in problems} == {rule}, [str(p) for p in problems]
    assert line in [p.line for p in problems]


def test_an_inline_secret_is_never_echoed():
    with pytest.raises(PlaybookError) as caught:
        load_inventory(FIXTURES / "inline-password.yml")
    assert "hunter2" not in str(caught.value)
    assert "password_env" in str(caught.value)


def test_content_hash_follows_content(lab, tmp_path):
    copy = tmp_path / "lab.yml"
    copy.write_text("# reworded comment\n" + (FIXTURES / "lab.yml").read_text())
    assert load_inventory(copy).content_hash == lab.content_hash
    assert empty_inventory().content_hash != lab.content_hash


PLAYBOOK = """\
apiVersion: otpatch/v1
kind: Playbook
metadata: {{name: targets, version: 1.0.0}}
targets:
  {target}
initial: first
states:
  first:
    next: completed
"""

TARGET_TROUBLE = [
    ("missing-group", "plc: {group: m580_cpu}", "no group 'm580_cpu'"),
    ("empty-group", "plc: {group: empty_group}", "group 'empty_group'"),
    ("many-hosts-one-target", "plc: {group: m580_cpus}", "has 2 hosts (lab-plc-1, lab-plc-2)"),
]


@pytest.mark.parametrize("target, expected", [row[1:] for row in TARGET_TROUBLE],
                         ids=[row[0] for row in TARGET_TROUBLE])
def test_unresolvable_targets_name_the_target_and_group(lab, tmp_path, target, expected):
    path = tmp_path / "pb.yml"
    path.write_text(PLAYBOOK.format(target=target))
    with pytest.raises(InputError) as caught:
        resolve_targets(load_playbook(path), lab)
    message = str(caught.value)
    assert f"{path}:5:3: [target-unresolved] target plc: " in message
    assert expected in message


def test_targets_resolve_to_their_hosts(lab, tmp_path):
    path = tmp_path / "pb.yml"
    path.write_text(PLAYBOOK.format(target="cpus: {group: m580_cpus, many: true}\n"
                                           "  fw: {group: firewalls}"))
    targets = resolve_targets(load_playbook(path), lab)
    assert [h.name for h in targets["cpus"]] == ["lab-plc-1", "lab-plc-2"]
    assert [h.name for h in targets["fw"]] == ["lab-mguard-1"]
