"""`otpatch modules [NAME]`: the list and each module's documentation, from the real registry."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

import pytest

from otpatch.engine import moduledoc
from otpatch.modules import registry
from otpatch.modules.contract.errors import EXIT_BAD_INPUT, InputError

from conftest import ROOT


@pytest.fixture(autouse=True)
def site_registry():
    """The registry as the CLI builds it: the built-in packages and the site plugins
    (here the test plugin conftest names, logdevice.set_value)."""
    registry.load_registry(os.environ["OTPATCH_MODULE_PLUGINS"].split(","))


def otpatch_modules(capsys, *argv: str) -> str:
    """`otpatch modules ARGV` through a parser of its own, in process; its stdout."""
    parser = argparse.ArgumentParser(prog="otpatch")
    moduledoc.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["modules", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out


def list_rows(out: str) -> dict[str, list[str]]:
    """name -> its other columns, from the aligned list (columns are 2+ spaces apart)."""
    lines = out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["MODULE", "CHANGES DEVICE", "DRY RUN",
                                             "REAL DEVICE", "SUMMARY"]
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", ln, 4) for ln in lines[1:])}


def argument_lines(out: str) -> dict[str, str]:
    """argument name -> required / optional, from a module's detail."""
    return dict(re.findall(r"^  (\S+)\s+(required|optional)\s", out, re.M))


def flat(text: str) -> str:
    return " ".join(text.split())


# -- the list ------------------------------------------------------------------------------

def test_the_list_names_every_registered_module_in_order(capsys):
    rows = list_rows(otpatch_modules(capsys))
    assert list(rows) == sorted(registry.modules())
    assert "logdevice.set_value" in rows  # a site plugin is listed like a built-in


LIST_ROWS = [  # (module, changes device, dry run, real device, summary)
    ("m580.firmware_transfer", "yes: firmware", "yes", None, "Steps 2 and production: transfer"),
    ("mguard.import_profile", "yes: configuration", "yes", None, "Import a saved configuration"),
    ("ansible.playbook", "yes: device", "yes", "site", "Run an Ansible playbook as one step"),
    ("m580.identity", "no", "yes", "sourced", "Read an M580 CPU's"),
    ("m580.health", "no", "yes", "sourced", "Read a CPU's (or X80 adapter's) health"),
    ("m580.set_mode", "yes: mode", "yes", "simulator", "Put the CPU's process control"),
    ("syslog.continuity", "no", "yes", "sourced", "Listen on a UDP port"),
    ("core.wait", "no", "yes", "none", "Wait for a duration (e.g. 4h soak, 60s settle)."),
    ("logdevice.set_value", "yes: value", "yes", "simulator",
     "Write key=value on the stand-in device"),  # a plugin that declares nothing: the default
]


@pytest.mark.parametrize("name, changes, dry_run, real, summary", LIST_ROWS,
                         ids=[row[0] for row in LIST_ROWS])
def test_a_list_row_says_what_the_module_changes_and_whether_it_dry_runs(
        capsys, name, changes, dry_run, real, summary):
    """REAL DEVICE: None where another package decides (it is converting them)."""
    row = list_rows(otpatch_modules(capsys))[name]
    assert row[:2] == [changes, dry_run]
    assert row[2] == (real or registry.get(name).on_real_device())
    assert row[3].startswith(summary)


# -- one module ----------------------------------------------------------------------------

def test_firmware_transfer_shows_it_changes_the_device_its_arguments_and_read_back(capsys):
    out = otpatch_modules(capsys, "m580.firmware_transfer")
    assert out.startswith("m580.firmware_transfer\n")
    assert re.search(r"^  changes device\s+yes: firmware$", out, re.M)
    assert re.search(r"^  dry run\s+supported$", out, re.M)
    assert argument_lines(out) == {
        "target": "required", "image": "required", "image.path": "required",
        "image.algorithm": "required", "image.hash": "required", "port": "required",
        "version": "required", "timeout": "optional", "interval": "optional",
        "role": "optional"}  # who performs it in the vendor tool on a real CPU
    text = flat(out)
    assert "after a crash the CPU's running or staged version equals `version`: applied" in text
    assert "a transfer the device aborted: applied, failed" in text
    assert flat(registry.get("m580.firmware_transfer").read_back_doc) in text
    assert "never Modbus TCP 502" in text  # its doc, in full


CONTRACTS = [
    ("core.set_fact", [r"replayable\s+yes: acts on nothing outside the run",
                       r"changes device\s+no",
                       r"any argument names matching \^\[A-Za-z_\]\[A-Za-z0-9_\]\*\$, "
                       r"at least 1"]),
    ("m580.firmware_transfer", [r"replayable\s+no", r"verifies\s+nothing"]),
    ("m580.restore_previous", [r"verifies\s+firmware: when version is given"]),
    ("m580.set_mode", [r"verifies\s+mode: always", r"mode\s+required\s+one of manual, auto"]),
    ("mguard.check", [r"verifies\s+configuration: when expect or expect_from is given"]),
    ("ansible.playbook", [r"changes device\s+yes: device \(any aspect",
                          r"real device\s+site: the site's own automation"]),
    ("risk.assess", [r"reaches device\s+no: sends nothing to a device", r"real device\s+none"]),
    ("m580.health", [r"real device\s+sourced: only interfaces a public source documents",
                     r"Sources - ODVA, The CIP Networks Library Volume 1 .* section 5-2 Identity",
                     r"- Modbus Application Protocol Specification V1\.1b3, section 6\.21"]),
    ("m580.status", [r"real device\s+simulator: the otpatch simulator's own interface, "
                     r"refused on a real device"]),
    ("core.wait", [r"after a crash\s+nothing to re-verify: the step is run again"]),
]


@pytest.mark.parametrize("name, facts", CONTRACTS, ids=[row[0] for row in CONTRACTS])
def test_a_detail_says_the_modules_contract(capsys, name, facts):
    out = flat(otpatch_modules(capsys, name))
    for fact in facts:
        assert re.search(fact, out), fact


ARGUMENTS = [
    ("m580.firmware_transfer", "target", "string; the name of a playbook target", None),
    ("m580.firmware_transfer", "image",
     "object; a firmware param's value, written {{ params.NAME }}", None),
    ("m580.firmware_transfer", "timeout",
     "seconds, or a duration like 90s, 8m, 4h, 1h30m; at most 30 days", "20m"),
    ("firmware.stage", "param",
     "string (matching ^[a-z_][a-z0-9_]*$); the name of a firmware param", None),
    ("syslog.continuity", "port", "integer (0 to 65535)", None),
    ("mguard.check", "expect.vlans", "list of integers (1 to 4094)", None),
    ("mguard.check", "expect_from", "exactly exported_profile", None),
    ("advisories.match", "advisories",
     "non-empty string or non-empty list of non-empty strings", None),
    ("cip.connections", "rpi_ms", "number (> 0)", 10),
    ("risk.assess", "controls", "list of non-empty strings (no repeats)", None),
    ("logdevice.set_value", "value", "string or integer", None),
]


@pytest.mark.parametrize("name, argument, type_words, default", ARGUMENTS,
                         ids=[f"{row[0]}:{row[1]}" for row in ARGUMENTS])
def test_an_argument_is_summarised_in_words_alike_in_text_and_json(
        capsys, name, argument, type_words, default):
    row = next(r for r in json.loads(otpatch_modules(capsys, name, "--json"))["arguments"]
               if r["name"] == argument)
    assert row["type"] == type_words
    assert row.get("default") == default
    shown = f"{type_words}; default {default}" if default is not None else type_words
    assert flat(shown) in flat(otpatch_modules(capsys, name))


# -- --json --------------------------------------------------------------------------------

def test_the_json_list_carries_the_same_facts(capsys):
    doc = json.loads(otpatch_modules(capsys, "--json"))
    rows = {row["name"]: row for row in doc["modules"]}
    assert list(rows) == sorted(registry.modules())
    assert rows["m580.firmware_transfer"]["changes_device"] is True
    assert rows["m580.firmware_transfer"]["changes"] == ["firmware"]
    assert rows["core.set_fact"]["changes_device"] is False
    assert (rows["m580.wait_run"]["real_device"], rows["m580.status"]["real_device"]) == (
        "sourced", "simulator")
    text = list_rows(otpatch_modules(capsys))
    assert all(text[name][2:] == [row["real_device"], row["summary"]]
               for name, row in rows.items())


def test_the_json_detail_carries_the_same_facts(capsys):
    doc = json.loads(otpatch_modules(capsys, "m580.firmware_transfer", "--json"))
    cls = registry.get("m580.firmware_transfer")
    assert (doc["name"], doc["changes_device"], doc["changes"]) == (cls.name, True, ["firmware"])
    assert (doc["supports_dry_run"], doc["reaches_device"], doc["replayable"]) == (
        True, True, False)
    assert doc["read_back_doc"] == cls.read_back_doc
    assert doc["doc"] == cls.doc
    assert (doc["real_device"], doc["sources"]) == (cls.on_real_device(), list(cls.sources))
    required = {r["name"] for r in doc["arguments"] if r["required"] and "." not in r["name"]}
    assert required == {"target", "image", "version", "port"}
    restore = json.loads(otpatch_modules(capsys, "m580.restore_previous", "--json"))
    assert restore["verifies"] == {"firmware": ["version"]}
    set_fact = json.loads(otpatch_modules(capsys, "core.set_fact", "--json"))
    assert set_fact["replayable"] is True and set_fact["arguments"] == []
    assert set_fact["other_arguments"].startswith("any argument names matching")


# -- an unknown name -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["m580.firmware", "M580.FIRMWARE_TRANSFER", "", "x" * 500],
                         ids=["near-miss", "wrong-case", "empty", "500-characters"])
def test_an_unknown_module_is_one_line_naming_the_known_ones(capsys, name):
    parser = argparse.ArgumentParser(prog="otpatch")
    moduledoc.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["modules", name])
    with pytest.raises(InputError) as e:
        args.func(args)
    message = str(e.value)
    assert message.startswith("unknown module ") and "\n" not in message
    assert e.value.exit_code == EXIT_BAD_INPUT
    assert message.endswith("known: " + ", ".join(sorted(registry.modules())))
    assert len(message) < 2000  # a long name is clipped, not echoed whole
    assert capsys.readouterr().out == ""


def test_importing_it_loads_no_device_package_and_no_driver_library():
    code = ("import sys, otpatch.engine.moduledoc; print(sorted(m for m in sys.modules if "
            "m.split('.')[0] in ('pymodbus', 'pycomm3', 'requests', 'jsonschema') or "
            "m.startswith(('otpatch.modules.m580', 'otpatch.modules.mguard'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
