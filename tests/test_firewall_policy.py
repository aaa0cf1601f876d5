"""The firewall policy (modules/firewall/policy.py, schemas/firewall-policy.schema.json):
the shipped default is the seed's plant, `extends: default` adds to it by name, and a bad
file is every problem at once, each file:line:col with its rule."""
from __future__ import annotations

import ipaddress

import pytest

from otpatch.modules.contract.errors import PlaybookError
from otpatch.modules.contract.schemas import schema
from otpatch.modules.firewall.finding import SEVERITIES, Severity
from otpatch.modules.firewall.policy import SERVICES, load_policy

from conftest import ROOT

LAB_POLICY = ROOT / "inventory" / "lab-firewall-policy.yml"


def nets(*texts: str) -> tuple:
    return tuple(ipaddress.ip_network(t) for t in texts)


def test_the_default_is_the_seeds_plant():
    policy = load_policy(None)
    zones = policy.zones.zones
    assert {name: (z.vlan, z.networks.networks) for name, z in zones.items()} == {
        "control": (10, nets("10.10.10.0/24")), "operations": (20, nets("10.20.20.0/24")),
        "siem": (30, nets("10.30.30.0/24"))}
    assert policy.zones.hosts["historian"].networks == nets("10.20.20.5/32")
    assert policy.zones.hosts["engineering_workstation"].networks == nets("10.20.20.10/32")
    assert (policy.syslog_collector_text, policy.syslog_port) == ("10.30.30.10", 514)
    assert policy.control_zone == "control" and policy.source == "default"
    assert policy.allow_names == {"s7": (), "modbus": ("historian", "engineering_workstation"),
                                  "icmp": ("historian",)}


def test_the_lab_policy_extends_the_default_by_name():
    lab, default = load_policy(LAB_POLICY), load_policy(None)
    assert lab.source == f"{LAB_POLICY} (extends default)"
    assert lab.zones.zones == default.zones.zones  # not named: as the default says
    assert set(lab.zones.hosts) == set(default.zones.hosts) | {"siemens_pg", "lab_scada"}
    assert lab.allow_names["s7"] == ("siemens_pg",)  # named: replaced whole, not appended
    assert lab.allow_names["modbus"] == ("historian", "engineering_workstation", "lab_scada")
    assert lab.allow_names["icmp"] == ("historian",)
    assert lab.severity("unlogged-cross-zone-accept", Severity.LOW) is Severity.MEDIUM
    assert lab.severity("icmp-unrestricted", Severity.MEDIUM) is Severity.MEDIUM


def test_a_repeated_name_replaces_the_defaults_entry_and_scalars_replace(tmp_path):
    site = tmp_path / "site.yml"
    site.write_text("extends: default\nzones:\n  control: {vlan: 110, networks: "
                    "[192.168.110.0/24]}\nsyslog: {port: 6514}\nfirewall: 192.168.110.1\n")
    policy = load_policy(site)
    assert policy.control.networks == nets("192.168.110.0/24")
    assert policy.zones.zones["operations"].vlan == 20
    assert (policy.syslog_collector_text, policy.syslog_port) == ("10.30.30.10", 6514)
    assert policy.firewall.networks == nets("192.168.110.1/32")


def test_a_file_without_extends_stands_alone(tmp_path):
    site = tmp_path / "alone.yml"
    site.write_text("zones: {cell: {networks: [172.16.1.0/24]}}\ncontrol_zone: cell\n"
                    "firewall: 172.16.1.1\nsyslog: {collector: 172.16.9.9}\n")
    policy = load_policy(site)
    assert list(policy.zones.zones) == ["cell"] and policy.zones.hosts == {}
    assert policy.allow_names == {s: () for s in SERVICES}  # nobody, unless named
    assert (policy.syslog_collector_text, policy.syslog_port) == ("172.16.9.9", 514)


BAD = [  # id, file content, the problem lines after "FILE:"
    ("unknown key", "extends: default\nzonez: {}\n",
     ["2:1: [schema] zonez: unknown key 'zonez' (allowed: allow, control_zone, description, "
      "extends, firewall, hosts, severities, syslog, zones)"]),
    ("extends another policy", "extends: plant\n",
     ["1:1: [schema] extends: extends names the shipped policy: default (a site file adds "
      "to it) (got 'plant')"]),
    ("alone, missing what the review needs", "description: a plant\n",
     ["1:1: [schema] top level: missing required key 'zones', 'control_zone', 'firewall', "
      "'syslog'"]),
    ("an unknown service", "extends: default\nallow: {bacnet: []}\n",
     ["2:9: [schema] allow.bacnet: unknown key 'bacnet' (allowed: s7 (S7comm, TCP 102), "
      "modbus (Modbus TCP, TCP 502), icmp)"]),
    ("a bad severity", "extends: default\nseverities: {icmp-unrestricted: urgent}\n",
     ["2:14: [schema] severities.icmp-unrestricted: must be one of critical, high, medium, "
      "low, info (got 'urgent')"]),
    ("a bad address", "extends: default\nzones:\n  lab: {networks: [10.1.300.0/24]}\n",
     ["3:20: [policy-bad-address] zones.lab.networks[0]: '10.1.300.0/24' is not an IP "
      "address or network (10.20.20.5, 10.10.10.0/24)"]),
    ("a host named like a zone", "extends: default\nhosts: {siem: 10.30.30.10}\n",
     ["2:9: [policy-name-clash] hosts.siem: host 'siem' has the name of a zone: rename one"]),
    ("overlapping zones", "extends: default\nzones: {plant: {networks: [10.0.0.0/8]}}\n",
     ["2:9: [policy-zones-overlap] zones.plant: zone 'plant' (10.0.0.0/8) overlaps "
      "'control' (10.10.10.0/24), 'operations' (10.20.20.0/24), 'siem' (10.30.30.0/24)"]),
    ("an unknown name and finding id",
     "extends: default\nallow:\n  s7: [pg]\nseverities: {s7-open: high}\n",
     ["3:8: [policy-unknown-name] allow.s7[0]: 'pg' is not a zone, a named host or an address "
      "(zones and hosts: control, engineering_workstation, historian, operations, siem, "
      "siem_collector)",
      "4:14: [policy-unknown-finding] severities.s7-open: no finding has the id 's7-open' "
      "(ids: any-to-any-accept, s7-open-into-control, modbus-open-into-control, "
      "enip-open-to-any, http-management-rule, http-management-enabled, "
      "https-management-disabled, icmp-unrestricted, snmp-v1-enabled, syslog-missing, "
      "syslog-disabled, syslog-not-to-siem, rule-shadowed-conflict, rule-shadowed, "
      "unlogged-cross-zone-accept)"]),
    ("a control zone that is a host", "extends: default\ncontrol_zone: historian\n",
     ["2:15: [policy-unknown-name] control_zone: 'historian' is not a zone (control, "
      "operations, siem)"]),
    ("YAML that does not parse", "extends: default\nhosts: {pg: [10.20.20.50}\n",
     None),
]


@pytest.mark.parametrize("text,lines", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_policy_is_every_problem_located(tmp_path, text, lines):
    path = tmp_path / "site.yml"
    path.write_text(text)
    with pytest.raises(PlaybookError) as raised:
        load_policy(path)
    got = raised.value.lines()
    if lines is None:
        (line,) = got
        assert line.startswith(f"{path}:2:") and "[yaml-syntax]" in line
    else:
        assert got == [f"{path}:{line}" for line in lines]


def test_the_schema_and_the_code_name_the_same_severities_and_services():
    doc = schema("firewall-policy")
    assert doc["properties"]["severities"]["additionalProperties"]["enum"] == list(SEVERITIES)
    assert tuple(doc["properties"]["allow"]["properties"]) == SERVICES
