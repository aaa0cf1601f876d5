"""The simulated plant's exported mGuard profile (plant_profile + dump), edited rule by rule,
and controls files making claims about it: what the claim and evidence tests share."""
from __future__ import annotations

import copy
from pathlib import Path

from otpatch.modules.mguard.atv import Row, dump
from otpatch.modules.mguard.simprofile import plant_profile

from conftest import ROOT

LAB_CONTROLS = str(ROOT / "inventory" / "lab-controls.yml")
MODBUS = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
HISTORIAN = "Historian polls the M580 (Modbus TCP)"
DEFAULT_DROP = "Default: drop and log everything else"
LAB = "{protocol: tcp, port: 502, from: 'outside:control', to: control, except: [%s]}"
ALL_EXCEPTED = "historian, engineering_workstation, 172.16.20.0/24"


def rule(comment: str, protocol: str, src: str, dst: str, port: str, action: str = "accept"
         ) -> Row:
    return Row(None, {"COMMENT": comment, "PROTOCOL": protocol, "SRC_IP": src,
                      "SRC_PORT": "any", "DST_IP": dst, "DST_PORT": port, "TARGET": action})


def rows(doc, table: str) -> list:
    """FW_INCOMING, FW_OUTGOING, or `CONNECTION:FW_INCOMING` of a VPN connection."""
    if ":" not in table:
        return doc.settings[table].rows
    name, setting = table.split(":")
    conn = next(r for r in doc.settings["VPN_CONNECTION"].rows if r.settings["NAME"] == name)
    return conn.settings[setting].rows


def insert(table: str, at: int, row: Row):
    return lambda doc: rows(doc, table).insert(at, row)


def remove(table: str, comment: str):
    return lambda doc: rows(doc, table).remove(
        next(r for r in rows(doc, table) if r.settings["COMMENT"] == comment))


def change(table: str, comment: str, key: str, value: str):
    return lambda doc: next(r for r in rows(doc, table)
                            if r.settings["COMMENT"] == comment).settings.update({key: value})


def profile_text(*edits) -> str:
    """The simulated plant's exported profile (plant_profile + dump), edited."""
    doc = copy.deepcopy(plant_profile("10.5.0"))
    for edit in edits:
        edit(doc)
    return dump(doc)


def opening_line(text: str, comment: str) -> int:
    """The line where the rule with this comment opens (its `{`), read from the text."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if f'COMMENT = "{comment}"' in line)
    while lines[at].strip() != "{":
        at -= 1
    return at + 1


def controls_file(tmp_path: Path, *claims: str) -> Path:
    """One control, mguard-blocks-modbus, MAV:A, with these claims (line 8 onwards)."""
    path = tmp_path / "controls.yml"
    path.write_text("controls:\n  - id: mguard-blocks-modbus\n    description: test\n"
                    "    metrics: {MAV: A}\n    evidence: [{kind: firewall_rule, ref: r}]\n"
                    "    applies_to: {zones: [level2]}\n    claims:\n"
                    + "".join(f"      - blocks: {c}\n" for c in claims))
    return path
