"""Issue 14: `serial_number` (the old `serial` read with a located deprecation note) and the
device kind as an explicit host variable, `otpatch_device`, inferred only where not given."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from otpatch.engine.inventory import Host, load_inventory
from otpatch.modules.contract.devices import DEVICE_KINDS
from otpatch.modules.contract.schemas import schema
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.sim import M580Lab
from otpatch.modules.mguard.lab import is_mguard

FIXTURES = Path(__file__).parent / "fixtures" / "inventory"
ROOT = Path(__file__).resolve().parent.parent


def test_the_old_serial_is_read_with_one_located_deprecation_note(caplog):
    path = FIXTURES / "deprecated-serial.yml"
    with caplog.at_level(logging.WARNING, logger="otpatch.engine.inventory"):
        inventory = load_inventory(path)
    note = (f"{path}:9:11: note: `serial` is deprecated (Ansible reserves the name): "
            "rename it `serial_number`")
    assert inventory.notes == (note,)
    assert [r.getMessage() for r in caplog.records] == [note]
    plc = inventory.hosts["lab-plc-1"]
    assert plc.serial == "SIM-M580-0001"
    assert "serial" not in plc.vars and plc.vars["serial_number"] == "SIM-M580-0001"


def test_both_names_at_once_are_refused_at_the_host():
    path = FIXTURES / "serial-and-serial-number.yml"
    with pytest.raises(Exception) as caught:
        load_inventory(path)
    assert str(caught.value) == (f"{path}:4:5: [schema] all.hosts.lab-plc-1: serial is the "
                                 "old name of serial_number: give serial_number only")


@pytest.mark.parametrize("path", sorted((ROOT / "inventory").glob("lab.yml"))
                         + [FIXTURES / "lab.yml"], ids=lambda p: p.name)
def test_shipped_inventories_use_the_new_names_and_say_every_kind(path):
    inventory = load_inventory(path)
    assert inventory.notes == ()
    assert all("otpatch_device" in h.vars for h in inventory.hosts.values())


KINDS = [
    # (host, its kind, inferred: noted)
    ("plc-1", "m580", True),
    ("noc-1", "noc", True),  # a BMENOC whose model text says M580 is not a CPU
    ("noc-2", "noc", False),
    ("cpu-by-model", "m580", True),
    ("drop-1", "x80", True),
    ("fw-1", "mguard", True),
    ("switch-1", None, False),  # nothing known: no kind, no note
]


@pytest.fixture(scope="module")
def inferred():
    return load_inventory(FIXTURES / "inferred-device.yml")


@pytest.mark.parametrize("name, kind, noted", KINDS, ids=[row[0] for row in KINDS])
def test_a_kind_not_given_is_inferred_and_the_note_says_so(inferred, name, kind, noted):
    assert inferred.hosts[name].device == kind
    assert any(f"note: host {name}: device kind {kind} inferred" in n
               for n in inferred.notes) == noted


def test_the_inference_note_is_located_and_says_what_to_write(inferred):
    assert f"{FIXTURES / 'inferred-device.yml'}:5:5: note: host noc-1: device kind noc " \
        "inferred from part number 'BMENOC0321' and model 'Modicon M580 Ethernet module'; " \
        "say `otpatch_device: noc`" in inferred.notes


def host(device: str | None, model: str, part: str = "") -> Host:
    return Host(name="h", model=model, part_number=part, device=device,
                endpoints={"modbus": "127.0.0.1:0", "enip": "127.0.0.1:0",
                           "https": "127.0.0.1:0"}, simulator=True, firmware="v03.20")


DRIVERS = [
    # (otpatch_device, model text, M580 driver kind, an mGuard?)
    ("m580", "Modicon M580", H.CPU, False),
    ("x80", "Modicon X80 EIO drop adapter", H.ADAPTER, False),
    ("noc", "Modicon M580 BMENOC0321", None, False),
    ("mguard", "FL MGUARD RS4000", None, True),
    ("software", "EcoStruxure Control Expert M580 edition", None, False),
    ("m580", "FL MGUARD RS4000", H.CPU, False),  # the variable decides, never the text
    (None, "Modicon M580", None, False),  # a Host the loader did not make: no guessing
]


@pytest.mark.parametrize("device, model, kind, mguard", DRIVERS,
                         ids=[f"{d}-{m}" for d, m, *_ in DRIVERS])
def test_drivers_and_simulators_go_by_the_kind_not_the_model_text(device, model, kind,
                                                                  mguard):
    assert (H.device_kind(host(device, model)), is_mguard(host(device, model))) == (kind,
                                                                                    mguard)


def test_the_m580_lab_simulates_no_network_module():
    with M580Lab([host("noc", "Modicon M580 Ethernet module", "BMENOC0321")]) as lab:
        assert lab.hosts == ()


def test_the_schema_knows_the_kinds_the_code_knows():
    assert schema("inventory")["$defs"]["device_kind"]["enum"] == list(DEVICE_KINDS)
