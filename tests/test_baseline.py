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
