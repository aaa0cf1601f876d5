"""The whole approved change, end to end (issue 11), with the shipped M580 procedure in
execute mode against the simulators (time-scaled) standing in for the site's devices,
which the test registers as the lab, staging and production devices (a signed register):

1. host A runs the lab stage; its record is exported and imported on host B (another
   OTPATCH_HOME with its own host key: both are journal hosts the register trusts);
2. host B runs the staging stage;
3. host B's production run names both records as evidence and waits at its gate; the
   request goes to "another machine" (a third OTPATCH_HOME with only the request file),
   where the process owner and the security officer sign; the signed files come back;
4. the production run, inside the maintenance window, completes with the PLC at the target
   version; with a fault it rolls back inside the window instead.

Attestations are answered by signed attestation files (`otpatch attest`), as a person at
another terminal would."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import ROOT, lab_keys, otpatch_child, run_json

M580 = str(ROOT / "playbooks" / "m580-firmware-update.yml")
TIME_SCALE = 0.002  # wall seconds per simulated second: the 8-minute transfer takes ~1 s
OPERATOR = "Chen Wei"
ATTESTERS = {"ot_security_officer": "bernd-maier", "process_owner": "alice-chen",
             "operator": "chen-wei"}
PEOPLE = ("alice-chen", "bernd-maier", "chen-wei")


@pytest.fixture
def keys(tmp_path) -> dict[str, Path]:
    return lab_keys(tmp_path / "people", PEOPLE)


def host_home(tmp_path: Path, name: str) -> tuple[Path, dict[str, str]]:
    """An otpatch host: its home, its host key there, and its journal_hosts line."""
    home = tmp_path / name
    home.mkdir()
    made = otpatch_child(home, "keygen", "--host", "-o", str(home / "host.key"))
    assert made.returncode == 0, made.stderr
    public = re.search(r"public_key: ([A-Za-z0-9+/=]+)\}", made.stdout).group(1)
    return home, {"name": name, "public_key": public}


def site_inventory(bound: Path, register: object, journal_hosts: list[dict]) -> Path:
    """The lab inventory on the simulators' ports, with a production window open now and
    the journal hosts trusted, its register signed (beside it: relative certificate
    paths stay right)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")  # block style out: a flow mapping of host:port needs quotes
    yaml.default_flow_style = False
    doc = yaml.load(bound.read_text())
    now = datetime.now(timezone.utc)
    site = doc["all"]["vars"]
    site["maintenance_windows"]["production"] = {
        "start": (now - timedelta(minutes=5)).isoformat(timespec="seconds"),
        "end": (now + timedelta(hours=2)).isoformat(timespec="seconds")}
    site["journal_hosts"] = journal_hosts
    path = bound.parent / "site.yml"
    with path.open("w") as out:
        yaml.dump(doc, out)
    register.sign(path)
    return path


def until_done(home: Path, done, keys: dict[str, Path]):
    """Answer each attestation the run waits for with a signed file, and resume, until the
    run ends or waits for something else (a gate)."""
    for _ in range(12):
        if done.returncode != 3:
            return done
        doc = run_json(done)
        if not doc["message"].startswith("needs a person"):
            return done
        role = re.match(r"needs a person at a terminal: (\w+):", doc["message"]).group(1)
        said = otpatch_child(home, "attest", doc["run_id"], "--role", role,
                             "--key", str(keys[ATTESTERS[role]]))
        assert said.returncode == 0, said.stderr
        done = otpatch_child(home, "resume", doc["run_id"], "--operator", OPERATOR, "--json")
    raise AssertionError("the run kept waiting for people")


def stage_run(home: Path, inventory: Path, stage: str, keys, *extra: str):
    done = otpatch_child(home, "run", M580, "-i", str(inventory), "--execute", "--stage",
                         stage, "--operator", OPERATOR, "--json", "-e", "soak=0s",
                         "-e", "io_observe=1s", *extra,
                         timeout=120)
    return until_done(home, done, keys)


def record_of(home: Path, run_id: str) -> str:
    return run_json(otpatch_child(home, "status", run_id, "--json"))["record_hash"]


def approved_elsewhere(home: Path, run_id: str, keys, tmp_path: Path) -> None:
    """The request out, signed by two people on another machine, the files back in."""
    request = tmp_path / f"{run_id}-request.json"
    out = otpatch_child(home, "approve", run_id, "--request-out", str(request))
    assert out.returncode == 0, out.stderr
    elsewhere = tmp_path / "approvers-laptop"
    for person, role in (("alice-chen", "process_owner"), ("bernd-maier", "ot_security_officer")):
        signed = tmp_path / f"{run_id}-{person}.json"
        done = otpatch_child(elsewhere, "approve", "--request", str(request), "--role", role,
                             "--key", str(keys[person]), "--reason",
                             f"{role}: lab and staging evidence reviewed", "-o", str(signed))
        assert done.returncode == 0, done.stderr
        added = otpatch_child(home, "approvals", "add", str(signed))
        assert added.returncode == 0, added.stderr
    assert not elsewhere.exists()  # signing needed no journal there


def evidence_chain(tmp_path: Path, keys, inventory: Path, host_a: Path, host_b: Path
                   ) -> tuple[str, str]:
    lab = stage_run(host_a, inventory, "lab", keys)
    assert lab.returncode == 0, lab.stdout + lab.stderr
    lab_record = record_of(host_a, run_json(lab)["run_id"])
    exported = tmp_path / "lab-record.json"
    done = otpatch_child(host_a, "evidence", "export", run_json(lab)["run_id"], "-o",
                         str(exported))
    assert done.returncode == 0, done.stderr
    done = otpatch_child(host_b, "evidence", "import", str(exported), "-i", str(inventory))
    assert done.returncode == 0, done.stderr
    staging = stage_run(host_b, inventory, "staging", keys)
    assert staging.returncode == 0, staging.stdout + staging.stderr
    return lab_record, record_of(host_b, run_json(staging)["run_id"])


def production(host_b: Path, inventory: Path, keys, tmp_path: Path, records: tuple[str, str]):
    evidence = [a for r in records for a in ("--evidence", r)]
    waiting = stage_run(host_b, inventory, "production", keys, *evidence)
    assert waiting.returncode == 3, waiting.stderr
    doc = run_json(waiting)
    assert "awaiting sign-off: process_owner missing" in doc["message"], doc["message"]
    approved_elsewhere(host_b, doc["run_id"], keys, tmp_path)
    done = otpatch_child(host_b, "resume", doc["run_id"], "--operator", OPERATOR, "--json",
                         timeout=120)
    return doc["run_id"], until_done(host_b, done, keys)


def facts_of(home: Path, run_id: str):
    from otpatch.engine.journal import Journal
    from otpatch.engine.record import fold

    with Journal.open(home, create=False) as journal:
        return fold(run_id, journal.entries(run_id))


@pytest.mark.slow
def test_an_approved_change_runs_as_a_chain_of_separate_runs(tmp_path, site_register, keys):
    """One evidence chain, then two production runs: the change, and the same change with
    the CPU coming back at the wrong version (the simulators reset in between, the fault
    on the production PLC only), which rolls back inside the window."""
    from otpatch.engine.simlab import start_lab

    host_a, trust_a = host_home(tmp_path, "host-a")
    host_b, trust_b = host_home(tmp_path, "host-b")
    with start_lab(ROOT / "inventory" / "lab.yml", ephemeral=True, time_scale=TIME_SCALE,
                   out_dir=tmp_path / "lab") as lab:
        inventory = site_inventory(Path(lab.inventory), site_register, [trust_a, trust_b])
        records = evidence_chain(tmp_path, keys, inventory, host_a, host_b)
        changed, done = production(host_b, inventory, keys, tmp_path, records)
        assert done.returncode == 0, done.stdout + done.stderr
        lab.reset(["wrong_version_after_reboot@prod-plc-1"])
        restored, failed = production(host_b, inventory, keys, tmp_path, records)
        assert failed.returncode != 0, failed.stdout
    for run_id, status, revision in ((changed, "completed", "v04.30"),
                                     (restored, "rolled_back", "v03.20")):
        progress = facts_of(host_b, run_id)
        assert progress.status.value == status
        assert progress.facts["plc"]["revision"] == revision  # the device, read back
        gate = [v for v in progress.path if v.state == "production_gate"]
        assert gate and gate[0].event == "succeed"
        used = {e["stage"]: e for e in progress.approvals[0]["binding"]["evidence"]}
        assert used["lab"]["record"] == records[0] and used["staging"]["record"] == records[1]
        assert used["lab"]["source"].startswith("imported from host-a")
        assert used["staging"]["source"] == "this journal"
    for run_id, outcome in ((changed, "changed_and_verified"),
                            (restored, "restored_and_verified")):
        change_report(host_b, run_id, records, outcome)
    assert datetime.now(timezone.utc) < _window_end(inventory)  # all inside the window
    verified = otpatch_child(host_b, "journal", "verify", "-i", str(inventory))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def change_report(home: Path, run_id: str, records: list[str], outcome: str) -> None:
    """`report --change`: the lab run (imported from host A), the staging run and the
    production run in one record, each device from the run that changed it, and the
    sign-offs by the people the register names for their keys."""
    done = otpatch_child(home, "report", "--change", run_id, "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    runs = doc["runs"]
    assert [r["journal"]["record"] for r in runs[:2]] == list(records) and len(runs) == 3
    assert doc["change"]["id"] == run_id == runs[-1]["run_id"]
    devices = {d["host"]: (d["outcome"], d["run_id"]) for d in doc["devices"]}
    assert devices["prod-plc-1"] == (outcome, run_id)
    assert devices["lab-plc-1"] == ("changed_and_verified", runs[0]["run_id"])
    assert devices["staging-plc-1"] == ("changed_and_verified", runs[1]["run_id"])
    signed = {(a["role"], a["person"]) for a in runs[-1]["approvals"]}
    assert signed == {("process_owner", "Alice Chen"), ("ot_security_officer", "Bernd Maier")}
    assert all(r["mode"] == "execute" and r["clock"] == "wall" for r in runs)


def _window_end(inventory: Path) -> datetime:
    from otpatch.engine.inventory import load_inventory

    return load_inventory(inventory).windows["production"].end
