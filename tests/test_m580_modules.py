"""Every M580 module against the simulator with a real run context: dry runs in virtual time
(an 8-minute transfer takes seconds), execute runs on the wall clock against a fast simulator."""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from otpatch.modules.contract.errors import PersonNeeded
from otpatch.modules.m580.modules import (Identity, SetMode, Status, VerifyVersion, WaitRun)
from otpatch.modules.m580.sim import start_simulators
from otpatch.modules.m580.transport import TransportUnavailable, VendorToolTransport
from otpatch.modules.m580.update import FirmwareTransfer, RestorePrevious
from otpatch.modules.m580.versions import parse_version
from otpatch.modules.simulator_only import NotOnRealDevice
from tests.fixtures.m580.support import (EXECUTE_TIME_SCALE, bound, context, cpu_host,
                                         firmware_image, simulator_calls, with_operator)

FAST = {"interval": 0.05}  # execute runs poll the wall clock: keep the tests quick
# A CPU that starts on 4.20 goes to 4.30 and back by a plain restore: from v03.20 the way back
# crosses 4.20 downward (FAQ000272937), refused (tests/test_m580_rollback.py).
SINCE_4_20 = "v04.20"


@pytest.fixture
def dry(tmp_path):
    """A simulated CPU on v03.20 driven only by the run's virtual clock, and a dry-run
    context."""
    host = cpu_host()
    with start_simulators([host]) as lab:
        yield context({"plc": (bound(lab, host),)}, tmp_path, dry_run=True)


@pytest.fixture
def dry_420(tmp_path):
    """The same on v04.20, for the update to v04.30 and the plain restore back."""
    host = cpu_host(firmware=SINCE_4_20)
    with start_simulators([host]) as lab:
        yield context({"plc": (bound(lab, host),)}, tmp_path, dry_run=True)


@pytest.fixture
def live(tmp_path):
    """A simulated CPU on v04.20 on a scaled wall clock, and an execute-mode context."""
    host = cpu_host(firmware=SINCE_4_20)
    with start_simulators([host], time_scale=EXECUTE_TIME_SCALE) as lab:
        yield context({"plc": (bound(lab, host),)}, tmp_path, dry_run=False)


def _transfer_args(tmp_path, **extra):
    return {"target": "plc", "image": firmware_image(tmp_path), "version": "SV4.30",
            "port": "usb", **extra}


@pytest.mark.parametrize("text, major, minor", [
    ("SV4.30", 4, 30), ("v04.30", 4, 30), ("V4.3", 4, 30), ("4.30", 4, 30),
    ("v03.20", 3, 20), ("SV3.2", 3, 20), ("v4.03", 4, 3), (" sv 4.30 ", 4, 30),
])
def test_version_spellings(text, major, minor):
    version = parse_version(text)
    assert (version.major, version.minor) == (major, minor)
    assert str(version) == f"v{major:02d}.{minor:02d}"


@pytest.mark.parametrize("text", ["4", "SV4.300", "v4.x", "", "4.30.1"])
def test_not_versions(text):
    with pytest.raises(ValueError, match="not an M580 firmware version"):
        parse_version(text)


def test_identity_facts(dry):
    result = Identity().run({"target": "plc"}, dry)
    assert not result.failed, result.msg
    facts = result.facts
    assert (facts["vendor"], facts["product_code"], facts["revision"]) == (
        "Schneider Electric", "BMEP581020", "v03.20")
    assert facts["cross_checked"] and facts["cip"]["vendor_id"] == 243
    assert facts["cip"]["device_type"] == 0x0E and not facts["cip"]["firmware_update_in_progress"]
    assert facts["product_name"] == "BMEP581020 (otpatch simulator)"


def test_status_and_expectations(dry):
    facts = Status().run({"target": "plc"}, dry).facts
    assert (facts["state"], facts["run_led"], facts["mode"]) == ("RUN", "solid_green", "auto")
    assert facts["pid_stable"] and facts["io_healthy"]
    result = Status().run({"target": "plc", "expect": {"mode": "manual",
                                                       "pid_stable": True}}, dry)
    assert result.failed and "mode is 'auto', expected 'manual'" in result.msg


def test_set_mode_reads_back_and_is_idempotent(dry):
    args = {"target": "plc", "mode": "manual"}
    assert SetMode().read_back(args, dry).applied is False
    first = SetMode().run(args, dry)
    assert first.changed and first.facts["mode"] == "manual"
    assert SetMode().read_back(args, dry).applied is True
    again = SetMode().run(args, dry)
    assert not again.changed and "already in manual mode" in again.msg


def test_dry_run_update_and_rollback_pass_in_virtual_time(dry_420, tmp_path):
    dry = dry_420
    started, args = time.monotonic(), _transfer_args(tmp_path)
    assert FirmwareTransfer().read_back(args, dry).applied is False
    transfer = FirmwareTransfer().run(args, dry)
    assert transfer.changed and not transfer.failed, transfer.msg
    assert dry.clock.elapsed() == pytest.approx(8 * 60, abs=5)
    assert transfer.facts["transfer"]["device_sha256"] == args["image"]["hash"]
    assert FirmwareTransfer().read_back(args, dry).applied is True

    before = dry.clock.elapsed()
    wait = WaitRun().run({"target": "plc"}, dry)
    assert not wait.failed and 45 <= dry.clock.elapsed() - before <= 60, wait.msg
    assert VerifyVersion().run({"target": "plc", "version": "V4.3"}, dry).facts["matches"]

    before = dry.clock.elapsed()
    restore = RestorePrevious().run({"target": "plc", "version": "v04.20"}, dry)
    assert restore.changed and not restore.failed, restore.msg
    assert dry.clock.elapsed() - before == pytest.approx(6 * 60, abs=5)
    assert "v04.30 -> v04.20" in restore.msg
    assert RestorePrevious().read_back({"target": "plc", "version": "v04.20"}, dry).applied
    assert time.monotonic() - started < 10


def test_execute_mode_against_a_fast_simulator(live, tmp_path):
    transfer = FirmwareTransfer().run(_transfer_args(tmp_path, **FAST), live)
    assert transfer.changed and not transfer.failed, transfer.msg
    assert "simulated" not in transfer.msg
    assert not WaitRun().run({"target": "plc", **FAST}, live).failed
    result = VerifyVersion().run({"target": "plc", "version": "SV4.30"}, live)
    assert not result.failed and result.facts["running_version"] == "v04.30"
    restore = RestorePrevious().run({"target": "plc", **FAST}, live)
    assert restore.changed and not restore.failed, restore.msg
    assert Identity().run({"target": "plc"}, live).facts["revision"] == "v04.20"


def test_transfer_of_the_running_version_changes_nothing(dry, tmp_path):
    result = FirmwareTransfer().run(_transfer_args(tmp_path, version="v03.20"), dry)
    assert not result.changed and not result.failed and "already runs v03.20" in result.msg
    assert dry.clock.elapsed() == 0


def test_verify_version_names_both_versions(dry):
    result = VerifyVersion().run({"target": "plc", "version": "SV4.30"}, dry)
    assert result.failed
    assert result.msg == "lab-plc-1 runs v03.20 (SV3.20), not the target v04.30 (SV4.30)"


@pytest.mark.parametrize("port", ["modbus", 502, "502", "Modbus_TCP"])
def test_port_502_is_refused_citing_the_article(dry, tmp_path, port):
    result = FirmwareTransfer().run(_transfer_args(tmp_path, port=port), dry)
    assert result.failed and not result.changed
    assert "Do not use Modbus TCP port 502 for firmware transfer" in result.msg
    assert Status().run({"target": "plc"}, dry).facts["transfer"] == "idle"


def test_unknown_port_is_refused(dry, tmp_path):
    result = FirmwareTransfer().run(_transfer_args(tmp_path, port="serial"), dry)
    assert result.failed and "use usb or ethernet_mgmt" in result.msg


def test_image_changed_after_verification_is_not_sent(dry, tmp_path):
    args = _transfer_args(tmp_path)
    with open(args["image"]["path"], "ab") as f:
        f.write(b"tampered")
    result = FirmwareTransfer().run(args, dry)
    assert result.failed and "changed since it was verified" in result.msg
    assert Status().run({"target": "plc"}, dry).facts["transfer"] == "idle"


@pytest.mark.parametrize("call", ["send_image", "status", "restore_previous"])
def test_vendor_tool_transport_refuses_plainly(call):
    transport = VendorToolTransport("plant-plc-7")
    args = {"send_image": (b"image", parse_version("SV4.30"), "ethernet_mgmt")}.get(call, ())
    with pytest.raises(TransportUnavailable, match=r"^not available on a real device: "
                                                   r"plant-plc-7: .*no public API"):
        getattr(transport, call)(*args)


def test_a_host_marked_real_gets_no_simulator_command_even_from_a_simulator(tmp_path,
                                                                           monkeypatch):
    """Marked `simulator: false` (the old `custom: {register_map: otpatch}` escape hatch is
    gone: an inventory mark is never trusted alone): the transfer is a guided step that asks
    a person and reads the CPU through FC 43/14 and the CIP Identity only, Status (the
    register map) is refused, and nothing of the simulator's own interface reaches the CPU."""
    host = cpu_host()
    with start_simulators([host]) as lab:
        real = replace(bound(lab, host), simulator=False,
                       vars={"custom": {"register_map": "otpatch"}})
        ctx = with_operator(context({"plc": (real,)}, tmp_path, dry_run=False))
        cpu, args = lab.device(host.name), _transfer_args(tmp_path)
        calls = simulator_calls(monkeypatch, cpu)
        with pytest.raises(PersonNeeded) as asked:  # nobody at a terminal: the run pauses
            FirmwareTransfer().run(args, ctx)
        back = FirmwareTransfer().read_back(args, ctx)  # what `resume` asks first
        with pytest.raises(NotOnRealDevice, match="register map") as status_refused:
            Status().run({"target": "plc"}, ctx)
        seen = list(calls)
        monkeypatch.undo()
        sim = context({"plc": (bound(lab, host),)}, tmp_path, dry_run=False)
        status = Status().run({"target": "plc"}, sim)
    assert seen == [] and cpu.transfers == 0
    assert asked.value.asks["role"] == "operator"
    for word in ("lab-plc-1", "SV4.30 (v04.30)", "EcoStruxure Automation Device Maintenance",
                 args["image"]["hash"], "the USB service port"):
        assert word in asked.value.asks["statement"], asked.value.asks
    assert back.applied is False and "runs v03.20, not v04.30" in back.result.msg
    assert str(status_refused.value).startswith(
        "not available on a real device: lab-plc-1: m580.status uses the otpatch simulator's "
        "register map")
    assert "`simulator: false`: nothing was sent" in str(status_refused.value)
    assert status.facts["transfer"] == "idle" and status.facts["running_version"] == "v03.20"


def test_a_target_with_an_adapter_is_refused(tmp_path):
    from tests.fixtures.m580.support import adapter_host

    ctx = context({"plc": (adapter_host(),)}, tmp_path, dry_run=True)
    with pytest.raises(Exception, match="lab-x80-1 is not an M580 CPU"):
        Status().run({"target": "plc"}, ctx)


def test_read_backs_find_a_cpu_mid_action_moving_and_the_engine_waits_it_out(dry_420,
                                                                             tmp_path):
    """Crashed right after the image (then the restore) reached the CPU: each read-back
    says still moving with what it sees; the engine's wait passes the simulator's time
    and reads again, within the step's own timeout."""
    from otpatch.engine import runner
    from otpatch.modules.m580.common import driver

    dry = dry_420
    args = _transfer_args(tmp_path)
    cpu = driver(dry, args, "test")
    image = Path(args["image"]["path"]).read_bytes()
    cpu.transport().send_image(image, parse_version("SV4.30"), "usb")  # then the crash
    moving = FirmwareTransfer().read_back(args, dry)
    assert moving.moving and (moving.timeout, moving.interval) == (20 * 60, 5)
    assert moving.result.msg == "lab-plc-1: UPDATING, transfer in_progress (0 %)"
    done = runner.read_back("m580.firmware_transfer", args, dry)
    assert done.check.applied is True and not done.check.result.failed
    assert done.waited == 8 * 60 and dry.clock.elapsed() == 8 * 60
    assert "the device's SHA-256 matches" in done.check.result.msg

    restore = {"target": "plc", "version": "v04.20"}
    rebooting = RestorePrevious().read_back(restore, dry)  # the restore waits this out first
    assert rebooting.moving and rebooting.result.msg.startswith("lab-plc-1: REBOOTING")
    settled = runner.read_back("m580.restore_previous", restore, dry)
    assert settled.check.applied is False and settled.waited == 55  # 52 s, polled every 5 s
    cpu.transport().restore_previous()  # then the crash
    assert RestorePrevious().read_back(restore, dry).result.msg == (
        "lab-plc-1: UPDATING, runs v04.30, restore in_progress")
    back = runner.read_back("m580.restore_previous", restore, dry)
    assert back.check.applied is True and back.waited == 6 * 60
    assert Status().run({"target": "plc"}, dry).facts["running_version"] == "v04.20"
