"""Firmware qualification (issue 16, item 4): a firmware param's prerequisites judged against
the baseline by `plan` and `run`, refused (exit 3) before anything is journaled or sent; a
known issue becomes an attestation the run waits for; a bad prerequisite fails validate."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from otpatch.engine.baseline import Baseline, Value, baseline
from otpatch.engine.cli import main
from otpatch.engine.inventory import load_inventory, resolve_targets
from otpatch.engine.loader import load_playbook
from otpatch.engine.qualify_check import qualify

from conftest import FIXTURES, ROOT, lab_keys, otpatch_child, run_json

HERE = FIXTURES / "qualification"
PLAYBOOK = HERE / "m580-qualified.yml"
LAB = HERE / "lab.yml"
AS_LEFT = dict(source="as_left", run_id="r-20300101T000000-abcdef", mode="execute",
               ended="2030-01-01T00:00:00+00:00")


def _judged(overrides: dict[tuple[str, str], Value | None]) -> list[str]:
    """The failing checks' lines when the typed baseline of the fixture lab is changed."""
    playbook, inventory = load_playbook(PLAYBOOK), load_inventory(LAB)
    typed = baseline(Path("/nonexistent/otpatch-home"), inventory).hosts
    hosts = {h: dict(v) for h, v in typed.items()}
    for (host, name), value in overrides.items():
        if value is None:
            hosts[host].pop(name, None)
        else:
            hosts[host][name] = value
    found = qualify(playbook, inventory, resolve_targets(playbook, inventory), Baseline(hosts))
    assert len(found.checks) == 3 and len(found.attestations) == 1
    return [c.line() for c in found.failures]


CASES = [
    # id, baseline changes, the failing line's end (None: every prerequisite met)
    ("all met, typed", {}, None),
    ("hardware below", {("lab-plc-1", "product_version"): Value("PV 03", "typed")},
     "hardware product version PV 05 or later [test example (release note section 2)]: "
     "lab-plc-1 has PV 03 (typed in the inventory)"),
    ("hardware unknown", {("lab-plc-1", "product_version"): None},
     "lab-plc-1: unknown: not typed, never read"),
    ("hardware unreadable", {("lab-plc-1", "product_version"): Value("rev B", "typed")},
     "lab-plc-1 has 'rev B', not a product version (typed in the inventory)"),
    ("hardware met at the minimum", {("lab-plc-1", "product_version"): Value("05", "typed")},
     None),
    ("companion below, from a run's as-left",
     {("lab-x80-1", "firmware"): Value("v02.30", **AS_LEFT)},
     "lab-x80-1 has v02.30 (verified as-left of run r-20300101T000000-abcdef (execute, "
     "ended 2030-01-01T00:00:00Z))"),
    ("companion unknown", {("lab-x80-1", "firmware"): None},
     "lab-x80-1: unknown: not typed, never read"),
    ("companion met, Schneider's V2.4 is v02.40",
     {("lab-x80-1", "firmware"): Value("V2.4", "typed")}, None),
    ("tool below", {("ews-1", "firmware"): Value("15.0 SP1", "typed")},
     "ews-1 has 15.0 SP1 (typed in the inventory)"),
    ("tool met by a service pack", {("ews-1", "firmware"): Value("16.0 SP1", "typed")}, None),
    ("tool unknown", {("ews-1", "firmware"): None}, "ews-1: unknown: not typed, never read"),
    ("no station has the tool", {("ews-1", "model"): Value("SoMachine Basic", "typed")},
     "no engineering station with EcoStruxure Control Expert in group engineering of "
     f"{LAB} (otpatch_device: software, model: EcoStruxure Control Expert): unknown, "
     "never assumed"),
]


@pytest.mark.parametrize("changes,failing", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_prerequisite_met_not_met_or_unknown(changes, failing):
    lines = _judged(changes)
    if failing is None:
        assert lines == []
    else:
        (line,) = lines
        assert line.startswith("lab-plc-1: params.firmware needs ") and line.endswith(failing)


def _inventory(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = LAB.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    out = tmp_path / "lab.yml"
    out.write_text(text)
    return out


BELOW = (("product_version: PV 07", "product_version: PV 03"),
         ('firmware: "16.0"', "firmware: 15.0 SP1"))


def test_plan_shows_what_is_met_and_the_attestation_required(home, capsys):
    assert main(["plan", str(PLAYBOOK), "-i", str(LAB)]) == 0
    text = capsys.readouterr().out
    assert ("firmware qualification (prerequisites against the baseline):\n"
            "  lab-plc-1: params.firmware needs hardware product version PV 05 or later: "
            "lab-plc-1 has PV 07 (typed in the inventory): met\n") in text
    assert ("  attestation required: known issue KI-EXAMPLE-1 of firmware [test example "
            "(release note, known issues)]: the web server restarts once after the first boot "
            "on the new firmware; ot_security_officer confirms it before the firmware is "
            "sent, in lab_transfer\n") in text
    assert "do known issue KI-EXAMPLE-1 of firmware: core.attest\n" \
           "             do m580.firmware_transfer (target=lab_plc)\n" in text


def test_plan_refuses_naming_the_asset_the_prerequisite_and_the_baseline(home, tmp_path,
                                                                         capsys):
    inventory = _inventory(tmp_path, *BELOW)
    assert main(["plan", str(PLAYBOOK), "-i", str(inventory)]) == 3
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "otpatch: plan refused: 2 firmware prerequisite(s) not met by the baseline (refused "
        "by a gate):",
        "  lab-plc-1: params.firmware needs hardware product version PV 05 or later [test "
        "example (release note section 2)]: lab-plc-1 has PV 03 (typed in the inventory)",
        "  lab-plc-1: params.firmware needs EcoStruxure Control Expert 16.0 or later on the "
        "engineering stations in group engineering [test example (release note section 1)]: "
        "ews-1 has 15.0 SP1 (typed in the inventory)"]


@pytest.mark.parametrize("mode", ["--dry-run", "--execute"])
def test_run_refuses_the_same_way_before_anything_is_sent(home, tmp_path, site_register,
                                                         mode):
    """The PLC's endpoints are a real listening socket: nobody connects to it, and no
    journal is written (the site register signed, as an execute run needs)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        inventory = _inventory(tmp_path, ("          product_version: PV 07\n", ""), (
            'endpoints: {modbus: "127.0.0.1:15020", enip: "127.0.0.1:15030"}',
            f'endpoints: {{modbus: "127.0.0.1:{port}", enip: "127.0.0.1:{port}"}}'))
        site_register.sign(inventory)
        done = otpatch_child(home, "run", str(PLAYBOOK), "-i", str(inventory), mode)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [
        "otpatch: run refused: 1 firmware prerequisite(s) not met by the baseline (refused "
        "by a gate):",
        "  lab-plc-1: params.firmware needs hardware product version PV 05 or later [test "
        "example (release note section 2)]: lab-plc-1: unknown: not typed, never read"]
    assert not (home / "journal.sqlite").exists()


def test_a_known_issue_is_an_attestation_the_run_waits_for(tmp_path, site_register):
    """Execute mode on the simulators: the run stops before the transfer, asking the OT
    security officer about KI-EXAMPLE-1; signed with the lab key, the resumed run transfers
    the firmware and completes."""
    from otpatch.engine.journal import Journal
    from otpatch.engine.record import fold
    from otpatch.engine.simlab import start_lab

    home = tmp_path / "home"
    keys = lab_keys(tmp_path / "keys", ["bernd-maier"])
    with start_lab(LAB, ephemeral=True, time_scale=0.002, out_dir=tmp_path / "lab") as lab:
        site_register.sign(lab.inventory)  # an execute run needs the site register signed
        waiting = otpatch_child(home, "run", str(PLAYBOOK), "-i", str(lab.inventory),
                                "--execute", "--operator", "Alice Chen", "--json")
        assert waiting.returncode == 3, waiting.stderr
        status = run_json(waiting)
        assert (status["status"], status["state"]) == ("awaiting", "lab_transfer")
        run_id = status["run_id"]
        with Journal.open(home, read_only=True) as journal:
            before = fold(run_id, journal.entries(run_id))
        assert "lab_plc" not in before.facts or before.facts["lab_plc"]["revision"] == "v03.20"
        signed = otpatch_child(home, "attest", run_id, "--role", "ot_security_officer",
                               "--key", str(keys["bernd-maier"]))
        assert signed.returncode == 0, signed.stderr
        assert "Known issue KI-EXAMPLE-1 of the firmware in param firmware" in signed.stdout
        resumed = otpatch_child(home, "resume", run_id, "--json")
    assert run_json(resumed)["status"] == "completed", resumed.stderr
    with Journal.open(home, read_only=True) as journal:
        progress = fold(run_id, journal.entries(run_id))
    assert progress.facts["lab_plc"]["revision"] == "v04.30"
    attestation = progress.facts["attestation"]
    assert (attestation["person"], attestation["confirmed"]) == ("Bernd Maier", True)
    assert attestation["statement"].startswith("Known issue KI-EXAMPLE-1")


BAD = [
    # id, (old, new) in the fixture, the located problem
    ("not a product version", ("{min: PV 05,", "{min: rev B,"),
     "17:39: [firmware-qualification] params.firmware: hardware_product_version: min: not a "
     "product version: 'rev B' (use e.g. PV 07)"),
    ("not a version", ("min_firmware: v02.40", "min_firmware: latest"),
     "19:43: [firmware-qualification] params.firmware: companion min_firmware 'latest' is "
     "not a version (e.g. v02.40)"),
    ("unknown group", ("group: engineering,", "group: stations,"),
     "21:74: [firmware-qualification] params.firmware: group 'stations' is not a group of"),
    ("neither drops nor group", ("{eio_drops: true, ", "{"),
     "19:11: [schema] params.firmware.prerequisites.companions[0]: a companion names "
     "exactly one of `eio_drops: true` or `group: NAME`"),
]


@pytest.mark.parametrize("edit,problem", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_validate_locates_a_bad_prerequisite(home, tmp_path, capsys, edit, problem):
    text = PLAYBOOK.read_text()
    assert edit[0] in text
    playbook = tmp_path / "m580-qualified.yml"
    playbook.write_text(text.replace(edit[0], edit[1]))
    assert main(["validate", "-i", str(LAB), str(playbook)]) == 2
    err = capsys.readouterr().err
    assert f"{playbook}:{problem}" in err, err


def test_the_shipped_m580_procedure_judges_every_cpu_it_updates(home, capsys):
    """Its (site example) drop prerequisite is met by the lab, for each CPU of each stage."""
    assert main(["plan", str(ROOT / "playbooks" / "m580-firmware-update.yml"), "-i",
                 str(ROOT / "inventory" / "lab.yml")]) == 0
    text = capsys.readouterr().out
    for cpu, drop in (("lab-plc-1", "lab-x80-1"), ("staging-plc-1", "staging-x80-1"),
                      ("prod-plc-1", "prod-x80-1"), ("prod-plc-1", "prod-x80-2")):
        assert (f"  {cpu}: params.firmware needs its X80 EIO drops (eio_scanner) at "
                f"firmware v02.40 or later: {drop} has v02.40 (typed in the inventory): "
                "met\n") in text

