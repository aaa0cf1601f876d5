"""`otpatch firewall review` in process: findings by severity with where, why and fix; the
exit code against --fail-on; a profile's secrets never printed; a profile or policy it
cannot read is one line with file:line and exit 2, never a partial review."""
from __future__ import annotations

import json

import pytest

from otpatch.engine.cli import main
from otpatch.modules.mguard.atv import dump
from otpatch.modules.mguard.simprofile import SIM_PSK, plant_profile

from conftest import FIXTURES

PROFILES = FIXTURES / "firewall" / "review"
FIXTURE_PSK = "FIXTURE-PSK-never-printed-51c2"  # clean.atv's VPN connection carries it
SECRETS = (SIM_PSK, FIXTURE_PSK)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["firewall", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_review_prints_findings_by_severity_with_location_why_and_fix(capsys):
    code, out, err = cli(capsys, "review", str(PROFILES / "enip-io-open.atv"))
    assert code == 1 and not err
    lines = out.splitlines()
    assert lines[0].startswith(f"firewall review of {PROFILES / 'enip-io-open.atv'} "
                               "(#version 10.5.0.default), policy default")
    assert lines[1] == ("rules: incoming 6, outgoing 2, vpn:remote-service:incoming 1, "
                        "vpn:remote-service:outgoing 0; total 9")
    assert lines[2] == "findings: 2 high"
    assert lines[4:6] == ["HIGH", "  enip-open-to-any: EtherNet/IP accepted from or to any "
                                  "address"]
    assert lines[6].startswith("    enip-io-open.atv:61 incoming rule 5 (FW_INCOMING.4): "
                               "accepts EtherNet/IP implicit I/O (UDP 2222)")
    assert lines[8].startswith("    why: ") and lines[9].startswith("    fix: ")
    assert lines[-1] == "exit 1: 2 finding(s) at high or above (--fail-on high)"


FAIL_ON = [  # fixture, --fail-on, exit code
    ("clean", "high", 0), ("https-disabled", "high", 0), ("https-disabled", "medium", 1),
    ("any-to-any", "critical", 1), ("any-to-any", "never", 0), ("unlogged", "low", 1),
]


@pytest.mark.parametrize("name,fail_on,code", FAIL_ON,
                         ids=[f"{n} --fail-on {f}" for n, f, _ in FAIL_ON])
def test_the_exit_code_says_whether_a_finding_reaches_the_threshold(capsys, name, fail_on,
                                                                     code):
    got, out, _ = cli(capsys, "review", str(PROFILES / f"{name}.atv"), "--fail-on", fail_on,
                      "--json")
    doc = json.loads(out)
    assert got == code == doc["exit_code"] and doc["fail_on"] == fail_on
    assert doc["policy"] == "default" and doc["counts"]["vpn:remote-service:incoming"] == 1


def test_secrets_are_never_printed(capsys, tmp_path):
    sim = tmp_path / "sim.atv"
    sim.write_text(dump(plant_profile("10.3.1")))
    assert SIM_PSK in sim.read_text() and FIXTURE_PSK in (PROFILES / "clean.atv").read_text()
    printed = ""
    for path in (sim, PROFILES / "clean.atv"):
        for extra in ((), ("--json",), ("--fail-on", "never")):
            cli(capsys, "review", str(path), *extra)  # exit code as it comes
            printed += "".join(capsys.readouterr())
        printed += "".join(cli(capsys, "review", str(path))[1:])
    assert "AUTH_PSK" not in printed and not any(s in printed for s in SECRETS)
    assert "s7-open-into-control" in printed  # the review did print


BAD = [  # file, words of the one line
    ("malformed.atv", "malformed.atv:6:16: expected '=' after SNMP_ENABLE_V1, found a string"),
    ("truncated.atv", "truncated.atv:44:3: row opened here is not closed"),
    ("truncated-in-string.atv", "truncated-in-string.atv:72:15: unterminated string"),
    ("bad-address.atv", "bad-address.atv:35: '10.20.20.300' is not an IP address"),
    ("no-version.atv", "no-version.atv:1:1: missing the mandatory #version pragma"),
    ("encrypted.ecs.p7e", "encrypted.ecs.p7e: an encrypted ECS container (.ecs.p7e, S/MIME"),
    ("missing.atv", "profile missing.atv: cannot read: No such file or directory"),
    (".", "profile .: cannot read: not a regular file (a directory)"),
]


@pytest.mark.parametrize("name,words", BAD, ids=[b[0] for b in BAD])
def test_a_profile_it_cannot_read_is_one_line_and_exit_2(capsys, monkeypatch, name, words):
    monkeypatch.chdir(PROFILES)
    code, out, err = cli(capsys, "review", name)
    assert code == 2 and not out  # never a partial review
    (line,) = err.splitlines()
    assert line.startswith("otpatch: ") and words in line and "Traceback" not in err


def test_a_bad_policy_is_every_problem_located_and_exit_2(capsys, tmp_path):
    policy = tmp_path / "bad.yml"
    policy.write_text("extends: default\nhosts: {pg: 10.20.20.500}\nallow: {s7: [nobody]}\n")
    code, out, err = cli(capsys, "review", str(PROFILES / "clean.atv"), "--policy", str(policy))
    assert code == 2 and not out
    assert err.splitlines() == [
        f"{policy}:2:13: [policy-bad-address] hosts.pg: '10.20.20.500' is not an IP address "
        "or network (10.20.20.5, 10.10.10.0/24)"]
