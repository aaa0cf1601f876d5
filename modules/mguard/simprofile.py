"""The simulated plant's mGuard configuration: the VLAN 10/20 boundary of the seed article.

VLAN 10 (10.10.10.0/24): Level 2, the M580 (10.10.10.20) and its X80 adapters.
VLAN 20 (10.20.20.0/24): Level 3, historian 10.20.20.5, engineering workstation 10.20.20.10.
VLAN 30 (10.30.30.0/24): the SIEM, syslog collector 10.30.30.10 (UDP 514).

The ruleset deliberately keeps the seed article's four common misconfigurations (marked
`MISCONFIGURED` in their comments) so the firewall review has something to find:
TCP 102 (S7) open from all of VLAN 20; UDP 44818 open both ways; HTTP 80 to the mGuard
from VLAN 20; ICMP unrestricted. The two IPsec connections carry a pre-shared key that
must never appear in a record (tests look for it)."""
from __future__ import annotations

from otpatch.modules.mguard.atv import Document, Meta, Row, Table

SIM_PSK = "SIM-PSK-do-not-print-7f3a9c"  # a stand-in secret: tests prove it never leaks


def _rule(comment: str, protocol: str, src: str, dst: str, dst_port: str, target: str,
          log: str = "no") -> Row:
    return Row(None, {"COMMENT": comment, "PROTOCOL": protocol, "SRC_IP": src,
                      "SRC_PORT": "any", "DST_IP": dst, "DST_PORT": dst_port,
                      "TARGET": target, "LOG": log})


INCOMING = [
    _rule("Historian polls the M580 (Modbus TCP)", "tcp", "10.20.20.5/32",
          "10.10.10.20/32", "502", "accept", "yes"),
    _rule("Engineering workstation to the M580 (Control Expert)", "tcp", "10.20.20.10/32",
          "10.10.10.20/32", "502", "accept", "yes"),
    _rule("Historian EtherNet/IP explicit messaging", "tcp", "10.20.20.5/32",
          "10.10.10.0/24", "44818", "accept", "yes"),
    _rule("MISCONFIGURED: S7 (TCP 102) unrestricted from VLAN 20", "tcp", "10.20.20.0/24",
          "10.10.10.0/24", "102", "accept"),
    _rule("MISCONFIGURED: UDP 44818 open from anywhere (bidirectional)", "udp", "0.0.0.0/0",
          "10.10.10.0/24", "44818", "accept"),
    _rule("MISCONFIGURED: web interface over HTTP (TCP 80) from VLAN 20", "tcp",
          "10.20.20.0/24", "10.20.20.1/32", "80", "accept"),
    _rule("MISCONFIGURED: ICMP unrestricted", "icmp", "0.0.0.0/0", "0.0.0.0/0", "any",
          "accept"),
    _rule("Default: drop and log everything else", "all", "0.0.0.0/0", "0.0.0.0/0", "any",
          "drop", "yes"),
]
OUTGOING = [
    _rule("Syslog to the SIEM (VLAN 30)", "udp", "10.10.10.0/24", "10.30.30.10/32", "514",
          "accept"),
    _rule("NTP from the plant time server", "udp", "10.10.10.0/24", "10.30.30.1/32", "123",
          "accept"),
    _rule("MISCONFIGURED: UDP 44818 open to anywhere (bidirectional)", "udp", "10.10.10.0/24",
          "0.0.0.0/0", "44818", "accept"),
    _rule("ICMP echo to anywhere", "icmp", "10.10.10.0/24", "0.0.0.0/0", "any", "accept"),
]


def _vpn(rid: str, name: str, gateway: str, remote: str, peer_port: str) -> Row:
    return Row(rid, {
        "NAME": name,
        "VPN_START": "started",
        "REMOTE_GATEWAY": gateway,
        "AUTH_PSK": SIM_PSK,
        "TUNNEL": Table({}, [Row(None, {"LOCAL": "10.10.10.0/24", "REMOTE": remote})]),
        "FW_INCOMING": Table({}, [_rule(f"{name}: service access", "tcp", remote,
                                        "10.10.10.20/32", peer_port, "accept", "yes")]),
        "FW_OUTGOING": Table({}, [_rule(f"{name}: replies only", "all", "10.10.10.0/24",
                                        remote, "any", "drop")]),
    })


def _vlan(interface: str, ip: str, vlan_id: int) -> Row:
    return Row(None, {"INTERFACE": interface, "IP": ip, "VLAN_ID": str(vlan_id)})


def plant_profile(firmware: str) -> Document:
    """The as-found configuration of the simulated plant's mGuard, for `#version`."""
    return Document([("version", f"{firmware}.default")], {
        "HTTPS_REMOTE_ENABLE": Meta({"value": "yes", "access": "must-not-overwrite"}),
        "HTTPS_REMOTE_LISTENPORT": "443",
        "HTTPS_REMOTE_ACCESS_RULES": Table({}, [Row(None, {"FROM_IP": "10.20.20.10/32",
                                                           "TARGET": "accept"})]),
        "SNMP_ENABLE_V1": "no",
        "VLAN_NETWORKS": Table({}, [_vlan("internal", "10.10.10.1/24", 10),
                                    _vlan("external", "10.20.20.1/24", 20),
                                    _vlan("dmz", "10.30.30.1/24", 30)]),
        "FW_INCOMING": Table({}, list(INCOMING)),
        "FW_OUTGOING": Table({}, list(OUTGOING)),
        "VPN_CONNECTION": Table({}, [
            _vpn("vpn-1", "remote-service", "203.0.113.10", "192.168.100.0/24", "443"),
            _vpn("vpn-2", "plant-b-historian", "198.51.100.20", "172.16.20.0/24", "502")]),
        "SYSLOG_REMOTE_ENABLE": "yes",
        "SYSLOG_REMOTE_IP": "10.30.30.10",
        "SYSLOG_REMOTE_PORT": "514",
    })
