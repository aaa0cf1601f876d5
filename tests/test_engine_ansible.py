"""An ansible.playbook step inside an otpatch run: real ansible-runner, events journaled."""
from __future__ import annotations

import io

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


@pytest.mark.parametrize("mode,written", [("dry_run", False), ("execute", True)])
def test_ansible_step_runs_in_check_mode_in_a_dry_run(home, tmp_path, mode, written):
    marker_dir = tmp_path / "ews"
    marker_dir.mkdir()
    progress = runs.start(PLAYBOOK, INVENTORY, mode, {"marker_dir": str(marker_dir)}, home,
                          PlainDisplay(io.StringIO()))
    assert progress.status is RunStatus.COMPLETED, progress.message
    assert (marker_dir / "marker.txt").exists() is written
    assert progress.results["marker"]["changed"] is True  # would change / changed
    with Journal.open(home, create=False) as journal:
        events = [e for e in journal.entries(progress.run_id) if e.event_type == "ansible_event"]
        assert journal.verify().ok
    assert events and all(e.source == "module:ansible.playbook" for e in events)
    assert any(e.payload.get("task") == "Write the marker file" for e in events)
