"""The shipped procedures against the simulator lab: every step of the article dry-runs,
and every simulator fault takes the rollback edge, verified, or halts for a human."""
from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from otpatch.engine import runs
from otpatch.engine.display import PlainDisplay
from otpatch.engine.journal import Journal
from otpatch.engine.simlab import start_lab

from conftest import ROOT

M580 = "playbooks/m580-firmware-update.yml"
MGUARD = "playbooks/mguard-firmware-update.yml"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dry_run(tmp_path: Path, playbook: str, faults: tuple[str, ...] = ()):
    """A fresh lab on free ports with these faults, one dry run, the lab stopped."""
    port = free_udp_port()
    params = {"syslog_port": str(port), "syslog_bind": "127.0.0.1"} if playbook == MGUARD else {}
    out = io.StringIO()
    with start_lab(ROOT / "inventory" / "lab.yml", faults, ephemeral=True,
                   out_dir=tmp_path / "lab", syslog_to=f"127.0.0.1:{port}") as lab:
        progress = runs.start(str(ROOT / playbook), str(lab.inventory), "dry_run", params,
                              tmp_path / "home", PlainDisplay(out))
    with Journal.open(tmp_path / "home", create=False) as journal:
        assert journal.verify().ok
    return progress, out.getvalue()


def took(progress, state: str) -> float:
    visit = next(v for v in progress.path if v.state == state)
    return visit.left_at - visit.entered_at


def test_m580_procedure_completes_with_the_articles_figures(tmp_path):
    progress, text = dry_run(tmp_path, M580)
    assert progress.status.value == "completed", progress.message
    assert took(progress, "lab_transfer") == 8 * 60  # about 8 minutes, BME P58 1020 image
    assert 45 <= took(progress, "lab_reboot") <= 60  # reboot 45-60 s
    assert took(progress, "lab_soak") == 4 * 3600  # 4-hour I/O cycle test
    assert "over usb" in text and "over ethernet_mgmt" in text  # lab USB, production Ethernet
    plc = progress.facts["plc"]
    assert (plc["revision"], plc["mode"]) == ("v04.30", "auto")  # as left; manual released
    assert progress.checkpoints["as_found"]["plc"]["revision"] == "v03.20"  # as found
    risk = plc["risk"]  # recorded in the journal with the step's result
    assert (risk["base"], risk["effective"], risk["due_category"]) == (9.8, 8.8, "within_30d")


def test_mguard_procedure_completes_with_backup_checks_and_syslog(tmp_path):
    progress, text = dry_run(tmp_path, MGUARD)
    assert progress.status.value == "completed", progress.message
    fw = progress.facts["fw"]
    assert Path(fw["profile"]["path"]).exists() and len(fw["profile"]["sha256"]) == 64
    assert fw["checks"]["before"]["observed"]["rules_active"] == \
        fw["checks"]["after"]["observed"]["rules_active"] == 16
    assert fw["syslog"]["after"]["count"] >= 1
    assert "MD5 is broken for collision resistance, so SHA-256" in text


FAULTS = [  # id, playbook, faults, status, state where it failed, message fragment
    ("hash mismatch", M580, ("hash_mismatch",), "rolled_back", "lab_transfer",
     "the device reports SHA-256"),
    ("transfer aborted", M580, ("transfer_abort",), "rolled_back", "lab_transfer",
     "transfer aborted"),
    ("reboot hangs", M580, ("reboot_hang",), "rolled_back", "lab_reboot", "not in RUN"),
    ("wrong version after reboot", M580, ("wrong_version_after_reboot",), "rolled_back",
     "lab_verify", "not the target v04.30"),
    ("I/O connections lost", M580, ("io_connection_loss",), "rolled_back", "lab_soak",
     "connection timeout"),
    ("syslog gap", MGUARD, ("syslog_gap",), "rolled_back", "lab_verify", "0 message(s)"),
    ("profile import drops rules", MGUARD, ("syslog_gap", "profile_import_drops_rules"),
     "halted", "lab_restore", "a human must restore it"),
    ("HTTPS certificate changed", MGUARD, ("https_cert_changed",), "halted", "lab_restore",
     "not trusted"),
]


@pytest.mark.parametrize("playbook,faults,status,failed_in,fragment",
                         [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_fault_takes_the_rollback_edge(tmp_path, playbook, faults, status, failed_in,
                                       fragment):
    progress, text = dry_run(tmp_path, playbook, faults)
    assert progress.status.value == status, progress.message
    states = [v.state for v in progress.path]
    assert failed_in in states and "lab_restore" in states
    assert fragment in text
    if status == "rolled_back":
        assert states[-2:] == ["lab_restore", "rolled_back"]
        assert "FAILED" not in text.split("state lab_restore")[1]  # every check held
    else:
        assert "halted" in text.splitlines()[-1]


def test_m580_rollback_restores_the_as_found_firmware_and_io(tmp_path):
    progress, text = dry_run(tmp_path, M580, ("reboot_hang",))
    assert took(progress, "lab_restore") == 6 * 60  # Restore Previous Version: 6 minutes
    lab_plc = progress.facts["lab_plc"]
    assert lab_plc["running_version"] == progress.checkpoints["lab_as_found"]["lab_plc"]["revision"]
    adapters = progress.facts["lab_adapters"]["adapters"]
    assert adapters and all(a["connected"] and a["rpi_ms"] == 10 for a in adapters.values())


def test_mguard_rollback_restores_the_rules_within_90s(tmp_path):
    progress, text = dry_run(tmp_path, MGUARD, ("syslog_gap",))
    restored = progress.facts["lab_fw"]["import"]
    assert restored["restored_after_s"] <= 90
    checks = progress.facts["lab_fw"]["checks"]
    assert checks["restored"]["ok"] and checks["restored"]["observed"]["rules_active"] == 16
    assert progress.facts["lab_fw"]["syslog"]["restored"]["count"] >= 1
