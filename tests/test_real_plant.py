"""Procedures a plant can run: `validate -i` against an inventory of real hosts refuses a step
only the simulators answer (rule simulator-interface), at its line, with what a real plant
does instead; a procedure of public reads, guided steps and attestations passes; `plan`
names the steps a person performs; m580.health decodes the public CIP Identity status."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from otpatch.engine.cli import main
from otpatch.engine.inventory import load_inventory
from otpatch.engine.loader import check_playbook
from otpatch.modules import registry
from otpatch.modules.m580.common import driver
from otpatch.modules.m580.identity import IdentityStatus
from otpatch.modules.m580.modules import Health, WaitRun
from otpatch.modules.m580.sim import start_simulators
from otpatch.modules.m580.versions import parse_version
from conftest import FIXTURES, ROOT, otpatch_child
from tests.fixtures.m580.support import bound, context, cpu_host, firmware_image

PLANT = ROOT / "inventory" / "plant-example.yml"
LAB = ROOT / "inventory" / "lab.yml"
HERE = FIXTURES / "real_plant"
SET_MODE = HERE / "set-mode-on-plant.yml"
PROCEDURE = HERE / "plant-procedure.yml"
STANDIN = "tests.fixtures.real_plant.guided_standin"


@pytest.fixture
def with_standin(monkeypatch):
    """The registry with the guided stand-in plugin, as the CLI builds it; put back after."""
    plugins = f"tests.plugins.logdevice,{STANDIN}"
    monkeypatch.setenv("OTPATCH_MODULE_PLUGINS", plugins)
    registry.load_registry(plugins.split(","))
    yield
    registry.load_registry(["tests.plugins.logdevice"])


# -- the inventory ---------------------------------------------------------------------------

def test_the_plant_inventory_is_real_hosts_at_plant_addresses():
    inventory = load_inventory(PLANT)
    lab = load_inventory(LAB)
    assert set(inventory.groups) == set(lab.groups) and set(inventory.hosts) == set(lab.hosts)
    assert [a.name for a in inventory.approvers] == [a.name for a in lab.approvers]
    assert set(inventory.windows) == set(lab.windows)
    for host in inventory.hosts.values():
        assert not host.simulator, host.name
        for endpoint in host.endpoints.values():
            address, port = endpoint.rsplit(":", 1)
            assert address.startswith("10.10.") and port in {"502", "44818", "443"}, endpoint
    scanners = {n: h.vars.get("eio_scanner") for n, h in inventory.hosts.items()
                if h.device == "x80"}
    assert scanners == {"lab-x80-1": "lab-plc-1", "staging-x80-1": "staging-plc-1",
                        "prod-x80-1": "prod-plc-1", "prod-x80-2": "prod-plc-1"}


# -- the rule --------------------------------------------------------------------------------

def test_set_mode_on_a_real_cpu_is_refused_at_its_line_saying_what_a_plant_does(home):
    done = otpatch_child(home, "validate", "-i", str(PLANT), str(SET_MODE))
    assert done.returncode == 2, done.stdout
    lines = done.stderr.strip().splitlines()
    assert [line.split(": [")[0] for line in lines] == [f"{SET_MODE}:27:9", f"{SET_MODE}:33:9"]
    first = lines[0]
    assert first.startswith(f"{SET_MODE}:27:9: [simulator-interface] manual: step "
                            "'m580.set_mode': m580.set_mode is the otpatch simulator's own "
                            "interface, but target plc -> prod-plc-1 is not marked "
                            f"`simulator: true` in {PLANT}: there it can only be refused. ")
    assert first.endswith("On a real plant: an operator action at the HMI, attested with "
                          "core.attest (\"the M580's loops are in manual mode and stable\", "
                          "role operator): no public interface sets or reads the mode on the "
                          "CPU.")
    assert "Traceback" not in done.stderr


def test_the_same_playbook_rehearses_against_the_simulator_lab(home):
    done = otpatch_child(home, "validate", "-i", str(LAB), str(SET_MODE))
    assert done.returncode == 0, done.stderr


def test_a_procedure_of_public_reads_guided_steps_and_attestations_passes(with_standin,
                                                                          capsys):
    assert main(["validate", "-i", str(PLANT), str(PROCEDURE)]) == 0
    out = capsys.readouterr()
    assert f"{PROCEDURE}: valid against {PLANT}" in out.out and out.err == ""


def test_a_templated_target_of_a_simulator_module_cannot_be_proven_on_a_plant(tmp_path):
    playbook = tmp_path / "templated.yml"
    playbook.write_text(SET_MODE.read_text().replace(
        "m580.set_mode: {target: plc, mode: manual}",
        "m580.set_mode: {target: \"{{ 'plc' }}\", mode: manual}"))
    _, problems = check_playbook(playbook, load_inventory(PLANT))
    [templated] = [p for p in problems if p.line == 27]
    assert templated.rule == "simulator-interface"
    assert "target \"{{ 'plc' }}\" is a template, unresolved at validate time" in \
        templated.message
    _, rehearsal = check_playbook(playbook, load_inventory(LAB))
    assert rehearsal == []


def test_the_rule_is_listed_with_its_why_and_cannot_be_waived(home, tmp_path):
    listed = otpatch_child(home, "validate", "--rules")
    [line] = [ln for ln in listed.stdout.splitlines() if ln.startswith("simulator-interface")]
    assert "(waivable)" not in line and "Why: on a real device such a step" in line
    waived = tmp_path / "waived.yml"
    waived.write_text(SET_MODE.read_text().replace(
        "initial: gate", "waive:\n  - {rule: simulator-interface, reason: the vendor tool does it for us}\n"
                         "initial: gate"))
    _, problems = check_playbook(waived, load_inventory(PLANT))
    assert {p.rule for p in problems} == {"simulator-interface", "waiver-invalid"}
    assert any("waive: simulator-interface cannot be waived" in p.message for p in problems)


# -- plan ------------------------------------------------------------------------------------

def test_plan_names_the_steps_a_person_performs_on_real_hosts(with_standin, capsys):
    assert main(["plan", str(PROCEDURE), "-i", str(PLANT)]) == 0
    text = capsys.readouterr().out
    assert ("steps a person performs (guided, on hosts that are no simulator):\n"
            "  as_found: guided: standin.guided_check on prod-plc-1 (operator)\n") in text
    assert main(["plan", str(PROCEDURE), "-i", str(PLANT), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["guided"] == [{"state": "as_found", "module": "standin.guided_check",
                              "host": "prod-plc-1", "role": "operator"}]


def test_plan_against_the_simulators_has_no_person_steps(with_standin, capsys):
    assert main(["plan", str(PROCEDURE), "-i", str(LAB)]) == 0
    assert "steps a person performs" not in capsys.readouterr().out


# -- the shipped procedures ------------------------------------------------------------------

def test_every_shipped_playbook_validates_against_the_plant(home):
    failing = {}
    for playbook in sorted((ROOT / "playbooks").glob("*.yml")):
        done = otpatch_child(home, "validate", "-i", str(PLANT), str(playbook))
        if done.returncode != 0:
            failing[playbook.name] = done.stderr.splitlines()[:3]
    assert failing == {}


def test_every_step_of_the_shipped_playbooks_is_sourced_or_a_persons_on_the_plant():
    """On hosts that are no simulator, each step's module reads or acts through a public
    source, is performed by a person (guided, attested), or is the site's own (ansible);
    never the simulator's interface, and never a device module without a word on it."""
    from otpatch.engine.loader import load_playbook
    from otpatch.modules import registry

    kinds = {}
    for playbook in sorted((ROOT / "playbooks").glob("*.yml")):
        pb = load_playbook(playbook)
        for state in pb.states.values():
            for step in state.do:
                kinds.setdefault(registry.get(step.module).on_real_device(), set()).add(
                    step.module)
    assert set(kinds) <= {"sourced", "guided", "site", "none"}, kinds
    assert {"m580.firmware_transfer", "m580.restore_previous", "m580.downgrade",
            "m580.spare_swap", "core.attest"} <= kinds["guided"] | kinds["none"]
    assert {"m580.health", "m580.identity", "cip.connections"} <= kinds["sourced"]


# -- m580.health: the CIP Identity status word, decoded ---------------------------------------

STATUS_WORDS = [  # (word, io, major fault, firmware update, words)
    (0x0064, "run", False, False, "configured; at least one I/O connection in run mode"),
    (0x0065, "run", False, False, "owned; configured; at least one I/O connection in run mode"),
    (0x0074, "idle", False, False, "at least one I/O connection established, all in idle mode"),
    (0x0034, "none", False, False, "configured; no I/O connections established"),
    (0x0024, "faulted", False, False, "at least one faulted I/O connection"),
    (0x0014, "unknown", False, True, "firmware update in progress"),
    (0x0434, "none", True, False, "no I/O connections established; major recoverable fault"),
    (0x0054, "unknown", True, False, "configured; major fault"),
    (0x0864, "run", True, False, "in run mode; major unrecoverable fault"),
    (0x0164, "run", False, False, "in run mode; minor recoverable fault"),
    (0x0000, "unknown", False, False, "0x0000: self-testing or unknown"),
    (0x00F4, "unknown", False, False, "reserved or vendor specific (1111)"),
]


@pytest.mark.parametrize("word, io, major, update, words", STATUS_WORDS,
                         ids=[f"0x{row[0]:04X}" for row in STATUS_WORDS])
def test_an_identity_status_word_is_decoded_by_name(word, io, major, update, words):
    status = IdentityStatus(word)
    assert (status.io, status.major_fault, status.firmware_update) == (io, major, update)
    assert words in status.spoken()


@pytest.fixture
def dry(tmp_path):
    host = cpu_host()
    with start_simulators([host], faults={"reboot_hang"}) as lab:
        yield context({"plc": (bound(lab, host),)}, tmp_path, dry_run=True)


def test_health_follows_the_cpu_through_a_transfer_and_a_hung_reboot(dry, tmp_path):
    expect = {"target": "plc", "expect": {"io": "run", "major_fault": False,
                                          "firmware_update": False}}
    before = Health().run(expect, dry)
    assert not before.failed, before.msg
    assert before.facts["revision"] == before.facts["cip_revision"] == "v03.20"
    image = Path(firmware_image(tmp_path)["path"]).read_bytes()
    driver(dry, {"target": "plc"}, "test").transport().send_image(
        image, parse_version("SV4.30"), "usb")
    updating = Health().run(expect, dry)
    assert updating.failed and updating.facts["firmware_update"] is True
    assert "firmware update in progress" in updating.msg
    assert "firmware_update is True, expected False" in updating.msg
    assert WaitRun().run({"target": "plc", "timeout": "20m", "interval": "30s"}, dry).failed
    hung = Health().run(expect, dry)
    assert hung.failed and hung.facts["identity_status"]["major_recoverable_fault"]
    assert ("io is 'none', expected 'run'; major_fault is True, expected False"
            in hung.msg), hung.msg


def test_health_without_an_enip_endpoint_says_what_it_needs(tmp_path):
    ctx = context({"plc": (cpu_host(modbus="127.0.0.1:1"),)}, tmp_path, dry_run=False)
    result = Health().run({"target": "plc"}, ctx)
    assert result.failed and result.msg == ("lab-plc-1: m580.health reads the CIP Identity "
                                            "status over EtherNet/IP: the inventory gives no "
                                            "`enip` endpoint")


def test_wait_run_on_a_cpu_already_in_run_answers_at_once(tmp_path):
    """No reboot under way: wait_run answers on its first look, with the health facts."""
    host = cpu_host()
    with start_simulators([host]) as lab:
        ctx = context({"plc": (bound(lab, host),)}, tmp_path, dry_run=True)
        result = WaitRun().run({"target": "plc"}, ctx)
    assert not result.failed and result.facts["waited_s"] == 0
    assert (result.facts["io"], result.facts["revision"]) == ("run", "v03.20")
