"""Every M580 simulator fault makes the right module fail with a message a person acts on;
the rollback (restore previous version) still brings the CPU back. The CPU starts on v04.20
where the rollback is the point: from v03.20 the plain restore of v04.30 crosses 4.20
downward and is refused (FAQ000272937, tests/test_m580_rollback.py)."""
from __future__ import annotations

import pytest

from otpatch.modules.m580.modules import Status, VerifyVersion, WaitRun
from otpatch.modules.m580.sim import start_simulators
from otpatch.modules.m580.update import FirmwareTransfer, RestorePrevious
from tests.fixtures.m580.support import bound, context, cpu_host, firmware_image

BASE = "v04.20"  # updated to v04.30, restored back to it without crossing 4.20
# fault -> (the step that fails, what its message says), on a CPU that starts on BASE
FAULTS = {
    "hash_mismatch": ("transfer", "for the image it received, but {sent} was sent: the image "
                                  "was damaged in transfer"),
    "transfer_abort": ("transfer", "lab-plc-1: transfer aborted at 37 %; the CPU keeps v04.20"),
    "reboot_hang": ("wait_run", "lab-plc-1 not back with an I/O connection in run mode and no "
                                "major fault after 2m: last seen CIP Identity status 0x0434: "
                                "configured; no I/O connections established; major "
                                "recoverable fault"),
    "wrong_version_after_reboot": ("verify", "lab-plc-1 runs v04.20 (SV4.20), not the target "
                                             "v04.30 (SV4.30)"),
}


def _lab(tmp_path, faults, firmware="v03.20"):
    host = cpu_host(firmware=firmware)
    lab = start_simulators([host], faults=faults)
    return lab, context({"plc": (bound(lab, host),)}, tmp_path, dry_run=True)


def _update(ctx, tmp_path) -> tuple[str, object, dict]:
    """transfer -> wait for RUN -> verify; the first step that fails, its result, the args."""
    args = {"target": "plc", "image": firmware_image(tmp_path), "version": "SV4.30",
            "port": "ethernet_mgmt"}
    steps = (("transfer", lambda: FirmwareTransfer().run(args, ctx)),
             ("wait_run", lambda: WaitRun().run({"target": "plc"}, ctx)),
             ("verify", lambda: VerifyVersion().run({"target": "plc", "version": "v04.30"},
                                                    ctx)))
    for step, call in steps:
        result = call()
        if result.failed:
            return step, result, args
    return "none", result, args


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_fails_the_right_step(tmp_path, fault):
    lab, ctx = _lab(tmp_path, {fault}, BASE)
    try:
        step, result, args = _update(ctx, tmp_path)
        failing, message = FAULTS[fault]
        assert step == failing, result.msg
        assert message.format(sent=args["image"]["hash"]) in result.msg
        restore = RestorePrevious().run({"target": "plc", "version": BASE}, ctx)
        after = Status().run({"target": "plc"}, ctx).facts
    finally:
        lab.stop()
    # the rollback edge brings the CPU back from whatever state the fault left it in
    assert not restore.failed, restore.msg
    assert (after["state"], after["run_led"], after["running_version"]) == (
        "RUN", "solid_green", BASE)


def test_an_aborted_transfer_leaves_the_old_firmware_and_reads_back_as_the_failure_it_was(
        tmp_path):
    """The transfer ran and the CPU aborted it: a resume records that failure (the same edge
    as an uninterrupted run) instead of sending the image a second time."""
    with start_simulators([cpu_host()], faults={"transfer_abort"}) as lab:
        ctx = context({"plc": (bound(lab, cpu_host()),)}, tmp_path, dry_run=True)
        step, _, args = _update(ctx, tmp_path)
        assert step == "transfer"
        back = FirmwareTransfer().read_back(args, ctx)
        assert back.applied is True and back.result.failed and not back.moving
        assert "transfer aborted at 37 %; the CPU keeps v03.20" in back.result.msg
        facts = Status().run({"target": "plc"}, ctx).facts
    assert (facts["state"], facts["running_version"], facts["transfer"]) == (
        "RUN", "v03.20", "aborted")


def test_restore_without_a_previous_version_says_so(tmp_path):
    lab, ctx = _lab(tmp_path, set())
    with lab:
        result = RestorePrevious().run({"target": "plc"}, ctx)
    assert result.failed and "no previous version stored" in result.msg


def test_other_packages_faults_are_ignored(tmp_path):
    lab, ctx = _lab(tmp_path, {"syslog_gap", "https_cert_changed"})
    with lab:
        step, result, _ = _update(ctx, tmp_path)
    assert step == "none", result.msg
