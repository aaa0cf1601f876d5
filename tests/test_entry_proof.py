"""Before a production device change (issue 11, item 4): now inside the window, the worst
case of the path from the change (a failure, then its rollback) ending before the window
closes, and the downtime already spent plus the worst case within the approved maximum;
otherwise the run waits before the state (exit 3) with the arithmetic, and resumes later.
Dry runs on the simulated clock (tests/fixtures/engine/windowed.yml: `hold` lets simulated
time pass in the downtime budget before the change), and the verdict itself for execute."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import FIXTURES, otpatch_child, run_json

WINDOWED = str(FIXTURES / "engine" / "windowed.yml")
SITE = """all:
  vars:
    approvers:
      - {{name: Alice Chen, roles: [process_owner], public_key: zO2A4snlufbiwze5BL7Ao8FK1JUVPrxkTBJB9IH9OZc=}}
      - {{name: Bernd Maier, roles: [ot_security_officer], public_key: aqyRLV0Z1iNxu9dCvmWrScm5gfz86joaZu6XOmMwmhs=}}
    maintenance_windows:
      production: {{start: "{start}", end: "{end}"}}
"""


def site(tmp_path: Path, minutes_left: float) -> str:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    path = tmp_path / "site.yml"
    path.write_text(SITE.format(start=(now - timedelta(hours=1)).isoformat(),
                                end=(now + timedelta(minutes=minutes_left)).isoformat()))
    return str(path)


def dry_run(home: Path, tmp_path: Path, hold: str, minutes_left: float = 600):
    device = tmp_path / "plc.json"
    done = otpatch_child(home, "run", WINDOWED, "-i", site(tmp_path, minutes_left),
                         "--dry-run", "--json", "-e", f"device={device}", "-e", f"hold={hold}")
    return done, device


def proofs(home: Path, run_id: str) -> list:
    from otpatch.engine.journal import Journal

    with Journal.open(home, create=False) as journal:
        events = [e.event() for e in journal.entries(run_id) if e.event_type == "requirement"]
    return [e for e in events if e.requirement_kind == "entry_proof"]


def test_a_change_that_fits_is_entered_and_its_arithmetic_recorded(home, tmp_path):
    done, device = dry_run(home, tmp_path, "1m")
    doc = run_json(done)
    assert done.returncode == 0 and doc["status"] == "completed"
    (proof,) = proofs(home, doc["run_id"])
    assert proof.passed and proof.state == "change" and proof.simulated
    assert "the path from change needs 4m in the worst case (fits)" in proof.detail
    assert ("downtime: 1m spent + 4m worst case (change fails, then rollback -> restore) "
            "= 5m, within the 10m approved") in proof.detail
    assert json.loads(device.read_text()) == {"firmware": "v2"}


def test_downtime_over_the_approved_maximum_waits_before_the_change(home, tmp_path):
    done, device = dry_run(home, tmp_path, "7m")
    doc = run_json(done)
    assert done.returncode == 3 and doc["status"] == "awaiting" and doc["state"] == "hold"
    assert ("downtime: 7m spent + 4m worst case (change fails, then rollback -> restore) = "
            "11m, over the 10m approved; not entered") in doc["message"]
    assert not device.exists()  # nothing reached the device
    again = otpatch_child(home, "resume", doc["run_id"], "--json")
    assert again.returncode == 3 and "over the 10m approved" in run_json(again)["message"]
    assert not device.exists()
    assert otpatch_child(home, "journal", "verify").returncode == 0


def test_a_window_too_short_for_the_change_and_its_rollback_waits(home, tmp_path):
    done, device = dry_run(home, tmp_path, "3m", minutes_left=6)
    doc = run_json(done)
    assert done.returncode == 3 and doc["state"] == "hold"
    assert "the path from change needs 4m in the worst case (does not fit)" in doc["message"]
    assert not device.exists()


def test_a_failure_in_the_window_always_takes_its_rollback(home, tmp_path):
    """The arithmetic guards entering a change, never a rollback: here the change is
    entered within budget (5m + 4m worst case), takes 4m and fails, and its restore runs
    although the downtime then ends over its limit."""
    device = tmp_path / "plc.json"
    done = otpatch_child(home, "run", WINDOWED, "-i", site(tmp_path, 600), "--dry-run",
                         "--json", "-e", f"device={device}", "-e", "hold=5m",
                         "-e", "settle=4m", "-e", "verify_ok=no")
    doc = run_json(done)
    assert done.returncode == 1 and doc["status"] == "rolled_back", doc["message"]
    assert [p.state for p in proofs(home, doc["run_id"])] == ["change"]  # not the restore
    assert json.loads(device.read_text()) == {"firmware": "v1"}  # restored
    from otpatch.engine.journal import Journal

    with Journal.open(home, create=False) as journal:
        ended = journal.entries(doc["run_id"])[-1].event()
    assert ended.budgets["downtime"]["over"] and ended.budgets["downtime"]["used"] == 660


# -- the verdict, execute policy --------------------------------------------------------------

def verdict(now: datetime, start: datetime, end: datetime, spent: float = 0.0):
    from otpatch.engine import guards
    from otpatch.engine.inventory import MaintenanceWindow

    gate = guards.GateContext(policy=guards.POLICIES["execute"], now=now.timestamp(),
                              params={}, facts={}, windows={})
    use = guards.DowntimeUse("downtime", 600.0, spent, 240.0, "change fails, then rollback")
    return guards.entry_proof("change", gate, MaintenanceWindow("production", start, end),
                              240.0, (use,))


@pytest.mark.parametrize("offset,spent,passed,says", [
    (timedelta(hours=-1), 0, False, "opens 2030-06-01T20:00:00+00:00: not yet"),
    (timedelta(hours=1), 0, True, "3h left, the path from change needs 4m in the worst case "
                                  "(fits)"),
    (timedelta(hours=3, minutes=57), 0, False, "3m left, the path from change needs 4m in "
                                               "the worst case (does not fit)"),
    (timedelta(hours=5), 0, False, "closed 2030-06-02T00:00:00+00:00"),
    (timedelta(hours=1), 400, False, "6m40s spent + 4m worst case (change fails, then "
                                     "rollback) = 10m40s, over the 10m approved"),
], ids=["before the window", "inside", "too little left", "after the window", "downtime"])
def test_the_execute_verdict_before_a_device_change(offset, spent, passed, says):
    start = datetime(2030, 6, 1, 20, tzinfo=timezone.utc)
    seen = verdict(start + offset, start, start + timedelta(hours=4), spent)
    assert seen.passed is passed and says in seen.detail and not seen.simulated
    assert seen.detail.endswith("not entered") is not passed


# -- time you can trust (issue 11, item 8) --------------------------------------------------------

def test_the_os_reports_the_clock_on_linux():
    import sys

    from otpatch.modules.contract.platform import clock_sync

    seen = clock_sync()
    if not sys.platform.startswith("linux"):
        assert seen.synchronised is None and "not read" in seen.how
        return
    assert isinstance(seen.synchronised, bool) and seen.how.startswith("adjtimex: state ")
    assert seen.max_error is not None and seen.max_error >= 0
    assert seen.offset is not None and abs(seen.offset) < 3600  # the kernel's own figure


def test_a_site_that_requires_synchronised_time_gets_the_os_s_word_at_the_window(
        home, tmp_path, site_register):
    """No clock is faked: this host's kernel says whether it is synchronised (adjtimex), and
    the window gate of an execute run follows it; the run records what the OS said."""
    from otpatch.engine.journal import Journal
    from otpatch.modules.contract.platform import clock_sync

    inventory = Path(site(tmp_path, 600))
    inventory.write_text(inventory.read_text() + "    time_sync: {required: true, max_error: 1s}\n")
    site_register.sign(inventory)  # an execute run needs the site register signed
    done = otpatch_child(home, "run", WINDOWED, "-i", str(inventory), "--execute",
                         "--operator", "Chen Wei", "-e", f"device={tmp_path / 'plc.json'}")
    assert done.returncode == 3  # the sign-off is missing in any case
    run_id = run_json(otpatch_child(home, "status", "--json"))["runs"][-1]["run_id"]
    with Journal.open(home, create=False) as journal:
        events = [e.event() for e in journal.entries(run_id)]
    started = events[0]
    (window,) = [e for e in events if getattr(e, "requirement_kind", "") == "window"]
    now = clock_sync()
    assert started.clock["how"].split(",")[0] == now.how.split(",")[0]
    if now.synchronised and now.max_error is not None and now.max_error <= 1:
        assert window.passed and "open" in window.detail
    else:
        assert not window.passed
        assert "the site's time policy" in window.detail
