"""The mGuard steps on a host the inventory marks `simulator: false`: a person acts in the web
UI, otpatch waits for the file they save and for their signed attestation, then reads it.
The "device" is a real simulator over HTTPS; its request log proves it received nothing but,
for wait_ready, TLS handshakes. Execute mode, wall clock."""
from __future__ import annotations

import dataclasses
import os
import stat
import time
from pathlib import Path
from types import MappingProxyType

import pytest

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.mguard import atv
from otpatch.modules.mguard.simdevice import firmware_image
from otpatch.modules.mguard.simprofile import SIM_PSK
from otpatch.modules.simulator_only import REFUSAL
from tests.fixtures.mguard.guided import PERSON, GuidedRun, as_real
from tests.fixtures.mguard.support import (FIXTURES, RS4000, Run,  # noqa: F401
                                           firmware_file, lab_password, make_lab, mguard_host)
from tests.fixtures.plain_peers import HttpsRecorder


@pytest.fixture
def plant(make_lab, tmp_path):
    """(guided run over a `simulator: false` RS4000 that is really a simulator, the sim)."""
    lab = make_lab(hosts=[mguard_host(device=RS4000)])
    sim = lab.sim()
    return GuidedRun(tmp_path, as_real(lab.host(), sim)), sim


def counted(read, count: int) -> bool:
    """Whether a server's count reaches `count` (its thread counts a handshake a moment
    after the client has finished it: looked at for up to 5 s), and stays there."""
    deadline = time.monotonic() + 5
    while read() < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return read() == count


def handshakes_seen(sim, count: int) -> bool:
    return counted(lambda: sim.handshakes, count)


def untouched(sim, handshakes: bool = False) -> None:
    """The device received no HTTP request at all (so no login, no action), and no TLS
    handshake either unless the step may make one."""
    assert sim.requests == [], sim.requests
    if not handshakes:
        assert sim.handshakes == 0


def export(run: GuidedRun, sim, label: str = "as_found", **args):
    """export_profile through its three answers: waiting for the file, then for the
    attestation, then recorded."""
    waiting = run.step("mguard.export_profile", label=label, **args)
    run.download(label, sim.device)
    asks = run.step("mguard.export_profile", label=label, **args)
    run.sign(asks)
    return waiting, asks, run.step("mguard.export_profile", label=label, **args)


# -- mguard.export_profile --------------------------------------------------------------------

def test_guided_export_waits_for_the_file_then_the_signature_then_records_it(plant):
    run, sim = plant
    waiting, asks, done = export(run, sim)
    path = run.ctx.run_dir / "mguard" / "lab-mguard-1-as_found.atv"
    assert waiting.awaiting and not waiting.failed and not waiting.changed
    assert "Management >> Configuration Profiles" in waiting.awaiting
    assert str(path) in waiting.awaiting
    sha = sha256_hex(path.read_bytes())
    assert asks.awaiting.endswith(f"SHA-256 {sha}")
    assert "lab-mguard-1 (serial SIM-MGUARD-0001, FL MGUARD RS4000)" in asks.awaiting
    assert not done.failed and not done.awaiting, done.msg
    saved = done.facts["profile"]
    assert saved["path"] == str(path) and saved["sha256"] == sha
    assert saved["atv_version"] == "8.8.1.default" and saved["rules"]["total"] == 16
    assert saved["evidence"] == "guided_export"
    assert saved["attestation"]["person"] == PERSON and saved["attestation"]["signed_by_key"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it may hold VPN keys
    assert ("profile_saved", {"host": "lab-mguard-1", "path": str(path), "sha256": sha,
                              "size": path.stat().st_size, "container": "atv",
                              "label": "as_found", "evidence": "guided",
                              "attestation": saved["attestation"]}) in run.events
    assert SIM_PSK not in repr((done.msg, done.facts, run.events))
    untouched(sim)


@pytest.mark.parametrize("content,why", [
    (b"<html>login</html>", "is not a readable configuration profile"),
    ("10.5.0", "was written by firmware 10.5.0 (#version), but lab-mguard-1 (FL MGUARD RS4000) "
               "is the mGuard RS (classic) platform (firmware 8.x): is it this device's "
               "profile?"),
], ids=["not-a-profile", "another-platforms-profile"])
def test_a_file_that_is_not_this_devices_profile_is_asked_for_again(plant, content, why):
    run, sim = plant
    run.step("mguard.export_profile")
    path = run.download("as_found", sim.device)
    if isinstance(content, str):
        path.write_text(path.read_text().replace("#version 8.8.1", f"#version {content}"))
    else:
        path.write_bytes(content)
    again = run.step("mguard.export_profile")
    assert again.awaiting and why in again.awaiting and "again" in again.awaiting
    assert not run.events
    untouched(sim)


def test_an_attestation_answered_no_fails_and_records_nothing(plant):
    run, sim = plant
    run.step("mguard.export_profile")
    run.download("as_found", sim.device)
    run.sign(run.step("mguard.export_profile"), confirmed=False)
    result = run.step("mguard.export_profile")
    assert result.failed and f"{PERSON} did not confirm" in result.msg
    assert not run.events and "profile" not in run.facts.get("fw", {})


def test_a_dry_run_refuses_a_host_marked_real_and_sends_nothing(plant, tmp_path):
    run, sim = plant
    dry = Run(tmp_path / "dry", run.host)
    result = dry.step("mguard.export_profile")
    assert result.failed and result.msg.startswith(f"{REFUSAL}lab-mguard-1: ")
    assert "a dry run rehearses on simulators only" in result.msg
    untouched(sim)


# -- mguard.version, mguard.check: from the export ----------------------------------------------

def test_version_and_check_read_the_export_of_this_run_and_attest_the_tunnels(plant):
    run, sim = plant
    export(run, sim)
    run.next_step()
    version = run.step("mguard.version")
    assert not version.failed and not version.awaiting, version.msg
    assert version.facts["firmware_version"] == "8.8.1"
    assert (version.facts["platform"], version.facts["firmware_line"]) == ("RS", "8.x")
    assert version.facts["evidence"]["source"] == "exported_profile"
    assert version.facts["evidence"]["label"] == "as_found"
    run.next_step()
    asks = run.step("mguard.check", expect_from="exported_profile", label="before")
    statement = run.sign(asks)
    assert "IPsec VPN >> IPsec Status" in statement
    assert "plant-b-historian, remote-service established" in statement
    checked = run.step("mguard.check", expect_from="exported_profile", label="before")
    assert not checked.failed, checked.msg
    seen = checked.facts["checks"]["before"]
    assert seen["observed"]["rules_configured"] == 16 and seen["observed"]["rules_active"] is None
    assert seen["evidence"]["source"] == "exported_profile"
    assert seen["evidence"]["tunnels"]["attested"] is True
    assert "16 rules configured" in checked.msg
    untouched(sim)  # no nph-vpn.cgi, no status call: nothing at all


def test_version_without_an_export_asks_for_one_of_its_own(plant):
    run, sim = plant
    waiting = run.step("mguard.version")
    assert waiting.awaiting and "lab-mguard-1-version.atv" in waiting.awaiting
    untouched(sim)


# -- mguard.firmware_update, mguard.wait_ready -------------------------------------------------

def test_guided_update_refuses_a_package_of_the_other_platform_before_asking_anyone(plant,
                                                                                   tmp_path):
    run, sim = plant
    package = tmp_path / "FL_MGUARD_8.9.3.bin"
    package.write_bytes(firmware_image("8.9.3", "FL MGUARD 4302 (another platform)"))
    image = {"path": str(package), "algorithm": "sha256",
             "hash": sha256_hex(package.read_bytes())}
    result = run.step("mguard.firmware_update", image=image, target_version="8.9.3")
    assert result.failed and not result.awaiting and not result.changed
    assert "is for the FL MGUARD 2000/4000 platform" in result.msg
    assert "lab-mguard-1 (FL MGUARD RS4000) is of the mGuard RS (classic) platform" in result.msg
    untouched(sim)


def test_guided_update_attested_then_wait_ready_handshakes_and_reads_the_new_version(plant,
                                                                                    tmp_path):
    run, sim = plant
    image = firmware_file(tmp_path, version="8.9.3")
    asks = run.step("mguard.firmware_update", image=image, target_version="8.9.3")
    statement = run.sign(asks)
    assert f"MD5 {image['hash']}" in statement and "Management >> Update" in statement
    assert "lab-mguard-1 (serial SIM-MGUARD-0001, FL MGUARD RS4000)" in statement
    done = run.step("mguard.firmware_update", image=image, target_version="8.9.3")
    assert done.changed and not done.failed, done.msg
    update = done.facts["firmware_update"]
    assert update["evidence"] == "attested" and update["device_received"] is None
    assert update["to_version"] == "8.9.3"
    untouched(sim)
    sim.device.upload_firmware(firmware_image("8.9.3"))  # what the person did in the web UI
    sim.device.install_firmware()
    sim.device.advance(180)
    run.next_step()
    waiting = run.step("mguard.wait_ready", expect_version="8.9.3", timeout="5s",
                       interval="1s")
    assert waiting.awaiting and "lab-mguard-1-ready.atv" in waiting.awaiting
    assert handshakes_seen(sim, 1) and sim.requests == []  # the handshake, nothing else
    run.download("ready", sim.device)
    run.sign(run.step("mguard.wait_ready", expect_version="8.9.3"))
    ready = run.step("mguard.wait_ready", expect_version="8.9.3")
    assert not ready.failed, ready.msg
    assert ready.facts["firmware_version"] == "8.9.3"
    assert ready.facts["tls"]["fingerprint"] == sim.fingerprint
    untouched(sim, handshakes=True)


def test_wait_ready_refuses_a_certificate_that_is_not_the_pinned_one(plant, tmp_path):
    run, sim = plant
    wrong = "sha256:" + ":".join(["AB"] * 32)
    run.ctx.targets["fw"] = (dataclasses.replace(run.host, vars=MappingProxyType(
        {"tls_fingerprint": wrong})),)
    result = run.step("mguard.wait_ready", timeout="10s", interval="1s")
    assert result.failed and not result.awaiting
    assert "not the pinned" in result.msg and "Nothing but the handshake was sent" in result.msg
    assert handshakes_seen(sim, 1) and sim.requests == []  # at once: no second try


# -- mguard.import_profile ---------------------------------------------------------------------

def test_guided_import_is_attested_then_read_back_by_rules_digest(plant):
    run, sim = plant
    export(run, sim)
    saved = run.facts["fw"]["profile"]
    run.next_step()
    unchanged = run.step("mguard.import_profile")  # the export says it runs that profile
    assert not unchanged.changed and not unchanged.failed
    assert unchanged.msg.startswith("already in effect")
    del sim.device.config.settings["FW_INCOMING"].rows[0]  # a change lost a rule
    run.next_step()
    export(run, sim, label="after")
    run.next_step()
    asks = run.step("mguard.import_profile")
    statement = run.sign(asks)
    assert f"SHA-256 {saved['sha256']}" in statement and "restored it" in statement
    waiting = run.step("mguard.import_profile")
    assert waiting.awaiting and "lab-mguard-1-imported.atv" in waiting.awaiting
    sim.device.config = atv.parse(Path(saved["path"]).read_text(encoding="utf-8"))  # restored
    run.download("imported", sim.device)
    run.sign(run.step("mguard.import_profile"))
    back = run.step("mguard.import_profile")
    assert back.changed and not back.failed, back.msg
    assert back.facts["import"]["rules_configured"] == 16
    assert back.facts["import"]["rules_active"] is None
    assert "no public interface shows" in back.msg
    untouched(sim)


def test_guided_import_whose_read_back_differs_fails(plant):
    run, sim = plant
    export(run, sim)
    run.next_step()
    run.ctx.facts["fw"]["import"] = {"at": "9999"}  # an import since: the export is stale
    run.sign(run.step("mguard.import_profile"))
    run.step("mguard.import_profile")
    del sim.device.config.settings["FW_INCOMING"].rows[0]  # the restore did not take
    run.download("imported", sim.device)
    run.sign(run.step("mguard.import_profile"))
    back = run.step("mguard.import_profile")
    assert back.failed and "15 firewall rules, 16 expected" in back.msg


# -- a plain HTTPS server standing in for a real mGuard -------------------------------------

@pytest.fixture
def https_recorder(tmp_path):
    recorder = HttpsRecorder(tmp_path / "recorder")
    yield recorder
    recorder.stop()


@pytest.mark.parametrize("module,args,handshakes", [
    ("mguard.export_profile", {}, 0),
    ("mguard.version", {}, 0),
    ("mguard.check", {"expect": {"rules": 16}}, 0),
    ("mguard.import_profile", {"profile": str(FIXTURES / "plant-boundary.atv")}, 0),
    ("mguard.wait_ready", {"timeout": "5s", "interval": "1s"}, 1),
], ids=["export_profile", "version", "check", "import_profile", "wait_ready"])
def test_a_real_mguard_receives_nothing_but_at_most_a_handshake(https_recorder, lab_password,
                                                                tmp_path, module, args,
                                                                handshakes):
    host = dataclasses.replace(mguard_host(device=RS4000), simulator=False,
                               endpoints=MappingProxyType({"https": https_recorder.endpoint}),
                               vars=MappingProxyType({"tls_ca_file":
                                                      str(https_recorder.ca_file)}))
    run = GuidedRun(tmp_path, host)
    result = run.step(module, **args)
    assert result.awaiting and not result.failed, result.msg
    assert counted(lambda: https_recorder.connections, handshakes)
    assert https_recorder.requests == []
