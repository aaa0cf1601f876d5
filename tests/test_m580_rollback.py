"""The M580 rollback across 4.20 as Schneider FAQ000272937 has it, against the simulator: the
plain restore refused before anything is sent; the special downgrade (product version
checked) erasing the application and the as-found backup downloaded back, CRC-checked, in
RUN; the spare CPU swapped in and its serial checked; and the guided steps on a host marked
`simulator: false`, which receive public reads only."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from otpatch.modules.cip.session import CipServiceError
from otpatch.modules.m580.driver import M580Driver
from otpatch.modules.m580.sim import start_simulators
from otpatch.modules.m580.versions import parse_version
from tests.fixtures.m580.rollback import (SPARE, Run, as_real, plain_downgrade_image,
                                          rollback_host, special_image, with_vars)
from tests.fixtures.m580.support import (EXECUTE_TIME_SCALE, bound, firmware_image,
                                         simulator_calls)

CROSSING = "crosses 4.20 downward"


@pytest.fixture
def lab():
    host = rollback_host()
    with start_simulators([host]) as running:
        yield running, bound(running, host)


def updated(run: Run, tmp_path: Path) -> dict:
    """As found (identity, application backup), then v03.20 -> SV4.30 and its reboot."""
    assert not run.step("m580.identity").failed
    backup = run.step("m580.application_backup")
    assert not backup.failed, backup.msg
    image = firmware_image(tmp_path)
    transfer = run.step("m580.firmware_transfer", image=image, version="SV4.30", port="usb")
    assert transfer.changed and not transfer.failed, transfer.msg
    assert not run.step("m580.wait_run").failed
    assert not run.step("m580.verify_version", version="SV4.30").failed
    return image


def status(run: Run) -> dict:
    return run.step("m580.status").facts


# -- the plain way back is refused ------------------------------------------------------------

def test_plain_restore_and_transfer_across_4_20_are_refused_before_anything_is_sent(lab,
                                                                                  tmp_path):
    sim, host = lab
    run = Run(tmp_path, host, dry_run=True)
    updated(run, tmp_path)
    cpu = sim.device(host.name)
    restore = run.step("m580.restore_previous", version="v03.20")
    back = run.step("m580.firmware_transfer", image=plain_downgrade_image(tmp_path),
                    version="v03.20", port="usb")
    for result in (restore, back):
        assert result.failed and not result.changed and CROSSING in result.msg
        assert "m580.downgrade" in result.msg and "m580.spare_swap" in result.msg
        assert result.msg.endswith("Nothing was sent")
    assert (cpu.restores, cpu.transfers) == (0, 1)
    assert (status(run)["state"], status(run)["running_version"]) == ("RUN", "v04.30")


def test_the_simulated_cpu_itself_refuses_a_plain_image_across_4_20(lab, tmp_path):
    """Defence in depth: sent past the module, the CPU answers device state conflict."""
    sim, host = lab
    run = Run(tmp_path, host, dry_run=True)
    updated(run, tmp_path)
    drv = M580Driver(host)
    with pytest.raises(CipServiceError, match="device state conflict"):
        drv.transport().send_image(b"old" * 1000, parse_version("v03.20"), "usb")
    with pytest.raises(CipServiceError, match="device state conflict"):
        drv.transport().restore_previous()
    assert sim.device(host.name).running == parse_version("v04.30")


# -- the special downgrade, then the application back -----------------------------------------

def test_application_backup_is_an_owner_only_artifact_with_its_crc(lab, tmp_path):
    _, host = lab
    run = Run(tmp_path, host, dry_run=True)
    result = run.step("m580.application_backup")
    saved = result.facts["application"]["as_found"]
    path = Path(saved["path"])
    assert path.parent == tmp_path / "run" / "m580" and path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert (saved["name"], saved["size"]) == ("LINE3_PID", path.stat().st_size)
    assert saved["checksum"].startswith("crc32:") and len(saved["checksum"]) == 14
    assert saved["source"].startswith("the CPU (the simulator's application store")
    kinds = [kind for kind, _ in run.events]
    assert kinds == ["application_saved"] and run.events[0][1]["sha256"] == saved["sha256"]
    assert f"saved as {path.name}, {saved['checksum']}" in result.msg


def test_special_downgrade_erases_the_application_and_the_download_puts_it_back(lab,
                                                                               tmp_path):
    sim, host = lab
    run = Run(tmp_path, host, dry_run=True)
    updated(run, tmp_path)
    backup = run.facts["plc"]["application"]["as_found"]
    before = run.ctx.clock.elapsed()
    down = run.step("m580.downgrade", image=special_image(), version="v03.20", port="usb",
                    min_product_version="PV 05")
    assert down.changed and not down.failed, down.msg
    assert run.ctx.clock.elapsed() - before == pytest.approx(8 * 60, abs=5)
    assert down.facts["downgrade"]["product_version"] == "PV 07"
    assert down.facts["downgrade"]["product_version_read"].startswith("device")
    # the reboot: up on v03.20 without the application, not in RUN, no I/O in run mode
    waited = run.step("m580.wait_run", timeout="2m")
    assert waited.failed
    facts = status(run)
    assert (facts["state"], facts["running_version"], facts["run_led"]) == (
        "NOCONF", "v03.20", "off")
    identity = M580Driver(host).cip_identity()
    assert identity.status == 0x0030 and M580Driver(host).modbus_identity().objects.get(6) is None
    missing = run.step("m580.verify_application")
    assert missing.failed and "no application" in missing.msg
    # the as-found backup back in, CRC checked, the CPU in RUN
    before = run.ctx.clock.elapsed()
    download = run.step("m580.application_download")
    assert download.changed and not download.failed, download.msg
    assert run.ctx.clock.elapsed() - before == pytest.approx(3 * 60, abs=5)
    assert download.facts["application_download"]["checksum"] == backup["checksum"]
    assert download.facts["application_download"]["state"] == "RUN"
    check = run.step("m580.verify_application")
    assert not check.failed and check.facts["application_check"]["evidence"] == "device_checksum"
    assert not run.step("m580.wait_run").failed
    assert not run.step("m580.verify_version", version="v03.20").failed
    assert sim.device(host.name).downloads == 1
    again = run.step("m580.application_download")  # nothing left to do: nothing sent
    assert not again.changed and "already runs" in again.msg
    assert sim.device(host.name).downloads == 1


def test_a_damaged_backup_is_not_downloaded(lab, tmp_path):
    _, host = lab
    run = Run(tmp_path, host, dry_run=True)
    path = Path(run.step("m580.application_backup").facts["application"]["as_found"]["path"])
    path.chmod(0o600)
    with open(path, "ab") as f:
        f.write(b"!")
    result = run.step("m580.application_download")
    assert result.failed and "changed since it was saved" in result.msg


def test_the_download_read_back_waits_out_the_loading_cpu(lab, tmp_path):
    """Crashed right after the image reached the CPU: still moving, then applied."""
    from otpatch.engine import runner
    from otpatch.modules.m580 import appstore

    sim, host = lab
    run = Run(tmp_path, host, dry_run=True)
    backup = run.step("m580.application_backup").facts["application"]["as_found"]
    store = appstore.for_simulator(M580Driver(host), "test")
    store.download("LINE3_PID", Path(backup["path"]).read_bytes())  # then the crash
    assert run.read_back("m580.application_download").moving
    done = runner.read_back("m580.application_download", {"target": "plc"}, run.ctx)
    assert done.check.applied is True and done.waited == 3 * 60


@pytest.mark.parametrize("pv, minimum, refused_by", [
    ("PV 03", "PV 05", "module"),  # below what Schneider support states: nothing sent
    (None, "PV 05", "module"),  # no product version in the inventory
    ("PV 04", "PV 03", "cpu"),  # the module's figure allows it, the CPU's does not
], ids=["below-minimum", "not-in-inventory", "cpu-refuses"])
def test_a_product_version_too_low_is_refused(tmp_path, pv, minimum, refused_by):
    host = rollback_host(product_version=pv)
    with start_simulators([host]) as sim:
        run = Run(tmp_path, bound(sim, host), dry_run=True)
        updated(run, tmp_path)
        result = run.step("m580.downgrade", image=special_image(), version="v03.20",
                          port="usb", min_product_version=minimum)
        cpu = sim.device(host.name)
    assert result.failed and not result.changed
    assert cpu.running == parse_version("v04.30") and cpu.application is not None
    assert cpu.transfers == 1  # the update's: the downgrade never reached flash
    if refused_by == "module":
        assert "othing was sent" in result.msg
        assert ("below PV 05" if pv else "no product_version in the inventory") in result.msg
    else:
        assert "the CPU refused the image" in result.msg


def test_an_inventory_product_version_the_cpu_does_not_show_is_refused(lab, tmp_path):
    sim, host = lab
    run = Run(tmp_path, with_vars(host, product_version="PV 09"), dry_run=True)
    updated(run, tmp_path)
    result = run.step("m580.downgrade", image=special_image(), version="v03.20", port="usb",
                      min_product_version="PV 05")
    assert result.failed and "shows product version PV 07, the inventory says PV 09" in \
        result.msg
    assert sim.device(host.name).transfers == 1


# -- the spare CPU ----------------------------------------------------------------------------

def test_the_spare_cpu_comes_in_with_its_sd_card_and_its_serial_is_checked(lab, tmp_path):
    sim, host = lab
    run = Run(tmp_path, host, dry_run=True)
    updated(run, tmp_path)
    old_serial = run.facts["plc"]["serial"]
    before = run.ctx.clock.elapsed()
    swap = run.step("m580.spare_swap")
    assert swap.changed and not swap.failed, swap.msg
    assert run.ctx.clock.elapsed() - before == pytest.approx(18 * 60, abs=10)
    facts = swap.facts["spare_swap"]
    assert facts["serial_before"] == old_serial != facts["serial_after"]
    assert (facts["spare_serial"], facts["running_version"]) == (SPARE["serial_number"],
                                                                 "v03.20")
    assert run.read_back("m580.spare_swap").applied is True
    assert not run.step("m580.verify_version", version="v03.20").failed
    check = run.step("m580.verify_application")  # the SD card's: the as-found one
    assert not check.failed, check.msg
    assert status(run)["state"] == "RUN"
    assert "already in" in run.step("m580.spare_swap").msg and sim.device(host.name).swaps == 1


def test_a_spare_whose_serial_is_not_the_registered_one_fails(lab, tmp_path):
    _, host = lab
    wrong = with_vars(host, spare_cpu={**SPARE, "serial_number": "SIM-M580-SPARE-99"})
    run = Run(tmp_path, wrong, dry_run=True)
    result = run.step("m580.spare_swap", timeout="25m")
    assert result.failed and result.changed
    assert "the CPU that answers is not the spare SIM-M580-SPARE-99" in result.msg


def test_no_registered_spare_is_refused_before_anything(tmp_path):
    host = rollback_host(spare=None)
    with start_simulators([host]) as sim:
        run = Run(tmp_path, bound(sim, host), dry_run=True)
        result = run.step("m580.spare_swap")
        assert sim.device(host.name).swaps == 0
    assert result.failed and "no spare_cpu in the inventory" in result.msg


# -- guided on a host marked `simulator: false` -----------------------------------------------

def test_a_guided_transfer_pauses_for_the_person_then_reads_the_version_back(
        lab, tmp_path, monkeypatch):
    """A real CPU cannot run here, so the host entry points at a simulator but is marked
    `simulator: false`: it must receive no simulator call at all, only the public reads
    (FC 43/14, CIP Identity) that the simulator answers like a real CPU. That is the check.
    The simulator's own loader then stands for the person's EADM."""
    sim, host = lab
    real = as_real(host)
    run = Run(tmp_path, real, dry_run=False)
    cpu = sim.device(host.name)
    calls = simulator_calls(monkeypatch, cpu)
    image = firmware_image(tmp_path)
    args = {"image": image, "version": "SV4.30", "port": "ethernet_mgmt"}
    asked = run.step("m580.firmware_transfer", **args)
    assert asked.awaiting and not asked.failed and not asked.changed
    serial = M580Driver(real).cip_identity().serial_hex
    for bound_word in ("lab-plc-1", f"CIP serial {serial}", "SV4.30 (v04.30)",
                       "EcoStruxure Automation Device Maintenance", image["hash"],
                       "the Ethernet management port"):
        assert bound_word in asked.awaiting
    assert calls == [] and cpu.transfers == 0
    back = run.read_back("m580.firmware_transfer", **args)  # `resume` before the person acted
    assert back.applied is False and "runs v03.20, not v04.30" in back.result.msg
    # the person updates the CPU (the simulator's loader standing for EADM) and signs
    monkeypatch.undo()
    drv = M580Driver(host)
    drv.transport().send_image(Path(image["path"]).read_bytes(), parse_version("SV4.30"),
                               "ethernet_mgmt")
    drv.advance_sim_clock(8 * 60 + 60)
    calls = simulator_calls(monkeypatch, cpu)
    statement = run.sign(asked)
    assert run.read_back("m580.firmware_transfer", **args).applied is True  # resume: took effect
    done = run.step("m580.firmware_transfer", image=image, version="V4.3", port="ethernet_mgmt")
    assert not done.failed and "already runs v04.30" in done.msg  # the check before asking
    again = run.step("m580.restore_previous", version="v03.20")
    assert again.failed and CROSSING in again.msg
    assert calls == []
    assert statement in asked.awaiting


def test_a_signed_guided_transfer_is_recorded_with_its_attestation(tmp_path, monkeypatch):
    """The person starts the update in EADM (here the simulator's loader, on a fast clock)
    and signs what the step asked; the step, run again, takes the signed attestation and
    waits until the CPU reads back v04.30 through public reads only."""
    host = rollback_host()
    with start_simulators([host], time_scale=EXECUTE_TIME_SCALE) as sim:
        sim_host = bound(sim, host)
        run = Run(tmp_path, as_real(sim_host), dry_run=False)
        image = firmware_image(tmp_path)
        args = {"image": image, "version": "SV4.30", "port": "usb", "interval": 0.05}
        asked = run.step("m580.firmware_transfer", **args)
        M580Driver(sim_host).transport().send_image(Path(image["path"]).read_bytes(),
                                                    parse_version("SV4.30"), "usb")
        run.sign(asked)
        calls = simulator_calls(monkeypatch, sim.device(host.name))
        done = run.step("m580.firmware_transfer", **args)
    assert calls == []
    assert done.changed and not done.failed, done.msg
    record = done.facts["transfer"]["attestation"]
    assert record["person"] == "Dana Okafor" and record["signed_by_key"] == run.key.public_key
    assert record["statement"] in asked.awaiting and done.facts["revision"] == "v04.30"
    assert "confirmed by Dana Okafor (operator); the CPU reads back v04.30" in done.msg


def test_a_person_who_says_no_fails_the_guided_step(lab, tmp_path):
    _, host = lab
    run = Run(tmp_path, as_real(host), dry_run=False)
    args = {"image": firmware_image(tmp_path), "version": "SV4.30", "port": "usb"}
    run.sign(run.step("m580.firmware_transfer", **args), confirmed=False)
    result = run.step("m580.firmware_transfer", **args)
    assert result.failed and not result.changed and "did not confirm" in result.msg


def test_guided_backup_waits_for_the_archive_then_binds_its_sha256(lab, tmp_path):
    _, host = lab
    real = as_real(host)
    run = Run(tmp_path, real, dry_run=False)
    waiting = run.step("m580.application_backup")
    assert waiting.awaiting and "File > Save Archive" in waiting.awaiting
    path = tmp_path / "run" / "m580" / "lab-plc-1-as_found.sta"
    assert str(path) in waiting.awaiting
    path.write_bytes(b"an STA archive from Control Expert")
    asked = run.step("m580.application_backup")
    assert asked.awaiting.startswith("needs a person at a terminal: operator: ")
    assert "lab-plc-1-as_found.sta is the application archive" in asked.awaiting
    run.sign(asked)
    saved = run.step("m580.application_backup")
    facts = saved.facts["application"]["as_found"]
    assert not saved.failed and facts["checksum"] == "" and facts["name"] == "LINE3_PID"
    assert facts["sha256"] in asked.awaiting
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    run.next_step()
    check = run.step("m580.verify_application")  # the CPU answers FC 43 object 0x06
    assert not check.failed
    assert check.facts["application_check"]["evidence"] == "fc43_application_name"


def test_guided_downgrade_binds_the_product_version_of_the_label(lab, tmp_path):
    sim, host = lab
    drv = M580Driver(host)
    drv.transport().send_image(b"x" * 5000, parse_version("SV4.30"), "usb")
    drv.advance_sim_clock(9 * 60)
    real = as_real(host)
    run = Run(tmp_path, real, dry_run=False)
    asked = run.step("m580.downgrade", image=special_image(), version="v03.20", port="usb",
                     min_product_version="PV 05")
    assert asked.awaiting and "product version PV 07 on its label" in asked.awaiting
    assert "the special firmware from Schneider support" in asked.awaiting
    low = Run(tmp_path, with_vars(real, product_version="PV 02"), dry_run=False)
    refused = low.step("m580.downgrade", image=special_image(), version="v03.20", port="usb",
                       min_product_version="PV 05")
    assert refused.failed and "below PV 05" in refused.msg
    assert sim.device(host.name).transfers == 1
