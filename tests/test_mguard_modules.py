"""Every mGuard module against a real simulator over HTTPS, with a real run context: dry runs
on a virtual clock, execute runs on the wall clock with a time-scaled simulator; faults."""
from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from otpatch.engine import runner
from otpatch.modules import registry
from otpatch.modules.contract.module import Module
from otpatch.modules.mguard import atv, profile
from otpatch.modules.mguard.driver import MguardDriver
from otpatch.modules.mguard.simprofile import SIM_PSK
from tests.fixtures.mguard.support import (FIXTURES, MGUARD_4302, RS4000, TIME_SCALE,  # noqa
                                           Run, firmware_file, lab_password, make_lab,
                                           mguard_host)


def one_rule_less(saved: str, folder: Path) -> Path:
    """A profile like the saved one with its first incoming rule deleted (a bad change)."""
    doc = atv.parse(Path(saved).read_text(encoding="utf-8"))
    del doc.settings["FW_INCOMING"].rows[0]
    path = folder / "one-rule-less.atv"
    path.write_text(atv.dump(doc), encoding="utf-8")
    return path


@pytest.fixture
def dry(make_lab, tmp_path):
    lab = make_lab()
    return Run(tmp_path, lab.host()), lab


# -- reading ----------------------------------------------------------------------------------

@pytest.mark.parametrize("device,facts", [
    (RS4000, {"firmware_version": "8.8.1", "model": "FL MGUARD RS4000", "part_number": "2700634",
              "platform": "RS", "firmware_line": "8.x"}),
    (MGUARD_4302, {"firmware_version": "10.3.1", "model": "FL MGUARD 4302", "part_number": "",
                   "platform": "2000/4000", "firmware_line": "10.x"}),
], ids=["rs4000-8.x", "4302-10.x"])
def test_version_reports_firmware_model_serial_and_platform(make_lab, tmp_path, device, facts):
    lab = make_lab(hosts=[mguard_host(device=device)])
    result = Run(tmp_path, lab.host()).step("mguard.version")
    assert not result.failed
    assert result.facts == {**facts, "serial": "SIM-MGUARD-0001", "evidence": "simulator"}


def test_export_saves_the_profile_in_the_change_store_with_its_sha256(dry):
    run, _ = dry
    result = run.step("mguard.export_profile")
    saved = result.facts["profile"]
    path = Path(saved["path"])
    assert path.parent == run.ctx.run_dir / "mguard" and path.suffix == ".atv"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it may hold VPN keys
    from otpatch.modules.firmware.hashing import file_digests
    assert saved["sha256"] == file_digests(path)["sha256"]
    assert path.read_text().splitlines()[1].startswith("#version 10.3.1")
    assert ("profile_saved", {"host": "lab-mguard-1", "path": str(path),
                              "sha256": saved["sha256"], "size": path.stat().st_size,
                              "container": "atv", "label": "as_found"}) in run.events
    assert saved["rules"]["total"] == 16 and saved["vlans"] == [10, 20, 30]
    assert [t["name"] for t in saved["tunnels"]] == ["remote-service", "plant-b-historian"]


def test_nothing_a_module_reports_carries_the_vpn_key(dry):
    run, _ = dry
    results = [run.step("mguard.export_profile"),
               run.step("mguard.check", expect_from="exported_profile")]
    shown = repr([(r.msg, r.facts) for r in results]) + repr(run.events)
    assert SIM_PSK not in shown


def test_check_without_expectations_records_what_it_sees(dry):
    run, _ = dry
    result = run.step("mguard.check", label="as_found")
    seen = result.facts["checks"]["as_found"]
    assert not result.failed and seen["ok"] and seen["expected"] == {}
    assert seen["observed"]["rules_active"] == 16
    assert seen["observed"]["tunnels_up"] == ["plant-b-historian", "remote-service"]


def test_check_without_an_exported_profile_says_what_is_missing(dry):
    run, _ = dry
    result = run.step("mguard.check", expect_from="exported_profile")
    assert result.failed and "run mguard.export_profile first" in result.msg


# -- the procedure, dry run -------------------------------------------------------------------

@pytest.mark.parametrize("device,before,after", [(RS4000, "8.8.1", "8.9.3"),
                                                  (MGUARD_4302, "10.3.1", "10.5.0")],
                         ids=["rs4000-8.x", "4302-10.x"])
def test_export_update_check_and_rollback_import_in_simulated_time(make_lab, tmp_path, device,
                                                                   before, after):
    run = Run(tmp_path, make_lab(hosts=[mguard_host(device=device)]).host())
    image = firmware_file(tmp_path, version=after)
    started = time.monotonic()
    saved = run.step("mguard.export_profile").facts["profile"]
    assert saved["atv_version"] == f"{before}.default"
    assert not run.step("mguard.check", expect_from="exported_profile", label="before").failed
    update = run.step("mguard.firmware_update", image=image, target_version=after)
    assert update.changed and not update.failed, update.msg
    assert "SHA-256" in update.msg  # MD5 verified, SHA-256 recorded, and said so
    received = update.facts["firmware_update"]["device_received"]
    assert received["md5"] == image["hash"] and len(received["sha256"]) == 64
    ready = run.step("mguard.wait_ready", expect_version=after)
    assert not ready.failed and ready.facts["ready_after_s"] == 180  # 60 s install + 120 s
    checked = run.step("mguard.check", expect_from="exported_profile", label="after")
    assert not checked.failed, checked.msg
    checks = run.facts["fw"]["checks"]
    assert checks["before"]["observed"]["firmware_version"] == before
    assert checks["after"]["observed"]["firmware_version"] == after
    assert checks["before"]["observed"]["rules_active"] == \
        checks["after"]["observed"]["rules_active"] == 16
    bad = run.step("mguard.import_profile", profile=str(one_rule_less(saved["path"], tmp_path)))
    assert bad.changed and not bad.failed
    broken = run.step("mguard.check", expect_from="exported_profile", label="after_bad_change")
    assert broken.failed and "15 firewall rules active, expected 16" in broken.msg
    back = run.step("mguard.import_profile")  # the saved profile, SHA-256 checked
    assert back.changed and not back.failed, back.msg
    assert back.facts["import"]["rules_active"] == 16
    assert back.facts["import"]["restored_after_s"] <= 90
    assert not run.step("mguard.check", expect_from="exported_profile", label="restored").failed
    assert time.monotonic() - started < 10  # minutes of simulated time, seconds of real


def test_firmware_update_is_unchanged_when_the_device_already_runs_the_target(dry, tmp_path):
    run, _ = dry
    image = firmware_file(tmp_path)
    assert run.step("mguard.firmware_update", image=image, target_version="10.5.0").changed
    run.step("mguard.wait_ready")
    again = run.step("mguard.firmware_update", image=image, target_version="10.5.0")
    assert not again.changed and not again.failed
    assert again.msg == "already runs firmware 10.5.0"


def test_import_of_the_running_profile_changes_nothing(dry):
    run, _ = dry
    run.step("mguard.export_profile")
    again = run.step("mguard.import_profile")
    assert not again.changed and not again.failed
    assert again.msg.startswith("already in effect")


@pytest.mark.parametrize("change,message", [
    ("hash", "not uploaded: firmware image"),
    ("version", "not uploaded: the package fl-mguard-10.4.0.bin holds firmware '10.4.0', not "
                "the target 10.5.0"),
], ids=["published-hash-mismatch", "package-of-another-version"])
def test_firmware_update_refuses_a_package_that_is_not_the_approved_one(dry, tmp_path, change,
                                                                        message):
    run, lab = dry
    image = firmware_file(tmp_path, version="10.4.0" if change == "version" else "10.5.0")
    if change == "hash":
        image["hash"] = "0" * 32
    result = run.step("mguard.firmware_update", image=image, target_version="10.5.0")
    assert result.failed and not result.changed
    assert message in result.msg
    assert lab.sim().device.phase == "ready" and lab.sim().device.firmware == "10.3.1"
    assert lab.sim().device.uploads == 0  # refused before the upload


@pytest.mark.parametrize("name,ok", [("FL_MGUARD_4302-update-10.5.0.bin", True),
                                     ("update.bin", False)], ids=["version-in-name", "no-version"])
def test_a_vendor_package_in_a_dry_run_is_taken_at_its_file_names_version(dry, tmp_path, name,
                                                                          ok):
    import hashlib
    run, _ = dry
    package = tmp_path / name
    package.write_bytes(b"\x00signed vendor package stand-in" * 100)
    image = {"path": str(package), "algorithm": "sha256",
             "hash": hashlib.sha256(package.read_bytes()).hexdigest()}
    result = run.step("mguard.firmware_update", image=image, target_version="10.5.0")
    assert result.failed is not ok
    if not ok:
        assert "answered HTTP 400: not an mGuard firmware package this simulator can read" \
            in result.msg


def test_saved_profile_changed_since_export_is_not_imported(dry):
    run, _ = dry
    path = Path(run.step("mguard.export_profile").facts["profile"]["path"])
    path.write_text(path.read_text().replace('"502"', '"503"'))
    result = run.step("mguard.import_profile")
    assert result.failed and "changed since it was recorded" in result.msg


def test_wait_ready_gives_up_at_its_timeout_and_says_where_the_device_was(dry, tmp_path):
    run, _ = dry
    run.step("mguard.firmware_update", image=firmware_file(tmp_path), target_version="10.5.0")
    result = run.step("mguard.wait_ready", timeout="30s", interval="10s")
    assert result.failed
    assert result.msg == ("not ready after 30s simulated; last: state installing, "
                          "firmware 10.3.1")


def test_a_ready_device_with_the_wrong_firmware_fails_at_once(dry):
    run, _ = dry
    result = run.step("mguard.wait_ready", expect_version="10.5.0")
    assert result.failed
    assert result.msg == "ready, but reports firmware 10.3.1, expected 10.5.0"
    assert result.facts["waited_s"] == 0


# -- read-back after a crash ------------------------------------------------------------------

def test_firmware_update_read_back_before_and_after(dry, tmp_path):
    run, _ = dry
    args = {"image": firmware_file(tmp_path), "target_version": "10.5.0"}
    before = run.read_back("mguard.firmware_update", **args)
    assert before.applied is False and "still reports firmware 10.3.1" in before.result.msg
    run.step("mguard.firmware_update", **args)  # the crash came right after this
    moving = run.read_back("mguard.firmware_update", **args)
    assert moving.moving and moving.applied is None
    assert moving.result.msg == "state installing, firmware 10.3.1"
    assert moving.timeout == 600  # the module's own bound: READY_TIMEOUT
    # the engine waits it out (install 60 s, reboot 120 s without an answer), then reads again
    after = runner.read_back("mguard.firmware_update", {"target": "fw", **args}, run.ctx)
    assert after.check.applied is True
    assert after.check.result.facts == {"firmware_version": "10.5.0"}
    assert after.waited == 180 and after.moving == "state installing, firmware 10.3.1"
    assert run.ctx.clock.elapsed() == 180  # waited on the run's (virtual) clock


def test_import_read_back_is_moving_while_the_rules_come_back(dry, tmp_path):
    run, _ = dry
    saved = run.step("mguard.export_profile").facts["profile"]
    other = str(one_rule_less(saved["path"], tmp_path))
    with MguardDriver(run.ctx.targets["fw"][0]) as driver:  # the import sent, then the crash
        driver.require_simulator()
        driver.import_profile(Path(other).read_bytes())
    moving = run.read_back("mguard.import_profile", profile=other)
    assert moving.moving and "restore restoring" in moving.result.msg
    assert moving.timeout == 90
    after = runner.read_back("mguard.import_profile", {"target": "fw", "profile": other},
                             run.ctx)
    assert after.check.applied is True and not after.check.result.failed
    assert after.check.result.facts["import"]["rules_active"] == 15
    assert 0 < after.waited <= 75


def test_import_read_back_before_and_after(dry, tmp_path):
    run, _ = dry
    saved = run.step("mguard.export_profile").facts["profile"]
    other = str(one_rule_less(saved["path"], tmp_path))
    assert run.read_back("mguard.import_profile", profile=other).applied is False
    run.step("mguard.import_profile", profile=other)
    back = run.read_back("mguard.import_profile", profile=other)
    assert back.applied is True and back.result.facts["import"]["rules_active"] == 15


# -- faults -----------------------------------------------------------------------------------

@pytest.mark.parametrize("faults,active,failed", [
    ((), 5, False),
    (("profile_import_drops_rules",), 2, True),
], ids=["healthy", "profile_import_drops_rules"])
def test_import_counts_the_rules_that_really_came_back(make_lab, tmp_path, faults, active,
                                                        failed):
    lab = make_lab(faults=faults)
    run = Run(tmp_path, lab.host())
    result = run.step("mguard.import_profile", profile=str(FIXTURES / "plant-boundary.atv"))
    assert result.failed is failed and result.facts["import"]["rules_active"] == active
    if failed:
        assert result.msg == ("after 1m15s simulated 2 of 5 firewall rules of "
                              "plant-boundary.atv are active (limit 1m30s simulated)")


@pytest.mark.parametrize("how,why", [("ca_file", "not trusted"),
                                     ("fingerprint", "not the pinned one")])
def test_a_new_certificate_after_the_update_is_refused(make_lab, tmp_path, how, why):
    lab = make_lab(faults={"https_cert_changed"})
    run = Run(tmp_path, lab.host(how=how))
    assert run.step("mguard.firmware_update", image=firmware_file(tmp_path),
                    target_version="10.5.0").changed
    result = run.step("mguard.wait_ready", expect_version="10.5.0")
    assert result.failed and not result.unreachable
    assert why in result.msg and "Nothing was sent" in result.msg


def test_faults_of_other_devices_are_ignored(make_lab, tmp_path):
    lab = make_lab(faults={"hash_mismatch", "lost_io_connections"})
    assert lab.sim().device.faults == frozenset()


# -- execute mode against a time-scaled simulator ---------------------------------------------

def test_execute_mode_waits_in_real_time_on_a_time_scaled_simulator(make_lab, tmp_path):
    lab = make_lab(time_scale=TIME_SCALE)
    run = Run(tmp_path, lab.host(how="fingerprint"), dry_run=False)
    saved = run.step("mguard.export_profile").facts["profile"]
    assert run.step("mguard.firmware_update", image=firmware_file(tmp_path, algorithm="sha256"),
                    target_version="10.5.0").changed
    ready = run.step("mguard.wait_ready", expect_version="10.5.0", timeout="10s",
                     interval=0.02)
    assert not ready.failed, ready.msg
    assert 0 < ready.facts["waited_s"] < 5  # 180 simulated seconds at 0.002: under a second
    run.step("mguard.import_profile", profile=str(one_rule_less(saved["path"], tmp_path)),
             interval=0.02)
    back = run.step("mguard.import_profile", interval=0.02, restore_timeout="5s")
    assert back.changed and not back.failed, back.msg
    assert run.step("mguard.check", expect_from="exported_profile").facts["checks"][
        "check"]["ok"]


# -- several hosts and bad arguments ----------------------------------------------------------

def test_a_target_of_two_mguards_reports_each(make_lab, tmp_path):
    lab = make_lab(hosts=[mguard_host("lab-mguard-1"), mguard_host("lab-mguard-2")])
    run = Run(tmp_path, lab.host())
    run.ctx.targets = {"fw": (lab.host("lab-mguard-1"), lab.host("lab-mguard-2"))}
    result = run.step("mguard.version")
    assert set(result.facts["hosts"]) == {"lab-mguard-1", "lab-mguard-2"}
    assert result.msg.startswith("lab-mguard-1: FL MGUARD 4302")


def test_read_back_over_two_mguards_with_one_updated_asks_a_human(make_lab, tmp_path):
    lab = make_lab(hosts=[mguard_host("lab-mguard-1"), mguard_host("lab-mguard-2")])
    run = Run(tmp_path, lab.host())
    args = {"image": firmware_file(tmp_path), "target_version": "10.5.0"}
    run.step("mguard.firmware_update", **args)  # lab-mguard-1 only, then the crash
    run.ctx.targets = {"fw": (lab.host("lab-mguard-1"), lab.host("lab-mguard-2"))}
    assert run.read_back("mguard.firmware_update", **args).moving  # lab-mguard-1 installs
    mixed = runner.read_back("mguard.firmware_update", {"target": "fw", **args}, run.ctx)
    assert mixed.check.applied is None and not mixed.check.moving  # settled, and mixed
    assert "lab-mguard-1: reports firmware 10.5.0" in mixed.check.result.msg
    assert "lab-mguard-2: still reports firmware 10.3.1" in mixed.check.result.msg


BAD_ARGS = [
    ("mguard.version", {}, "'target' is a required property"),
    ("mguard.firmware_update", {"target": "fw", "target_version": "10.5.0",
                                "image": {"path": "x", "algorithm": "sha1", "hash": "ab"}},
     "is not one of ['md5', 'sha256']"),
    ("mguard.firmware_update", {"target": "fw", "image": {"path": "x", "algorithm": "md5",
                                                          "hash": "0" * 32}},
     "'target_version' is a required property"),
    ("mguard.check", {"target": "fw", "expect": {"rules": -1}}, "less than the minimum"),
    ("mguard.check", {"target": "fw", "expect": {"vlan": [10]}}, "Additional properties"),
    ("mguard.wait_ready", {"target": "fw", "timeout": "soon"}, "is not valid"),
    ("mguard.import_profile", {"target": "fw", "sha256": "abc"}, "does not match"),
]


@pytest.mark.parametrize("module,args,message", BAD_ARGS,
                         ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(BAD_ARGS)])
def test_bad_arguments_are_refused_before_anything_runs(module, args, message):
    problems = registry.arg_problems(module, args)
    assert problems and any(message in text for _, text in problems), problems


def test_every_module_declares_its_contract():
    from otpatch.modules import mguard

    MODULES = [registry.get(name) for name in mguard.MODULES]
    changing = {m.name for m in MODULES if m.changes_device}
    assert changing == {"mguard.import_profile", "mguard.firmware_update"}
    for module in MODULES:
        assert module.supports_dry_run and module.doc
        assert module.args_schema["properties"]["target"]["x-otpatch-target"]
        if module.changes_device:  # re-verified on the device after a crash, never redone
            assert module.read_back is not Module.read_back and module.read_back_doc


def test_the_profile_summary_of_an_export_matches_the_device(dry):
    run, lab = dry
    saved = run.step("mguard.export_profile").facts["profile"]
    assert saved["rules"]["total"] == profile.rule_count(lab.sim().device.config)
