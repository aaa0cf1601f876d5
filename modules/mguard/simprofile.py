"""The simulated plant's mGuard configuration: the VLAN 10/20 boundary of the seed article.

VLAN 10 (10.10.10.0/24): Level 2, the M580 (10.10.10.20) and its X80 adapters.
VLAN 20 (10.20.20.0/24): Level 3, historian 10.20.20.5, engineering workstation 10.20.20.10.
VLAN 30 (10.30.30.0/24): the SIEM, syslog collector 10.30.30.10 (UDP 514).

The ruleset deliberately keeps the seed article's four common misconfigurations (marked
`MISCONFIGURED` in their comments) so the firewall review has something to find:
TCP 102 (S7) open from all of VLAN 20; UDP 44818 open both ways; HTTP 80 to the mGuard
from VLAN 20; ICMP unrestricted. The two IPsec connections carry a pre-shared key that
must never appear in a record (tests look for it).

The profile is written as a device of its `#version` holds it. mGuard 8.1 renamed two
settings of every IPsec connection (GriffinPlus/mguard-config-tool,
mguard/atv/migration_8.0.2_to_8.1.0.go, commit c59f841: migration1 and migration2):
VPN_CONNECTION.x.VPN_ENABLED (yes/no) became VPN_START (started/stopped), and
VPN_CONNECTION.x.FW_INCOMING.y.TARGET and .FW_OUTGOING.y.TARGET became TARGET_REF ("the
new version supports the same values + a rowref"). The top-level FW_INCOMING / FW_OUTGOING
rules keep TARGET: no migration of that tool renames them."""
from __future__ import annotations

import re

from otpatch.modules.mguard.atv import Document, Meta, Row, Table, Value
from otpatch.modules.versions import parse_version

SIM_PSK = "SIM-PSK-do-not-print-7f3a9c"  # a stand-in secret: tests prove it never leaks
_VPN_START = {"yes": "started", "no": "stopped"}  # VPN_ENABLED's values as VPN_START's


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
    """A connection as firmware before 8.1 writes it (plant_profile migrates it)."""
    return Row(rid, {
        "NAME": name,
        "VPN_ENABLED": "yes",
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
    """The as-found configuration of the simulated plant's mGuard, as firmware `firmware`
    writes it (its `#version`; the 8.1 names from 8.1 on)."""
    doc = Document([("version", f"{firmware}.default")], {
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
    if _since_81(firmware):
        _rename_81(doc)
    return doc


def migrate(doc: Document, firmware: str) -> None:
    """The profile as it stands after a firmware update to `firmware`: its `#version`, and
    the 8.1 renames when the update crosses 8.1 (what the device's own migration does)."""
    crosses = not _since_81(doc.version) and _since_81(firmware)
    doc.pragmas = [("version", f"{firmware}.default") if name == "version" else (name, rest)
                   for name, rest in doc.pragmas]
    if crosses:
        _rename_81(doc)


def _since_81(version: str) -> bool:
    """Whether a firmware or `#version` text (10.3.1, 8.8.1.default) is 8.1 or later."""
    release = re.match(r"\d+(?:\.\d+)*", version)
    return bool(release) and parse_version(release.group()) >= parse_version("8.1.0")


def _rename_81(doc: Document) -> None:
    """migration_8.0.2_to_8.1.0.go's migration1 and migration2, on every connection and
    every rule (that tool stops after the first of each and clears TARGET_REF's value; the
    comment it carries says the value stays: a device keeps it)."""
    vpn = doc.settings.get("VPN_CONNECTION")
    for conn in vpn.rows if isinstance(vpn, Table) else []:
        enabled = conn.settings.get("VPN_ENABLED")
        start = _VPN_START.get(enabled, enabled) if isinstance(enabled, str) else enabled
        conn.settings = _renamed(conn.settings, "VPN_ENABLED", "VPN_START", start)
        for table in ("FW_INCOMING", "FW_OUTGOING"):
            rules = conn.settings.get(table)
            for rule in rules.rows if isinstance(rules, Table) else []:
                rule.settings = _renamed(rule.settings, "TARGET", "TARGET_REF",
                                         rule.settings.get("TARGET"))


def _renamed(settings: dict[str, Value], old: str, new: str, value: Value | None
             ) -> dict[str, Value]:
    """The settings with `old` renamed `new` (holding `value`) where it stood."""
    if old not in settings:
        return settings
    return {(new if name == old else name): (value if name == old else v)
            for name, v in settings.items()}
