"""A control's claims checked against the simulator's exported profile (modules/risk/
claims.py): which accept rule, first match wins, lets blocked traffic through, or which
default-accepting table it falls through to; a claim naming what the policy does not know,
or shaped wrong, is one located line (also through `otpatch risk score`)."""
from __future__ import annotations

import pytest

from otpatch.engine.cli import main
from otpatch.modules.contract.errors import PlaybookError
from otpatch.modules.firewall.policy import load_policy
from otpatch.modules.firewall.ruleset import read
from otpatch.modules.risk.claims import check
from otpatch.modules.risk.controls import load_controls

from profile_edits import (ALL_EXCEPTED, LAB, MODBUS, controls_file, insert, profile_text,
                           rule)


@pytest.fixture(scope="module")
def zones():
    return load_policy(None).zones


NOBODY = "{protocol: tcp, port: 502, from: 'outside:control', to: control}"
OUTGOING_102 = "{protocol: tcp, port: 102, from: control, to: operations, table: outgoing}"
CLAIMS = [  # id, claims, the first witness's where (None: holds), witnesses
    ("the lab claim", [LAB % ALL_EXCEPTED], None, 0),
    ("nobody excepted", [NOBODY], "incoming rule 1 (FW_INCOMING.0, line 30)", 3),
    ("the historian excepted, not the workstation", [LAB % "historian"],
     "incoming rule 2 (FW_INCOMING.1, line 40)", 2),
    ("the VPN network not excepted", [LAB % "historian, engineering_workstation"],
     "vpn:plant-b-historian:incoming rule 1 (VPN_CONNECTION.1.FW_INCOMING.0, line ", 1),
    ("one claim of two violated", [LAB % ALL_EXCEPTED,
                                   "{protocol: tcp, port: 102, from: operations, to: control}"],
     "incoming rule 4 (FW_INCOMING.3, line 60) accepts tcp from 10.20.20.0/24", 1),
    ("outgoing: an accept rule", ["{protocol: udp, port: 44818, from: control, "
                                  "to: 'outside:control', table: outgoing}"],
     "outgoing rule 3 (FW_OUTGOING.2, line ", 1),
    ("outgoing: nothing stops it, the default accepts", [OUTGOING_102],
     "outgoing: no rule stops tcp from 10.10.10.0/24 to 10.20.20.0/24 port 102", 1),
    ("outgoing: the VPN's drop covers its tunnel, the main table does not", [
        "{protocol: tcp, from: control, to: 172.16.20.0/24, table: outgoing}"],
     "outgoing: no rule stops tcp from 10.10.10.0/24 to 172.16.20.0/24, and the table's", 1),
]
EDITED = [  # id, claim, edits, the first witness's where (None: holds)
    ("outgoing: a drop covers it", OUTGOING_102, (insert("FW_OUTGOING", 0, rule(
        "no S7 out", "tcp", "10.10.10.0/24", "10.20.20.0/24", "102", "drop")),), None),
    ("outgoing: a drop covers only part of it", OUTGOING_102, (insert("FW_OUTGOING", 0, rule(
        "no S7 out", "tcp", "10.10.10.0/25", "10.20.20.0/24", "102", "drop")),),
     "outgoing: no rule stops tcp from 10.10.10.0/24 to"),
    ("an accept after a drop that covers it only in part", NOBODY, (
        insert("FW_INCOMING", 0, rule("no Modbus", "tcp", "10.20.20.0/25", "any", "502", "drop")),
        insert("FW_INCOMING", 1, rule("VLAN 20", "tcp", "10.20.20.0/24", "10.10.10.0/24", "502"))),
     "incoming rule 2 (FW_INCOMING.1, line "),
]


@pytest.mark.parametrize("claims,where,count", [c[1:] for c in CLAIMS],
                         ids=[c[0] for c in CLAIMS])
def test_claims_against_the_simulators_export(tmp_path, zones, claims, where, count):
    control = load_controls(controls_file(tmp_path, *claims), zones)["mguard-blocks-modbus"]
    verdict = check(control, read(profile_text().encode(), "fw.atv"), zones)
    assert (verdict.status.value, len(verdict.witnesses)) == (
        "holds" if where is None else "violated", count)
    if where is not None:
        assert verdict.explain().startswith(
            f"control mguard-blocks-modbus: credit withdrawn: {where}")
        more = {1: "", 2: "; and 1 more rule"}.get(count, f"; and {count - 1} more rules")
        assert verdict.explain().endswith(f"(profile fw.atv{more})")


@pytest.mark.parametrize("claim,edits,where", [c[1:] for c in EDITED], ids=[c[0] for c in EDITED])
def test_claims_against_an_edited_export(tmp_path, zones, claim, edits, where):
    control = load_controls(controls_file(tmp_path, claim), zones)["mguard-blocks-modbus"]
    verdict = check(control, read(profile_text(*edits).encode(), "fw.atv"), zones)
    assert verdict.status.value == ("holds" if where is None else "violated")
    assert where is None or verdict.witnesses[0].describe().startswith(where)


BAD = [  # id, claim, rule, what the line says, where on line 8 it points (a name's value,
    # the key of what the schema refuses)
    ("unknown zone", "{protocol: tcp, port: 502, from: 'outside:control', to: contrl}",
     "claim-unknown-name", "controls[0].claims[0].blocks.to: 'contrl' is not a zone, a named "
     "host or an address (zones and hosts: control, engineering_workstation", "contrl"),
    ("unknown zone after outside:", "{protocol: tcp, from: 'outside:ctrl', to: control}",
     "claim-unknown-name", "blocks.from: 'ctrl' is not a zone", "'outside"),
    ("unknown excepted host", "{protocol: tcp, from: any, to: control, except: [historain]}",
     "claim-unknown-name", "blocks.except[0]: 'historain' is not a zone", "historain"),
    ("a port on icmp", "{protocol: icmp, port: 7, from: any, to: control}", "schema",
     "port applies to protocol tcp or udp only", "blocks"),
    ("unknown key", "{protocol: tcp, ports: 502, from: any, to: control}", "schema",
     "unknown key 'ports' (allowed: protocol, port, from, to, except, table)", "ports"),
    ("port out of range", "{protocol: tcp, port: 70000, from: any, to: control}", "schema",
     "a destination port, 0-65535 (absent: every port) (got 70000)", "port:"),
    ("unknown table", "{protocol: tcp, from: any, to: control, table: forward}", "schema",
     "must be one of incoming, outgoing (got 'forward')", "table"),
]


@pytest.mark.parametrize("claim,rule_id,fragment,at", [c[1:] for c in BAD],
                         ids=[c[0] for c in BAD])
def test_a_bad_claim_is_one_located_line(tmp_path, zones, capsys, claim, rule_id, fragment,
                                         at):
    path = controls_file(tmp_path, claim)
    col = path.read_text().splitlines()[7].index(at) + 1
    with pytest.raises(PlaybookError) as e:
        load_controls(path, zones)
    (line,) = e.value.lines()
    assert line.startswith(f"{path}:8:{col}: [{rule_id}] ") and fragment in line
    (tmp_path / "fw.atv").write_text(profile_text())
    code = main(["risk", "score", MODBUS, "--controls", str(path), "--control",
                 "mguard-blocks-modbus", "--profile", str(tmp_path / "fw.atv")])
    assert (code, capsys.readouterr().err) == (2, line + "\n")
