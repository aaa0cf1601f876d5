"""Backups as artifacts (issue 16, item 2): `otpatch backup` stores each device's backup by
SHA-256 with its provenance, `backup verify` re-hashes (a damaged object named, exit 1), and
the shipped restore-test playbook imports a backup into the lab mGuard simulator and
verifies it; `backup list` then shows the test. A real device is never asked."""
from __future__ import annotations

import copy
import json
import socket
import threading

from conftest import ROOT, otpatch_child, run_json

RESTORE_TEST = str(ROOT / "playbooks" / "backup-restore-test.yml")
RESTORE_TEST_M580 = str(ROOT / "playbooks" / "backup-restore-test-m580.yml")


def _listed(home, inventory) -> dict:
    done = otpatch_child(home, "backup", "list", "-i", str(inventory), "--json")
    assert done.returncode == 0, done.stderr
    return {(b["host"], b["artifact"]): b for b in json.loads(done.stdout)["backups"]}


def _drop_a_rule(device) -> None:
    """The lab unit's running configuration changed behind otpatch's back (one incoming
    rule gone), so the restore test's import has something to put back."""
    config = copy.deepcopy(device.config)
    config.settings["FW_INCOMING"].rows.pop()
    device.config = config


def test_a_backup_is_stored_verified_and_restores_into_the_lab_simulator(home, lab):
    done = otpatch_child(home, "backup", "-i", str(lab.inventory), "--host", "lab-mguard-1",
                         "--host", "lab-plc-1", "--operator", "Chen Wei", "--json",
                         timeout=120)
    assert done.returncode == 0, done.stderr
    taken = {h["host"]: h for h in run_json(done)["hosts"]}
    assert {h["status"] for h in taken.values()} == {"stored"}
    profile = taken["lab-mguard-1"]["sha256"]
    assert taken["lab-mguard-1"]["summary"]["rules"] == 16
    stored = home / "backups" / "sha256" / profile[:2] / profile
    assert stored.stat().st_mode & 0o777 == 0o600
    assert stored.parent.stat().st_mode & 0o777 == 0o700

    listed = _listed(home, lab.inventory)
    mguard = listed[("lab-mguard-1", "mguard_profile")]
    assert mguard["provenance"]["said"] == \
        "read by mguard.export_profile from simulator lab-mguard-1"
    assert mguard["operator"] == "Chen Wei" and mguard["restore_tests"] == []
    plc = listed[("lab-plc-1", "m580_application")]
    assert plc["summary"]["checksum"].startswith("crc32:")
    assert plc["restore_test_playbook"] == "playbooks/backup-restore-test-m580.yml"

    _drop_a_rule(lab.device("lab-mguard-1"))
    run = otpatch_child(home, "run", RESTORE_TEST, "-i", str(lab.inventory), "--dry-run",
                        "-e", f"backup={profile[:12]}", "--json", timeout=180)
    assert run.returncode == 0, run.stderr
    result = run_json(run)
    assert result["status"] == "completed", result
    assert lab.device("lab-mguard-1").imports == 1  # put back, not already in effect
    text = otpatch_child(home, "backup", "list", "-i", str(lab.inventory)).stdout
    assert f"restore test:  passed: run {result['run_id']}, dry_run into simulator " \
           "lab-mguard-1" in text
    tests = _listed(home, lab.inventory)[("lab-mguard-1", "mguard_profile")]["restore_tests"]
    assert [(t["run_id"], t["status"]) for t in tests] == [(result["run_id"], "completed")]

    ok = otpatch_child(home, "backup", "verify", "-i", str(lab.inventory))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 of 2 stored backup(s) missing or damaged" in ok.stdout
    stored.chmod(0o600)
    stored.write_bytes(stored.read_bytes().replace(b"accept", b"drop", 1))
    bad = otpatch_child(home, "backup", "verify", "-i", str(lab.inventory))
    assert bad.returncode == 1
    line = next(ln for ln in bad.stdout.splitlines() if ln.startswith(profile[:12]))
    assert "DIFFERS" in line and "mguard_profile of lab-mguard-1" in line
    assert "1 of 2 stored backup(s) missing or damaged" in bad.stdout
    last = _listed(home, lab.inventory)[("lab-mguard-1", "mguard_profile")]["last_verify"]
    assert (last["ok"], last["status"]) == (False, "differs")
    refused = otpatch_child(home, "run", RESTORE_TEST, "-i", str(lab.inventory),
                            "--dry-run", "-e", f"backup={profile}")
    assert refused.returncode == 2 and "differs" in refused.stderr  # never imported


def test_an_import_that_loses_rules_fails_the_restore_test(home, lab):
    """The simulator's fault drops rules on every import, the rollback's too: the run halts
    (a person must look at the lab unit), and the backup's test reads failed."""
    done = otpatch_child(home, "backup", "-i", str(lab.inventory), "--host", "lab-mguard-1",
                         "--json", timeout=120)
    profile = run_json(done)["hosts"][0]["sha256"]
    device = lab.device("lab-mguard-1")
    _drop_a_rule(device)
    device.faults = frozenset({"profile_import_drops_rules"})
    run = otpatch_child(home, "run", RESTORE_TEST, "-i", str(lab.inventory), "--dry-run",
                        "-e", f"backup={profile}", "--json", timeout=180)
    assert run.returncode == 1, run.stderr
    assert run_json(run)["status"] == "halted"
    tests = _listed(home, lab.inventory)[("lab-mguard-1", "mguard_profile")]["restore_tests"]
    assert [(t["status"], t["passed"]) for t in tests] == [("halted", False)]


def test_an_application_backup_restores_into_the_lab_cpu_and_verifies(home, lab):
    """The M580 application backup downloaded into the lab CPU simulator, which had been
    given another application: the CPU checks the image's CRC-32, the step reads the
    checksum back, the CPU runs it; the run is the backup's passed restore test. An mGuard
    profile handed to the M580 test is refused before the lab CPU is touched."""
    from otpatch.modules.m580.simapp import Application

    done = otpatch_child(home, "backup", "-i", str(lab.inventory), "--host", "lab-plc-1",
                         "--host", "lab-mguard-1", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    taken = {h["host"]: h for h in run_json(done)["hosts"]}
    application, profile = taken["lab-plc-1"]["sha256"], taken["lab-mguard-1"]["sha256"]
    cpu = lab.device("lab-plc-1")
    backed_up = cpu.application
    cpu.application = Application.as_configured("SOMEONE_ELSES_APP")
    assert cpu.application.crc32 != backed_up.crc32

    run = otpatch_child(home, "run", RESTORE_TEST_M580, "-i", str(lab.inventory), "--dry-run",
                        "-e", f"backup={application[:12]}", "--json", timeout=180)
    assert run.returncode == 0, run.stderr
    result = run_json(run)
    assert result["status"] == "completed", result
    assert cpu.downloads == 1  # put back, not "already runs"
    assert (cpu.application.name, cpu.application.crc32) == (backed_up.name, backed_up.crc32)
    listed = _listed(home, lab.inventory)[("lab-plc-1", "m580_application")]
    assert [(t["run_id"], t["status"]) for t in listed["restore_tests"]] == \
        [(result["run_id"], "completed")]
    text = otpatch_child(home, "backup", "list", "-i", str(lab.inventory)).stdout
    assert f"restore test:  passed: run {result['run_id']}, dry_run into simulator " \
           "lab-plc-1" in text

    wrong = otpatch_child(home, "run", RESTORE_TEST_M580, "-i", str(lab.inventory),
                          "--dry-run", "-e", f"backup={profile}", "--json", timeout=120)
    assert wrong.returncode == 1, wrong.stderr
    assert run_json(wrong)["status"] != "completed"
    assert "not an M580 application backup" in wrong.stdout + wrong.stderr
    assert cpu.downloads == 1  # the lab CPU never reached


class _Listener:
    """A TCP port on 127.0.0.1 that counts who connects: a real device's stand-in."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port, self.accepted, self.stopped = self.sock.getsockname()[1], 0, False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def stop(self):
        self.stopped = True
        self.thread.join()
        self.sock.close()


PLANT = """all:
  children:
    mguards:
      hosts:
        plant-mguard-1:
          otpatch_device: mguard
          vendor: Phoenix Contact
          model: FL MGUARD RS4000
          firmware: 8.8.1
          serial_number: PLANT-MGUARD-0001
          simulator: false
          endpoints: {{https: "127.0.0.1:{port}"}}
    m580_cpus:
      hosts:
        plant-plc-1:
          otpatch_device: m580
          vendor: Schneider Electric
          model: Modicon M580
          part_number: BMEP581020
          firmware: v03.20
          serial_number: PLANT-M580-0001
          simulator: false
          endpoints: {{modbus: "127.0.0.1:{port}", enip: "127.0.0.1:{port}"}}
"""


def test_a_real_device_is_skipped_and_a_file_handed_in_is_checked(home, tmp_path):
    from otpatch.modules.mguard.simprofile import plant_profile
    from otpatch.modules.mguard.atv import dump

    device = _Listener()
    try:
        inventory = tmp_path / "plant.yml"
        inventory.write_text(PLANT.format(port=device.port))
        done = otpatch_child(home, "backup", "-i", str(inventory))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].startswith("plant-mguard-1  SKIPPED      a real device: "
                                   "mguard.export_profile is a guided step there")
        assert "--host plant-mguard-1 --from FILE" in lines[0]
        assert "VendorToolTransport" in lines[1] and "nothing sent" in lines[1]
        assert device.accepted == 0
        assert not (home / "backups").exists()

        saved = tmp_path / "plant-mguard-1.atv"
        saved.write_text(dump(plant_profile("8.8.1")))
        base = ("backup", "-i", str(inventory), "--host", "plant-mguard-1",
                "--operator", "Chen Wei", "--from")
        for args, says in (
                ((str(tmp_path / "missing.atv"),), "missing.atv: cannot read:"),
                ((str(saved), "--sha256", "ab" * 32), "--sha256 says abab"),
                ((str(inventory),), "not a readable mGuard configuration profile")):
            bad = otpatch_child(home, *base, *args)
            assert (bad.returncode, bad.stdout) == (2, ""), bad.stderr
            assert len(bad.stderr.splitlines()) == 1 and says in bad.stderr
            assert not (home / "backups").exists()
        good = otpatch_child(home, *base, str(saved))
        assert good.returncode == 0, good.stderr
        listed = _listed(home, inventory)[("plant-mguard-1", "mguard_profile")]
        assert listed["provenance"]["said"] == f"handed in by Chen Wei from {saved}"
        assert device.accepted == 0
    finally:
        device.stop()
