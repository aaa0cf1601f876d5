"""The change-control record (issue 12) from real dry runs against the simulator lab: each
device's as found and as left equal what the simulator held before and after the run, its
outcome is said honestly (a firewall left at the new firmware after its profile was
restored is `left_changed`, not just "rolled back"), the JSON fits its schema, and the
three formats equal their golden files (normalised for times, ids, hashes and paths:
OTPATCH_UPDATE_GOLDEN=1 rewrites them)."""
from __future__ import annotations

import getpass
import io
import json
import os
import re
import socket
from pathlib import Path

import jsonschema
import pytest

from otpatch.engine import runs
from otpatch.engine.display import PlainDisplay
from otpatch.engine.report import build, source
from otpatch.engine.report.render import render
from otpatch.engine.simlab import start_lab

from conftest import ROOT

MGUARD = "playbooks/mguard-firmware-update.yml"
GOLDEN = ROOT / "tests" / "golden" / "report"
SCHEMA = json.loads((ROOT / "schemas" / "report.schema.json").read_text())
LAB_FW = "lab-mguard-1"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mguard_run(tmp_path: Path, faults: tuple[str, ...] = ()):
    """One dry run of the shipped mGuard procedure; the lab firewall's firmware, active
    rules and serial as its simulator held them before and after; and the report."""
    port, home = _free_udp_port(), tmp_path / "home"
    params = {"syslog_port": str(port), "syslog_bind": "127.0.0.1"}
    with start_lab(ROOT / "inventory" / "lab.yml", faults, ephemeral=True,
                   out_dir=tmp_path / "lab", syslog_to=f"127.0.0.1:{port}") as lab:
        device = lab.device(LAB_FW)
        before = _held(device)
        progress = runs.start(str(ROOT / MGUARD), str(lab.inventory), "dry_run", params,
                              home, PlainDisplay(io.StringIO()))
        after = _held(device)
    doc = build.build([source.load_run(home, progress.run_id)])
    return progress, doc, before, after, home


def _held(device) -> dict:
    with device.lock:
        return {"firmware": device.firmware, "rules": device.rules_active(),
                "serial": device.serial}


def _device(doc: dict, host: str) -> dict:
    (found,) = [d for d in doc["devices"] if d["host"] == host]
    return found


def _value(observed: dict, name: str):
    return observed[name]["value"] if name in observed else None


CASES = [  # id, faults, run status, the lab firewall's outcome, words of its statement
    ("completed", (), "completed", "changed_and_verified", "firmware 8.8.1 -> 8.9.3"),
    ("rolled-back", ("syslog_gap",), "rolled_back", "left_changed",
     "left changed: remains at firmware 8.9.3 (as found 8.8.1); restored: the firewall rule set, "
     "16 firewall rules, as found"),
    ("halted", ("syslog_gap", "profile_import_drops_rules"), "halted", "unknown",
     "its configuration change (lab_restore mguard.import_profile) was not verified: it "
     "failed: "),
]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """The three runs, once for the module (each a fresh lab)."""
    return {case[0]: mguard_run(tmp_path_factory.mktemp(case[0]), case[1]) for case in CASES}


@pytest.mark.parametrize("name,faults,status,outcome,words", CASES, ids=[c[0] for c in CASES])
def test_each_device_outcome_is_said_plainly(reports, name, faults, status, outcome, words):
    progress, doc, before, after, _ = reports[name]
    assert progress.status.value == status == doc["runs"][0]["status"]
    fw = _device(doc, LAB_FW)
    assert fw["outcome"] == outcome and words in fw["statement"], fw["statement"]
    assert fw["changed"] and fw["verified"] == (outcome != "unknown")
    untouched = _device(doc, "prod-mguard-1")
    if status != "completed":  # the production firewall was never reached
        assert untouched["outcome"] == "not_changed" and not untouched["as_found"]


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_as_found_and_as_left_are_what_the_simulator_held(reports, name):
    _, doc, before, after, _ = reports[name]
    fw = _device(doc, LAB_FW)
    assert _value(fw["as_found"], "firmware") == before["firmware"] == "8.8.1"
    assert _value(fw["as_found"], "rules") == before["rules"]
    assert fw["identity"]["serial"] == before["serial"]
    assert _value(fw["as_left"], "firmware") == after["firmware"] == "8.9.3"
    if fw["outcome"] == "unknown":  # the import dropped rules: no rule count is claimed
        assert "rules" not in fw["as_left"] and after["rules"] < before["rules"]
        return
    assert _value(fw["as_left"], "rules") == after["rules"]
    assert all(r["state"] and r["step"] for r in [*fw["as_found"].values(),
                                                  *fw["as_left"].values()])


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_the_json_fits_its_schema_and_is_the_same_each_time(reports, name):
    _, doc, _, _, home = reports[name]
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    again = build.build([source.load_run(home, doc["runs"][0]["run_id"])])
    assert render(again, "json") == render(doc, "json")


def test_the_record_names_states_steps_gates_and_rollback(reports):
    _, doc, _, _, _ = reports["rolled-back"]
    run = doc["runs"][0]
    states = [v["state"] for v in run["states"]]
    assert states[-3:] == ["lab_verify", "lab_restore", "rolled_back"]
    restore = run["states"][-2]
    assert restore["rollback"] and not run["states"][-3]["rollback"]
    failed = [s for s in run["states"][-3]["steps"] if s["status"] == "failed"]
    assert [s["module"] for s in failed] == ["syslog.continuity"]
    assert run["clock"] == "simulated" and run["states"][-3]["duration"] == 60
    kinds = [d["kind"] for d in run["deviations"]]
    assert "rollback" in kinds
    gates = [r for v in run["states"] for r in v["requirements"]]
    assert any(g["kind"] == "hash_verified" and g["passed"] for g in gates)
    (image,) = run["firmware"]
    assert image["algorithm"] == "md5" and len(image["sha256"]) == 64
    assert run["journal"]["record"].startswith("sha256:") and run["journal"]["verified"]
    assert run["risk"] and run["risk"][0]["base"] == 9.8


# -- golden files --------------------------------------------------------------------------

def normalised(text: str, doc: dict, home: Path) -> str:
    """The text with what differs from run to run replaced: run ids, times, journal
    hashes and keys, ports, paths, the simulators' serials and the login@host."""
    swaps = {str(home.parent): "<TMP>", str(ROOT): "<ROOT>",
             f"{getpass.getuser()}@{socket.gethostname()}": "<WHO>",
             f'"host": "{socket.gethostname()}"': '"host": "<HOSTNAME>"'}
    for i, run in enumerate(doc["runs"]):
        swaps[run["run_id"]] = f"<RUN-{i + 1}>"
        swaps[run["inventory"]["hash"]] = "<INVENTORY-HASH>"  # the copy names the lab's ports
        swaps[(run["inventory"]["register"] or {}).get("hash") or "<none>"] = "<REGISTER-HASH>"
        j = run["journal"]
        for n, value in enumerate(filter(None, [j["record"], *(j["checkpoint"] or {}).values()])):
            if isinstance(value, str):
                swaps[value.removeprefix("sha256:")] = f"<JOURNAL-{i + 1}-{n}>"
        for who in run["by"]:
            swaps[who.split(": ")[0]] = "<WHO>"
    for key, value in sorted(swaps.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(key, value)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?", "<TIME>", text)
    text = re.sub(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d", "<SYSLOG-TIME>", text)
    text = re.sub(r"(127\.0\.0\.1:|udp/|\"port\": |syslog_port\W+)\d+", r"\1<PORT>", text)
    text = re.sub(r"\d{8}T\d{6}Z", "<STAMP>", text)  # in profile file names
    # what is left of the lab's production window changes with the day the test runs
    text = re.sub(r"\d+ days left", "<DAYS> days left", text)
    return text


@pytest.mark.parametrize("fmt", ["json", "md", "html"])
@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_each_format_equals_its_golden_file(reports, name, fmt):
    _, doc, _, _, home = reports[name]
    got = normalised(render(doc, fmt), doc, home)
    golden = GOLDEN / f"mguard-{name}.{fmt}"
    if os.environ.get("OTPATCH_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got, encoding="utf-8")
    assert got == golden.read_text(encoding="utf-8"), \
        f"{golden.name} differs: OTPATCH_UPDATE_GOLDEN=1 rewrites it; look at the diff"
