"""The firewall review (modules/firewall/review.py, checks*.py, catalog.py): each finding
from a hand-written profile, the simulator's export finds the seed's four misconfigurations,
the words are right (EtherNet/IP I/O is UDP 2222), a site policy's allowances and
severities, an ECS container; the command line is test_firewall_review_cli.py."""
from __future__ import annotations

import gzip
import io
import ipaddress
import random
import tarfile
from collections import Counter

import pytest

from otpatch.modules.firewall import model as M
from otpatch.modules.firewall.catalog import BY_ID
from otpatch.modules.firewall.checks import Scope
from otpatch.modules.firewall.policy import load_policy
from otpatch.modules.firewall.review import read_profile, review, short_name
from otpatch.modules.firewall.ruleset import read
from otpatch.modules.mguard.atv import dump
from otpatch.modules.mguard.simprofile import SIM_PSK, plant_profile

from conftest import FIXTURES

PROFILES = FIXTURES / "firewall" / "review"

ONE_EACH = [  # fixture, the findings it holds (id: how many)
    ("clean", {}),
    ("any-to-any", {"any-to-any-accept": 1}),
    ("s7-open", {"s7-open-into-control": 1}),
    ("modbus-open", {"modbus-open-into-control": 1}),
    ("enip-io-open", {"enip-open-to-any": 2}),
    ("http-rule", {"http-management-rule": 1}),
    ("http-enabled", {"http-management-enabled": 1}),
    ("https-disabled", {"https-management-disabled": 1}),
    ("icmp-open", {"icmp-unrestricted": 1}),
    ("snmp-v1", {"snmp-v1-enabled": 1}),
    ("syslog-missing", {"syslog-missing": 1}),
    ("syslog-disabled", {"syslog-disabled": 1}),
    ("syslog-elsewhere", {"syslog-not-to-siem": 1}),
    ("shadowed", {"rule-shadowed": 1}),
    ("shadowed-conflict", {"rule-shadowed-conflict": 1}),
    ("unlogged", {"unlogged-cross-zone-accept": 1}),
]


def reviewed(name: str, policy=None):
    return review(read_profile(PROFILES / f"{name}.atv").ruleset, policy or load_policy())


@pytest.mark.parametrize("name,expected", ONE_EACH, ids=[c[0] for c in ONE_EACH])
def test_each_profile_holds_exactly_its_findings(name, expected):
    found = reviewed(name)
    assert Counter(f.id for f in found.findings) == Counter(expected)


def test_every_finding_id_has_a_profile_that_shows_it():
    shown = {i for _, expected in ONE_EACH for i in expected}
    assert shown == set(BY_ID)


def test_a_finding_says_where_what_why_and_the_fix():
    (s7,) = reviewed("s7-open").findings
    text = (PROFILES / "s7-open.atv").read_text().splitlines()
    assert (s7.severity.value, s7.location.table, s7.location.position, s7.location.path) == \
        ("high", "incoming", 5, "FW_INCOMING.4")
    opens = s7.location.line - 1  # the row opens on its line; its comment follows
    assert text[opens].strip() == "{" and "S7 from VLAN 20" in text[opens + 1]
    assert s7.message == ("accepts S7comm (TCP 102) from all of zone operations "
                          "(10.20.20.0/24) to all of zone control (10.10.10.0/24); the policy "
                          "allows it from no host")
    assert "Siemens PG/PC" in s7.why and s7.fix.startswith("Drop TCP 102 into the control zone")


def test_ethernet_ip_is_worded_right_both_ways():
    incoming, outgoing = reviewed("enip-io-open").findings
    assert incoming.message == ("accepts EtherNet/IP implicit I/O (UDP 2222) from any address "
                                "to all of zone control (10.10.10.0/24); with outgoing rule 2 "
                                "it is open both ways")
    assert outgoing.location.path == "FW_OUTGOING.1"
    assert "with incoming rule 5" in outgoing.message
    assert "implicit I/O (UDP 2222)" in incoming.why and "ListIdentity" in incoming.why
    assert "UDP 44818 (EtherNet/IP I/O)" not in incoming.why + incoming.message


def test_the_simulators_export_finds_the_seeds_four_misconfigurations():
    """The seed's four (S7 from VLAN 20, UDP 44818 both ways, HTTP to the mGuard, ICMP
    unrestricted) at the rules marked MISCONFIGURED; and what else is truly there: Modbus
    from plant B's whole remote network over its tunnel, and six accepts across zones
    without connection logging."""
    ruleset = read(dump(plant_profile("10.3.1")).encode(), "sim.atv")
    found = review(ruleset, load_policy())
    serious = {(f.id, f.location.path) for f in found.findings if f.severity.rank >= 2}
    marked = {r.path for r in ruleset.rules() if r.comment.startswith("MISCONFIGURED")}
    assert {path for _, path in serious} - marked == {"VPN_CONNECTION.1.FW_INCOMING.0"}
    assert serious == {
        ("s7-open-into-control", "FW_INCOMING.3"), ("enip-open-to-any", "FW_INCOMING.4"),
        ("enip-open-to-any", "FW_OUTGOING.2"), ("http-management-rule", "FW_INCOMING.5"),
        ("icmp-unrestricted", "FW_INCOMING.6"),
        ("modbus-open-into-control", "VPN_CONNECTION.1.FW_INCOMING.0")}
    unlogged = [f.location.path for f in found.findings if f.severity.rank < 2]
    assert unlogged == ["FW_INCOMING.3", "FW_INCOMING.4", "FW_INCOMING.6", "FW_OUTGOING.1",
                        "FW_OUTGOING.2", "FW_OUTGOING.3"]
    assert found.counts == {"incoming": 8, "outgoing": 4, "vpn:remote-service:incoming": 1,
                            "vpn:remote-service:outgoing": 1,
                            "vpn:plant-b-historian:incoming": 1,
                            "vpn:plant-b-historian:outgoing": 1, "total": 16}
    enip = next(f for f in found.findings if f.id == "enip-open-to-any")
    assert "ListIdentity discovery (UDP 44818)" in enip.message
    assert SIM_PSK not in repr(found) and SIM_PSK not in str(found.to_json())


# -- variants: what is open and what is not -------------------------------------------------

HEADER = "// mGuard Configuration Profile\n#version 10.5.0.default\n"
SYSLOG = ('SYSLOG_REMOTE_ENABLE = "yes"\nSYSLOG_REMOTE_IP = "10.30.30.10"\n'
          'SYSLOG_REMOTE_PORT = "514"\n')


def rule(**fields: str) -> str:
    return "  {\n" + "".join(f'    {k} = "{v}"\n' for k, v in fields.items()) + "  }\n"


def incoming(*rules: str, syslog: str = SYSLOG) -> bytes:
    return (HEADER + "FW_INCOMING = {\n" + "".join(rules) + "}\n" + syslog).encode()


def accept(protocol: str, src: str, dst: str, port: str | None = None) -> str:
    fields = {"PROTOCOL": protocol, "SRC_IP": src, "DST_IP": dst, "TARGET": "accept",
              "LOG": "yes"}
    return rule(**fields, **({"DST_PORT": port} if port else {}))


DROP_VLAN20 = rule(PROTOCOL="all", SRC_IP="10.20.20.0/24", DST_IP="10.10.10.0/24",
                   TARGET="drop", LOG="yes")
VARIANTS = [  # id, profile, the findings (ids, in order)
    ("S7 from any address", incoming(accept("tcp", "any", "10.10.10.20", "102")),
     ["s7-open-into-control"]),
    ("S7 behind a drop that covers it: not open, but dead", incoming(
        DROP_VLAN20, accept("tcp", "10.20.20.0/24", "10.10.10.20", "102")),
     ["rule-shadowed-conflict"]),
    ("Modbus from the historian", incoming(accept("tcp", "10.20.20.5", "10.10.10.20", "502")),
     []),
    ("Modbus from one more host", incoming(accept("tcp", "10.20.20.5,10.20.20.7",
                                                  "10.10.10.20", "502")),
     ["modbus-open-into-control"]),
    ("Modbus between control hosts", incoming(accept("tcp", "10.10.10.0/24", "10.10.10.20",
                                                     "502")), []),
    ("ICMP from the historian", incoming(accept("icmp", "10.20.20.5", "any")), []),
    ("EtherNet/IP explicit from any address", incoming(
        accept("tcp", "any", "10.10.10.20", "44818")), ["enip-open-to-any"]),
    ("EtherNet/IP between a pair", incoming(accept("udp", "10.20.20.5", "10.10.10.30", "2222")),
     []),
    ("HTTP to the mGuard's VLAN 10 address", incoming(accept("tcp", "any", "10.10.10.1", "80")),
     ["http-management-rule"]),
    ("HTTP to another host", incoming(accept("tcp", "10.20.20.5", "10.20.20.30", "80")), []),
    ("syslog to another port", incoming(syslog=SYSLOG.replace('"514"', '"1514"')),
     ["syslog-not-to-siem"]),
    ("syslog port not written: the default 514", incoming(syslog=SYSLOG.replace(
        'SYSLOG_REMOTE_PORT = "514"\n', "")), []),
    ("syslog on without a collector", incoming(syslog='SYSLOG_REMOTE_ENABLE = "yes"\n'),
     ["syslog-missing"]),
    ("an accept of everything: said once", incoming(accept("all", "any", "any")),
     ["any-to-any-accept"]),
]


@pytest.mark.parametrize("profile,expected", [v[1:] for v in VARIANTS],
                         ids=[v[0] for v in VARIANTS])
def test_variants(profile, expected):
    found = review(read(profile, "p.atv"), load_policy())
    assert [f.id for f in found.findings] == expected


def test_a_site_policy_allows_its_pg_and_changes_a_severity(tmp_path):
    site = tmp_path / "site.yml"
    site.write_text("extends: default\nhosts: {siemens_pg: 10.20.20.50}\n"
                    "allow: {s7: [siemens_pg]}\nseverities: {s7-open-into-control: critical}\n")
    policy = load_policy(site)
    from_pg = incoming(accept("tcp", "10.20.20.50", "10.10.10.20", "102"))
    assert review(read(from_pg, "p.atv"), policy).findings == ()
    (zone,) = reviewed("s7-open", policy).findings
    assert zone.severity.value == "critical" and "siemens_pg (10.20.20.50/32)" in zone.fix


def test_an_ecs_container_is_reviewed_with_its_member_named(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = (PROFILES / "s7-open.atv").read_bytes()
        info = tarfile.TarInfo("aca/cfg")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "backup.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    ruleset = read_profile(path).ruleset
    (s7,) = review(ruleset, load_policy()).findings
    assert s7.location.in_file(short_name(ruleset.source)) == \
        f"backup.tar.gz!aca/cfg:{s7.location.line}"


def test_the_shadow_search_finds_what_comparing_every_pair_finds():
    """Scope.shadows compares hulls and protocols before Rule.covers: the same answer as
    covers alone, on random rules (hosts, networks, lists, IPv6, every protocol)."""
    rng = random.Random(7)
    pool = ["10.20.20.5/32", "10.20.20.0/24", "10.20.0.0/16", "0.0.0.0/0", "10.10.10.20/32",
            "10.10.10.0/24", "2001:db8::/32", "2001:db8::5/128"]

    def addresses() -> M.Addresses:
        return M.Addresses(tuple(ipaddress.ip_network(n) for n in rng.sample(pool, rng.choice(
            (1, 1, 1, 2)))))

    def ports() -> M.Ports:
        return rng.choice([M.ANY_PORT, M.Ports(((502, 502),)), M.Ports(((1, 1024),))])

    rules = tuple(M.Rule("incoming", i + 1, rng.choice(M.PROTOCOLS), addresses(), ports(),
                         addresses(), ports(), rng.choice(("accept", "drop")), False, "")
                  for i in range(250))
    ruleset = M.Ruleset("r", "10.5.0", {"incoming": rules}, M.Management(None, None, None,
                        None, None), M.Syslog(None, None, None), (), ())
    naive = [(r, e) for i, r in enumerate(rules)
             for e in [next((e for e in rules[:i] if e.covers(r)), None)] if e is not None]
    assert Scope(ruleset, None).shadows == naive and len(naive) > 50
