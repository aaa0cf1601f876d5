"""An ansible.playbook step inside an otpatch run: real ansible-runner, events journaled."""
from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from otpatch.engine import runs
from otpatch.engine.display import PlainDisplay
from otpatch.engine.journal import Journal
from otpatch.engine.record import RunStatus

from conftest import FIXTURES

PLAYBOOK = str(FIXTURES / "engine" / "ansible" / "ews-marker.yml")
INVENTORY = str(FIXTURES / "engine" / "ansible" / "workstation.yml")


@pytest.fixture(autouse=True)
def ansible_home(tmp_path, monkeypatch):
    """Keep Ansible's own folders (~/.ansible) inside the test's temporary directory."""
    monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / "ansible-home"))
    monkeypatch.setenv("ANSIBLE_REMOTE_TEMP", str(tmp_path / "ansible-home" / "tmp"))


@pytest.fixture
def workstation(site_register) -> str:
    """A copy of the workstation inventory whose site register is signed (execute runs
    need it: engine/siteregister.py)."""
    inventory = site_register.copy(INVENTORY)
    site_register.sign(inventory)
    return str(inventory)


@pytest.mark.parametrize("mode,written", [("dry_run", False), ("execute", True)])
def test_ansible_step_runs_in_check_mode_in_a_dry_run(home, tmp_path, mode, written,
                                                      workstation, site_register):
    marker_dir = tmp_path / "ews"
    marker_dir.mkdir()
    progress = runs.start(PLAYBOOK, workstation, mode, {"marker_dir": str(marker_dir)}, home,
                          PlainDisplay(io.StringIO()), register_keys=site_register.pinned)
    assert progress.status is RunStatus.COMPLETED, progress.message
    assert (marker_dir / "marker.txt").exists() is written
    assert progress.results["marker"]["changed"] is True  # would change / changed
    with Journal.open(home, create=False) as journal:
        events = [e for e in journal.entries(progress.run_id) if e.event_type == "ansible_event"]
        assert journal.verify().ok
    assert events and all(e.source == "module:ansible.playbook" for e in events)
    assert any(e.payload.get("task") == "Write the marker file" for e in events)


def test_verify_check_mode_confirms_the_change_by_an_ansible_check_run(home, tmp_path,
                                                                     workstation,
                                                                     site_register):
    marker_dir = tmp_path / "ews"
    marker_dir.mkdir()
    progress = runs.start(PLAYBOOK, workstation, "execute", {"marker_dir": str(marker_dir)},
                          home, PlainDisplay(io.StringIO()),
                          register_keys=site_register.pinned)
    assert progress.status is RunStatus.COMPLETED, progress.message
    assert "verified in check mode: nothing pending" in progress.results["marker"]["msg"]


NEVER_SETTLES = """\
- name: A change that is never in effect (new content on every run, check mode included)
  hosts: all
  gather_facts: false
  tasks:
    - name: Write a fresh value
      ansible.builtin.copy:
        content: "{{ 1000000 | random }}-{{ 1000000 | random }}\\n"
        dest: "{{ marker_dir }}/marker.txt"
        mode: "0644"
"""


def test_verify_check_mode_fails_a_change_still_pending_and_rolls_back(home, tmp_path,
                                                                       workstation,
                                                                       site_register):
    marker_dir = tmp_path / "ews"
    marker_dir.mkdir()
    (tmp_path / "ansible").mkdir()
    (tmp_path / "ansible" / "write_marker.yml").write_text(NEVER_SETTLES)
    (tmp_path / "ansible" / "remove_marker.yml").write_text(
        (FIXTURES / "ansible" / "remove_marker.yml").read_text())
    (tmp_path / "engine" / "ansible").mkdir(parents=True)
    playbook = tmp_path / "engine" / "ansible" / "ews-marker.yml"
    playbook.write_text(Path(PLAYBOOK).read_text())
    progress = runs.start(str(playbook), workstation, "execute",
                          {"marker_dir": str(marker_dir)}, home, PlainDisplay(io.StringIO()),
                          register_keys=site_register.pinned)
    assert progress.status is RunStatus.ROLLED_BACK, progress.message
    assert "verify (check mode)" in progress.message and "not in effect" in progress.message
    assert not (marker_dir / "marker.txt").exists()  # the rollback removed it, and checked


SECRETS = {  # variable -> why it must not reach ansible-runner's artifacts
    "EWS_LOGIN": "the inventory names it as the host's password_env",
    "SITE_API_TOKEN": "*_TOKEN", "vendor_portal_key": "*_KEY (any case)",
    "HISTORIAN_SECRET": "*_SECRET", "OTHER_PASSWORD": "*_PASSWORD",
}


def test_no_secret_is_written_under_otpatch_home_and_artifacts_are_private(home, tmp_path,
                                                                            monkeypatch,
                                                                            site_register):
    inventory = tmp_path / "workstation.yml"
    credentials = "\n          credentials: {username: ews, password_env: EWS_LOGIN}"
    inventory.write_text(Path(INVENTORY).read_text().replace(
        "ansible_connection: local", "ansible_connection: local" + credentials))
    values = {name: f"secret-{name}-{os.urandom(6).hex()}" for name in SECRETS}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    values["OTPATCH_LAB_MGUARD_PASSWORD"] = os.environ["OTPATCH_LAB_MGUARD_PASSWORD"]
    marker_dir = tmp_path / "ews"
    marker_dir.mkdir()
    site_register.sign(inventory)
    progress = runs.start(PLAYBOOK, str(inventory), "execute", {"marker_dir": str(marker_dir)},
                          home, PlainDisplay(io.StringIO()), register_keys=site_register.pinned)
    assert progress.status is RunStatus.COMPLETED, progress.message
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "command" for p in files)  # ansible-runner's record of its env
    assert any(p.name.endswith(".sqlite") or "journal" in p.name for p in files)
    for path in files:
        data = path.read_bytes()
        for name, value in values.items():
            assert value.encode() not in data, f"{name} ({SECRETS.get(name, 'lab')}) in {path}"
    artifacts = next(home.glob("runs/*/ansible"))
    command = json.loads(next(artifacts.rglob("command")).read_text())
    assert "PATH" in command["env"] and "ANSIBLE_HOME" in command["env"]  # Ansible's own stay
    assert not set(values) & set(command["env"])
    for path in [artifacts, *artifacts.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if not path.is_symlink():
            assert mode == (0o700 if path.is_dir() else 0o600), f"{oct(mode)} {path}"
