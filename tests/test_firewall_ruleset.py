"""mGuard profiles read into typed rulesets (modules/firewall/ruleset.py, model.py, zones.py):
the simulator's export and hand-written profiles go through the same code; every value that
does not parse is one line with its file and line; first match wins."""
from __future__ import annotations

import gzip
import io
import ipaddress
import tarfile

import pytest

from otpatch.modules.firewall import model as M
from otpatch.modules.firewall.ruleset import RulesetError, addresses, ports, read
from otpatch.modules.firewall.zones import ZoneError, outside, zones_from
from otpatch.modules.mguard.atv import dump
from otpatch.modules.mguard.simprofile import SIM_PSK, plant_profile

HEADER = "// mGuard Configuration Profile\n#version 8.8.1.default\n"


def profile(body: str) -> bytes:
    return (HEADER + body).encode()


def rule(**fields: str) -> str:
    return "  {\n" + "".join(f'    {k} = "{v}"\n' for k, v in fields.items()) + "  }\n"


def net(text: str) -> M.Addresses:
    return M.Addresses((ipaddress.ip_network(text),))


def test_the_simulators_export_reads_with_tables_positions_and_lines():
    text = dump(plant_profile("10.5.0"))
    ruleset = read(text.encode(), "sim.atv")
    assert ruleset.version == "10.5.0.default"
    assert ruleset.counts()["incoming"] == 8 and ruleset.counts()["total"] == 16
    first = ruleset.tables["incoming"][0]
    assert (first.position, first.path, first.protocol, first.action) == \
        (1, "FW_INCOMING.0", "tcp", "accept")
    assert text.splitlines()[first.line - 1].strip() == "{"  # the row opens there
    assert first.destination_port == M.Ports(((502, 502),)) and first.log
    assert ruleset.syslog == M.Syslog(True, "10.30.30.10", 514)
    assert [v.vlan_id for v in ruleset.vlans] == [10, 20, 30]
    assert [t.name for t in ruleset.tunnels] == ["remote-service", "plant-b-historian"]
    assert SIM_PSK not in repr(ruleset)  # a pre-shared key never reaches the ruleset


@pytest.mark.parametrize("setting", ["TARGET", "TARGET_REF"])
def test_the_action_is_read_from_target_or_its_81_name(setting):
    ruleset = read(profile("FW_INCOMING = {\n" + rule(PROTOCOL="tcp", DST_PORT="102",
                                                      **{setting: "accept"}) + "}\n"), "p")
    (only,) = ruleset.tables["incoming"]
    assert only.accepts and only.action_setting == setting


VALUES = [  # text, what it reads as
    ("any", M.ANY_ADDRESS), ("0.0.0.0/0", M.ANY_ADDRESS), ("10.20.20.5", net("10.20.20.5/32")),
    ("10.20.20.0/24", net("10.20.20.0/24")),
    ("10.0.0.0-10.0.0.3", M.Addresses((ipaddress.ip_network("10.0.0.0/30"),))),
]


@pytest.mark.parametrize("text,expected", VALUES)
def test_addresses(text, expected):
    assert addresses(text, "p:1") == expected


@pytest.mark.parametrize("text,ranges", [("any", ((0, 65535),)), ("502", ((502, 502),)),
                                         ("1024:65535", ((1024, 65535),)),
                                         ("80,443", ((80, 80), (443, 443)))])
def test_ports(text, ranges):
    assert ports(text, "p:1").ranges == ranges


BAD = [  # profile bytes, words of the one line
    (profile("FW_INCOMING = {\n" + rule(PROTOCOL="tcp", SRC_IP="10.20.20.300",
                                        TARGET="accept") + "}\n"),
     "p.atv:4: '10.20.20.300' is not an IP address"),
    (profile("FW_INCOMING = {\n" + rule(PROTOCOL="tcp", DST_PORT="70000", TARGET="accept")
             + "}\n"), "p.atv:4: port range '70000' is outside 0-65535"),
    (profile("FW_INCOMING = {\n" + rule(PROTOCOL="gre", TARGET="accept") + "}\n"),
     "p.atv:4: protocol 'gre' is not one of"),
    (profile("FW_INCOMING = {\n" + rule(PROTOCOL="tcp") + "}\n"),
     "p.atv:4: a firewall rule without an action"),
    (profile("FW_INCOMING = {\n  {\n    PROTOCOL = \"tcp\"\n"), "p.atv:4:3: row opened here"),
    (b"FW_INCOMING = {}\n", "p.atv:1:1: missing the mandatory #version"),
    (b"MIME-Version: 1.0\nContent-Type: application/pkcs7-mime\n", "encrypted ECS container"),
    (b"\x1f\x8b\x08\x00garbage", "looks like an ECS container (gzip) but cannot be unpacked"),
]


@pytest.mark.parametrize("data,words", BAD, ids=[w.split(":")[-1][:30] for _, w in BAD])
def test_bad_profiles_are_one_line_with_their_place(data, words):
    with pytest.raises(RulesetError) as e:
        read(data, "p.atv")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_an_ecs_container_is_read_through_its_cfg_member():
    cfg = profile("FW_INCOMING = {\n" + rule(PROTOCOL="icmp", TARGET="accept") + "}\n")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("aca/cfg")
        info.size = len(cfg)
        tar.addfile(info, io.BytesIO(cfg))
    ruleset = read(gzip.compress(out.getvalue()), "backup.tar.gz")
    assert ruleset.source == "backup.tar.gz!aca/cfg"
    assert ruleset.tables["incoming"][0].protocol == "icmp"


def test_first_match_wins_an_accept_after_a_covering_drop_is_never_reached():
    body = ("FW_INCOMING = {\n"
            + rule(PROTOCOL="tcp", SRC_IP="10.20.20.0/24", DST_PORT="502", TARGET="drop")
            + rule(PROTOCOL="tcp", SRC_IP="10.20.20.5", DST_PORT="502", TARGET="accept")
            + rule(PROTOCOL="tcp", SRC_IP="any", DST_PORT="502", TARGET="accept") + "}\n")
    ruleset = read(profile(body), "p")
    flow = M.Flow("tcp", net("10.20.20.0/24"), M.ANY_ADDRESS, M.Ports(((502, 502),)))
    assert [r.position for r in ruleset.accepting("incoming", flow)] == [3]
    second, third = ruleset.tables["incoming"][1:]
    assert ruleset.tables["incoming"][0].covers(second) and not second.covers(third)


def test_zones_resolve_names_hosts_addresses_and_outside():
    zones = zones_from({"zones": {"control": {"vlan": 10, "networks": ["10.10.10.0/24"]}},
                        "hosts": {"historian": "10.20.20.5"}}, "policy.yml")
    assert zones.resolve("historian") == net("10.20.20.5/32")
    assert zones.zone_of(net("10.10.10.20/32")) == "control"
    rest = zones.resolve("outside:control")
    assert not rest.overlaps(net("10.10.10.0/24")) and rest.overlaps(net("10.10.11.0/24"))
    assert outside(M.ANY_ADDRESS).networks == ()
    with pytest.raises(ZoneError, match=r"policy.yml:3:5: 'lab' is not a zone"):
        zones.resolve("lab", "policy.yml:3:5")
