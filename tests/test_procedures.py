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
    assert plc["revision"] == "v04.30" and plc["io"] == "run"  # as left, back in run mode
    assert plc["application_check"]["matches"]  # the as-found application, by its checksum
    assert progress.checkpoints["as_found"]["plc"]["revision"] == "v03.20"  # as found
    assert "All PID loops of the unit are in manual at the HMI" in text  # attested, not set
    for target in ("lab_adapters", "staging_adapters", "adapters"):  # counted, not assumed
        drops = progress.facts[target]
        assert drops and all(d["evidence"] == "connection_manager"
                             and d["connection_timeouts_in_span"] == 0
                             and d["connection_manager"]["open_requests"] >= 1
                             for d in drops.values()), (target, drops)
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


# Each fault at each stage the playbook has (a fault scoped `@stage` strikes that stage's
# hosts only; unscoped it strikes every host, so the lab fails first). The M580's way back
# from 4.30 to 3.20 crosses 4.20 downward: the plain restore is refused before anything is
# sent, and the special-firmware downgrade with the application re-downloaded brings it back
# (Schneider FAQ000272937).
M580_FAULTS = [  # id, fault, the state that fails, message fragment, the way back
    # the CPU still runs the as-found version: the restore has nothing to do, and checks
    ("transfer aborted", "transfer_abort", "transfer", "transfer aborted", "restore"),
    # the damaged image booted; every image reaching this CPU is damaged, so the special
    # firmware is too: the spare CPU
    ("hash mismatch", "hash_mismatch", "transfer", "the device reports SHA-256", "spare"),
    # a CPU that hangs at every boot hangs on the special firmware too: the spare CPU
    ("reboot hangs", "reboot_hang", "reboot", "not back with an I/O connection in run mode",
     "spare"),
    ("wrong version after reboot", "wrong_version_after_reboot", "verify",
     "not the target v04.30", "restore"),
    ("I/O connections lost", "io_connection_loss", "verify", "connection timeout",
     "downgrade"),
]
STAGES = [("lab", "lab_", ""), ("staging", "staging_", "@staging"),
          ("production", "production_", "@production")]


@pytest.mark.parametrize("stage, prefix, scope", STAGES, ids=[s[0] for s in STAGES])
@pytest.mark.parametrize("fault, fails_in, fragment, back", [f[1:] for f in M580_FAULTS],
                         ids=[f[0] for f in M580_FAULTS])
def test_each_m580_fault_at_each_stage_rolls_back_the_vendors_way(
        tmp_path, fault, fails_in, fragment, back, stage, prefix, scope):
    progress, text = dry_run(tmp_path, M580, (fault + scope,))
    assert progress.status.value == "rolled_back", progress.message
    states = [v.state for v in progress.path]
    assert prefix + fails_in in states and fragment in text
    way = {"restore": ["restore"], "downgrade": ["restore", "downgrade"],
           "spare": ["restore", "downgrade", "spare"]}[back]
    assert states[-len(way) - 1:] == [prefix + w for w in way] + ["rolled_back"], states
    if back != "restore":  # v04.30 to v03.20: the plain restore refused, nothing sent
        assert "crosses 4.20 downward" in text.split(f"state {prefix}restore")[1]
    assert "FAILED" not in text.split(f"state {prefix}{back}")[1]  # every check held
    if stage != "lab":  # the stages before it went through
        assert "lab_evidence" in states and not any(s.startswith("lab_restore") for s in states)


MGUARD_FAULTS = [  # id, faults, the state that fails, status, message fragment
    ("syslog gap", ("syslog_gap",), "verify", "rolled_back", "0 message(s)"),
    ("profile import drops rules", ("syslog_gap", "profile_import_drops_rules"), "verify",
     "halted", "a human must restore it"),
    ("HTTPS certificate changed", ("https_cert_changed",), "reboot", "halted", "not trusted"),
]
MGUARD_STAGES = [("lab", "lab_", ""), ("production", "production_", "@production")]


@pytest.mark.parametrize("stage, prefix, scope", MGUARD_STAGES,
                         ids=[s[0] for s in MGUARD_STAGES])
@pytest.mark.parametrize("faults, fails_in, status, fragment",
                         [f[1:] for f in MGUARD_FAULTS], ids=[f[0] for f in MGUARD_FAULTS])
def test_each_mguard_fault_at_each_stage_takes_the_rollback_edge(
        tmp_path, faults, fails_in, status, fragment, stage, prefix, scope):
    progress, text = dry_run(tmp_path, MGUARD, tuple(f + scope for f in faults))
    assert progress.status.value == status, progress.message
    states = [v.state for v in progress.path]
    assert states[-1] == prefix + "restore" or states[-2] == prefix + "restore", states
    assert prefix + fails_in in states and fragment in text
    if status == "rolled_back":
        assert states[-2:] == [prefix + "restore", "rolled_back"]
        assert "FAILED" not in text.split(f"state {prefix}restore")[1]  # every check held
    else:
        assert "halted" in text.splitlines()[-1]


def test_m580_rollback_downgrades_and_brings_back_the_application_and_io(tmp_path):
    progress, text = dry_run(tmp_path, M580, ("io_connection_loss",))
    restore = text.split("state lab_restore")[1].split("state lab_downgrade")[0]
    assert "crosses 4.20 downward" in restore and restore.count("step ") == 1
    lab_plc = progress.facts["lab_plc"]
    assert lab_plc["running_version"] == progress.checkpoints["lab_as_found"]["lab_plc"]["revision"]
    assert lab_plc["application_check"]["matches"]  # re-downloaded after the erase
    assert "m580.application_download: changed" in text.split("state lab_downgrade")[1]
    adapters = progress.facts["lab_adapters"]  # keyed by host: the downgrade's own reading
    assert adapters and all(a["io_status"] == "run" and a["connection_timeouts_in_span"] == 0
                            and a["evidence"] == "connection_manager"
                            for a in adapters.values())


def test_mguard_rollback_restores_the_rules_within_90s(tmp_path):
    progress, text = dry_run(tmp_path, MGUARD, ("syslog_gap",))
    restored = progress.facts["lab_fw"]["import"]
    assert restored["restored_after_s"] <= 90
    checks = progress.facts["lab_fw"]["checks"]
    assert checks["restored"]["ok"] and checks["restored"]["observed"]["rules_active"] == 16
    assert progress.facts["lab_fw"]["syslog"]["restored"]["count"] >= 1


def test_a_rollback_by_the_spare_cpu_is_recorded_as_another_unit(tmp_path):
    """The spare brings the as-found firmware and application back, but it is another CPU:
    the record says so by its serial, never plain "restored, as found"."""
    from otpatch.engine.report import build, source

    progress, _ = dry_run(tmp_path, M580, ("reboot_hang",))
    assert [v.state for v in progress.path][-2:] == ["lab_spare", "rolled_back"]
    found = progress.checkpoints["lab_as_found"]["lab_plc"]["serial"]
    left = progress.facts["lab_plc"]["serial"]
    assert found and left and found != left
    doc = build.build([source.load_run(tmp_path / "home", progress.run_id)])
    (cpu,) = [d for d in doc["devices"] if d["host"] == "lab-plc-1"]
    assert cpu["outcome"] == "left_changed"
    assert (f"another unit in its place, serial {left} (as found {found}); restored: "
            "firmware v03.20, as found") in cpu["statement"]
