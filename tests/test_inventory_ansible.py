"""Every shipped inventory is one Ansible reads without a warning (issue 14): real
`ansible-inventory --list`, reading no user configuration and writing only under tmp."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otpatch.modules.contract.yamlsrc import read_yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "inventory"
ANSIBLE_INVENTORY = Path(sys.executable).parent / "ansible-inventory"
GROUP_KEYS = {"hosts", "vars", "children"}


def is_inventory(path: Path) -> bool:
    """Ansible's YAML inventory by content: every top-level value a group (hosts, vars,
    children, or nothing). Controls, register keys and firewall policies are not."""
    data = read_yaml(path).data
    return all(body is None or (isinstance(body, dict) and set(body) <= GROUP_KEYS)
               for body in data.values())


SHIPPED = [p for p in sorted((ROOT / "inventory").glob("*.yml")) if is_inventory(p)]


def ansible_inventory(path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """`ansible-inventory -i path --list` with an empty configuration in tmp_path, HOME and
    every folder Ansible writes to there, only the YAML inventory plugin enabled."""
    config = tmp_path / "ansible.cfg"
    config.write_text("")
    env = {"PATH": str(ANSIBLE_INVENTORY.parent) + ":/usr/bin:/bin", "HOME": str(tmp_path),
           "LANG": "C.UTF-8", "ANSIBLE_CONFIG": str(config),
           "ANSIBLE_HOME": str(tmp_path / "ansible"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible" / "tmp"),
           "ANSIBLE_INVENTORY_ENABLED": "yaml", "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
           "ANSIBLE_DEPRECATION_WARNINGS": "true", "ANSIBLE_NOCOLOR": "true"}
    return subprocess.run([str(ANSIBLE_INVENTORY), "-i", str(path), "--list"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_the_shipped_inventories_are_found_by_content():
    assert [p.name for p in SHIPPED] == ["lab.yml", "plant-example.yml"]
    assert not is_inventory(ROOT / "inventory" / "lab-controls.yml")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_ansible_reads_a_shipped_inventory_without_a_warning(path, tmp_path):
    done = ansible_inventory(path, tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    hostvars = json.loads(done.stdout)["_meta"]["hostvars"]
    assert hostvars and all("serial" not in v and v.get("otpatch_device")
                            for v in hostvars.values())


def test_the_old_name_is_what_ansible_warns_about(tmp_path):
    """The check above can fail: Ansible does warn about `serial`."""
    done = ansible_inventory(FIXTURES / "deprecated-serial.yml", tmp_path)
    assert done.returncode == 0
    assert "[WARNING]: Found variable using reserved name 'serial'" in done.stderr
