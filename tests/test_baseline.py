"""The baseline (engine/baseline.py): typed values until a run reads a device back verified;
then that run's as-left, with its provenance, and `advisories match` uses it and says so."""
from __future__ import annotations

import json

from conftest import ROOT, SHARED, otpatch_child, run_json

M580 = str(ROOT / "playbooks" / "m580-firmware-update.yml")
ICSA_23_201_01 = str(SHARED / "data" / "csaf" / "advisories" / "icsa-23-201-01.json")
ICSA_21_194_02 = str(SHARED / "data" / "csaf" / "advisories" / "icsa-21-194-02.json")


def _baseline(home, inventory) -> dict:
    done = otpatch_child(home, "baseline", "show", "-i", str(inventory), "--json")
    assert (done.returncode, done.stderr) == (0, "")
    return json.loads(done.stdout)["hosts"]


def _flagged(home, inventory, advisory: str = ICSA_23_201_01) -> dict:
    done = otpatch_child(home, "advisories", "match", "-i", str(inventory), advisory,
                         "--json")
    assert (done.returncode, done.stderr) == (0, "")
    return {m["host"]: m for m in json.loads(done.stdout)["matches"]}


def test_without_runs_the_baseline_is_what_the_inventory_types(home):
    hosts = _baseline(home, ROOT / "inventory" / "lab.yml")
    assert hosts["lab-plc-1"]["firmware"] == {
        "value": "v03.20", "source": "typed", "run_id": None, "ended": None, "mode": None,
        "simulator": False, "provenance": "typed in the inventory"}
    text = otpatch_child(home, "baseline", "show", "-i", str(ROOT / "inventory" / "lab.yml"))
    assert text.stdout.splitlines()[0].split() == ["HOST", "FIRMWARE", "FROM"]
    assert any(line.split()[:2] == ["lab-plc-1", "v03.20"] for line in text.stdout.splitlines())


def test_a_verified_run_updates_the_baseline_and_advisories_stop_flagging_it(home, lab):
    before = _flagged(home, lab.inventory)
    assert {"lab-plc-1", "staging-plc-1", "prod-plc-1"} <= set(before)  # v03.20 < SV4.10
    assert before["lab-plc-1"]["firmware_source"] == "typed"
    done = otpatch_child(home, "run", M580, "-i", str(lab.inventory), "--dry-run", "--stage",
                         "lab", "-e", "io_observe=1s", "--json", timeout=180)
    assert done.returncode == 0, done.stderr
    run_id = run_json(done)["run_id"]
    firmware = _baseline(home, lab.inventory)["lab-plc-1"]["firmware"]
    assert (firmware["value"], firmware["source"], firmware["run_id"]) == (
        "v04.30", "as_left", run_id)
    assert firmware["simulator"] and firmware["mode"] == "dry_run"
    assert f"verified as-left of run {run_id} (dry_run on a simulator" in firmware["provenance"]
    after = _flagged(home, lab.inventory)
    assert "lab-plc-1" not in after  # v04.30 is not below SV4.10
    assert {"staging-plc-1", "prod-plc-1"} <= set(after)  # not changed by the lab stage
    assert after["staging-plc-1"]["firmware_source"] == "typed"
    still = _flagged(home, lab.inventory, ICSA_21_194_02)["lab-plc-1"]  # all versions
    assert still["firmware"] == "v04.30" and still["firmware_source"].startswith(
        "firmware v04.30 from the baseline: verified as-left of run ")
    assert still["firmware_source"].endswith("the inventory types v03.20")
    assert still["reason"].startswith(still["firmware_source"])


def _check(home, inventory) -> tuple[int, dict]:
    done = otpatch_child(home, "baseline", "check", "-i", str(inventory), "--json",
                         timeout=120)
    assert done.stderr == "" and "Traceback" not in done.stdout
    return done.returncode, {h["host"]: h for h in json.loads(done.stdout)["hosts"]}


def test_a_firmware_changed_behind_otpatchs_back_is_drift(home, lab):
    """The simulated CPU's running firmware is set directly in the simulator, as a person
    at the engineering station would change it without a change record."""
    from otpatch.modules.m580.versions import FirmwareVersion

    code, hosts = _check(home, lab.inventory)
    assert code == 0, hosts
    assert hosts["lab-plc-1"]["status"] == "same"
    assert hosts["lab-plc-1"]["read"]["firmware"] == "v03.20"
    assert hosts["lab-mguard-1"]["status"] == "same"  # a simulator: mguard.version reads it
    lab.device("lab-plc-1").running = FirmwareVersion(4, 10)
    code, hosts = _check(home, lab.inventory)
    assert code == 1
    assert hosts["lab-plc-1"]["status"] == "drift"
    assert hosts["lab-plc-1"]["detail"].startswith(
        "firmware v04.10 (baseline v03.20, typed in the inventory)")
    assert hosts["staging-plc-1"]["status"] == "same"
    text = otpatch_child(home, "baseline", "check", "-i", str(lab.inventory), timeout=120)
    assert text.returncode == 1 and "lab-plc-1" in text.stdout and " DRIFT " in text.stdout
    assert "1 of " in text.stdout.splitlines()[-1]


REAL_PLANT = """all:
  hosts:
    plc-1: {otpatch_device: m580, vendor: Schneider Electric, model: Modicon M580,
            part_number: BMEP581020, firmware: v03.20, simulator: false,
            endpoints: {modbus: "127.0.0.1:PORT", enip: "127.0.0.1:PORT"}}
    fw-1: {otpatch_device: mguard, vendor: Phoenix Contact, model: FL MGUARD RS4000,
           firmware: 8.6.1, simulator: false, endpoints: {https: "127.0.0.1:PORT"}}
    ews-1: {otpatch_device: software, vendor: Schneider Electric,
            model: EcoStruxure Control Expert, firmware: "15.0"}
"""


def test_real_hosts_get_public_reads_only_and_others_say_why(home, tmp_path):
    """Real hosts (simulator: false) on a loopback port nothing listens on: the M580 is
    tried over its public reads and found unreachable; the mGuard is never asked (its
    version read is a guided step there); software is not a device to read."""
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inventory = tmp_path / "plant.yml"
    inventory.write_text(REAL_PLANT.replace("PORT", str(port)))
    code, hosts = _check(home, inventory)
    assert code == 0
    assert hosts["plc-1"]["status"] in ("unreachable", "failed"), hosts["plc-1"]
    assert hosts["fw-1"]["status"] == "not_read"
    assert "mguard.version is a guided step on a real device" in hosts["fw-1"]["detail"]
    assert hosts["ews-1"]["status"] == "not_read" and "software" in hosts["ews-1"]["detail"]
