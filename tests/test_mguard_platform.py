"""Which mGuard runs which firmware: the platform table, packages of the other platform
refused before any upload (by the module and by the simulator), the simulator playing the
inventory's model on its own line, and the shipped stand-in packages."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from otpatch.modules.contract.errors import InputError
from otpatch.modules.mguard import atv, package
from otpatch.modules.mguard.driver import DeviceAnswer, MguardDriver
from otpatch.modules.mguard.lab import start_simulators
from otpatch.modules.mguard.platform import (MGUARD2, NT, RS, classify, firmware_problem,
                                             release_of)
from otpatch.modules.mguard.simdevice import MguardDevice, firmware_image
from tests.fixtures.mguard.support import (MGUARD_4302, RS4000, Run, firmware_file,  # noqa: F401
                                           lab_password, make_lab, mguard_host)

ROOT = Path(__file__).resolve().parents[1]
STAND_INS = ROOT / "playbooks" / "firmware"

CLASSIFIED = [  # model, part number, platform (None: not an mGuard we know)
    ("FL MGUARD RS4000", "2700634", RS), ("FL MGUARD RS4000 TX/TX VPN", "", RS),
    ("FL MGUARD RS2000 TX/TX-B", "", RS), ("TC MGUARD RS4000 4G VPN", "", RS),
    ("FL MGUARD RS4004 TX/DTX", "", RS), ("FL MGUARD SMART2", "", RS),
    ("FL MGUARD PCI4000", "", RS), ("FL MGUARD PCIE4000", "", RS),
    ("FL MGUARD DELTA TX/TX", "", RS), ("FL MGUARD GT/GT", "", RS),
    ("FL MGUARD CENTERPORT", "", RS), ("FL MGUARD CORE TX", "", RS),
    ("  fl mguard   rs4000 ", "", RS), ("EAGLE mGuard", "", RS),
    ("FL MGUARD 2102", "", MGUARD2), ("FL MGUARD 2105", "", MGUARD2),
    ("FL MGUARD 4302", "", MGUARD2), ("FL MGUARD 4305", "", MGUARD2),
    ("FL MGUARD 4102 PCI", "", MGUARD2), ("FL MGUARD 4102 PCIE", "", MGUARD2),
    ("FL MGUARD 1102", "", NT), ("", "1153078", NT),
    ("Modicon M580", "BMEP581020", None), ("FL MGUARD", "", None), ("", "", None),
]


@pytest.mark.parametrize("model,part,platform", CLASSIFIED,
                         ids=[f"{m or p or 'empty'}" for m, p, _ in CLASSIFIED])
def test_a_model_names_its_platform(model, part, platform):
    assert classify(model, part) is platform


@pytest.mark.parametrize("version,rs,mguard2", [
    ("8.8.1", True, False), ("8.9.3", True, False), ("8.0.2.default", True, False),
    ("7.6.8", True, False), ("10.5.0", False, True), ("10.3.1.default", False, True),
    ("9.0.0", False, False), ("garbage", False, False),
])
def test_a_platform_runs_its_own_firmware_line(version, rs, mguard2):
    assert (RS.runs(version), MGUARD2.runs(version)) == (rs, mguard2)


@pytest.mark.parametrize("model,firmware,says", [
    ("FL MGUARD RS4000", "8.9.3", None),
    ("FL MGUARD 4302", "10.5.0", None),
    ("FL MGUARD RS4000", "10.5.0", "which runs firmware 8.x, not 10.5.0; 10.5.0 is the FL "
                                   "MGUARD 2000/4000 platform's line"),
    ("FL MGUARD 4302", "8.9.3", "which runs firmware 10.x, not 8.9.3"),
    ("Modicon M580", "8.9.3", "no mGuard model otpatch knows the platform of"),
], ids=["rs4000-8.x", "4302-10.x", "rs4000-10.x", "4302-8.x", "unknown"])
def test_a_model_and_firmware_that_do_not_go_together_are_named(model, firmware, says):
    problem = firmware_problem(model, firmware, who="lab-mguard-1")
    assert (problem is None) if says is None else (says in problem), problem
    if problem and "runs firmware" in problem:
        assert "help.mguard.com" in problem  # the manual that says so


def test_a_profile_version_names_its_firmware():
    assert release_of("8.8.1.default") == "8.8.1" and release_of("10.5.0") == "10.5.0"


# -- packages of the other platform ------------------------------------------------------------

@pytest.mark.parametrize("device,version,other", [
    (RS4000, "10.5.0", "FL MGUARD 2000/4000"), (MGUARD_4302, "8.9.3", "mGuard RS (classic)"),
], ids=["10.x-package-for-an-rs4000", "8.x-package-for-a-4302"])
def test_a_package_of_the_other_platform_is_refused_before_any_upload(make_lab, tmp_path, device,
                                                                      version, other):
    lab = make_lab(hosts=[mguard_host(device=device)])
    run = Run(tmp_path, lab.host())
    own = "8.9.3" if version.startswith("10") else "10.5.0"  # a target of the device's line
    image = firmware_file(tmp_path, version=version)
    for target in (version, own):
        result = run.step("mguard.firmware_update", image=image, target_version=target)
        assert result.failed and not result.changed and result.msg.startswith("not uploaded: ")
        assert device[0] in result.msg and other in result.msg  # both platforms named
    assert lab.sim().device.uploads == 0 and lab.sim().device.firmware == device[2]
    assert not [r for r in lab.sim().requests if "firmware" in r["query"]]


def test_the_simulator_refuses_a_package_of_the_other_platform_too(make_lab, tmp_path):
    lab = make_lab(hosts=[mguard_host(device=RS4000)])
    package_file = tmp_path / "FL_MGUARD_10.5.0.bin"
    package_file.write_bytes(firmware_image("10.5.0"))
    with MguardDriver(lab.host()) as driver:
        driver.require_simulator()
        with pytest.raises(DeviceAnswer, match="package is for the FL MGUARD 2000/4000 platform"):
            driver.upload_firmware(package_file)
        vendor = tmp_path / "vendor-update-10.5.0.bin"  # not a stand-in: its name's version
        vendor.write_bytes(b"\x00signed" * 64)
        with pytest.raises(DeviceAnswer, match="firmware 10.5.0 is not for this FL MGUARD RS4000"):
            driver.upload_firmware(vendor)
    assert lab.sim().device.uploads == 0


# -- the simulator plays the inventory's model ------------------------------------------------

def test_an_rs4000_simulator_on_8x_writes_8x_profiles_and_updates_within_its_line(make_lab,
                                                                                  tmp_path):
    lab = make_lab(hosts=[mguard_host(device=RS4000)])
    run = Run(tmp_path, lab.host())
    saved = run.step("mguard.export_profile").facts["profile"]
    text = Path(saved["path"]).read_text()
    assert text.splitlines()[1] == "#version 8.8.1.default"
    assert "VPN_START" in text and "VPN_ENABLED" not in text  # 8.1 and later names
    assert run.step("mguard.firmware_update", image=firmware_file(tmp_path, version="8.9.3"),
                    target_version="8.9.3").changed
    assert not run.step("mguard.wait_ready", expect_version="8.9.3").failed
    after = run.step("mguard.export_profile", label="after").facts["profiles"]["after"]
    assert after["atv_version"] == "8.9.3.default"
    assert after["rules_digest"] == saved["rules_digest"]


def test_an_rs4000_before_81_crosses_the_81_renames_on_its_update():
    device = MguardDevice("lab-mguard-1", firmware="8.0.2", model="FL MGUARD RS4000")
    assert b"VPN_ENABLED" in device.export_profile().encode()
    device.upload_firmware(firmware_image("8.9.3"))
    device.install_firmware()
    device.advance(180)
    doc = atv.parse(device.export_profile())
    assert doc.version == "8.9.3.default" and "TARGET_REF" in device.export_profile()


@pytest.mark.parametrize("model,firmware", [("FL MGUARD RS4000", "10.3.1"),
                                            ("FL MGUARD 4302", "8.8.1"),
                                            ("FL MGUARD 9999X", "8.8.1")],
                         ids=["rs4000-on-10.x", "4302-on-8.x", "unknown-model"])
def test_a_lab_host_whose_model_cannot_run_its_firmware_is_refused_at_start(lab_password, model,
                                                                            firmware):
    import dataclasses
    host = dataclasses.replace(mguard_host(), model=model, firmware=firmware)
    with pytest.raises(InputError, match=r"^lab-mguard-1: ") as refused:
        start_simulators([host])
    assert "the simulator plays the model and firmware the inventory names" in str(refused.value)


@pytest.mark.parametrize("firmware,model", [("10.3.1", "FL MGUARD 4302"),
                                            ("8.8.1", "FL MGUARD RS4000")])
def test_a_device_without_a_model_is_one_of_its_firmwares_platform(firmware, model):
    assert MguardDevice("x", firmware=firmware).model == model


# -- the shipped stand-ins ---------------------------------------------------------------------

SHIPPED = [("FL_MGUARD_10.5.0.bin", "10.5.0", MGUARD2, 243000),
           ("FL_MGUARD_RS_8.9.3.bin", "8.9.3", RS, 239000)]


@pytest.mark.parametrize("name,version,platform,size", SHIPPED, ids=[s[0] for s in SHIPPED])
def test_the_shipped_stand_ins_are_what_package_makes_and_the_readme_pins(name, version,
                                                                          platform, size):
    data = (STAND_INS / name).read_bytes()
    assert data == package.stand_in(version, platform=platform, size=size)
    info = package.read_header(data)
    assert (info.version, info.platform) == (version, platform)
    assert b"NOT a real image" in data
    readme = (STAND_INS / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith(f"| {name} "))
    md5, sha = re.findall(r"`([0-9a-f]{32,64})`", row)
    assert md5 == hashlib.md5(data).hexdigest() and sha == hashlib.sha256(data).hexdigest()
