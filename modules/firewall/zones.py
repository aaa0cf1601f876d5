"""A site's zones and named hosts (IEC 62443-3-2 zones; the seed's VLAN 10 control, VLAN 20
operations, VLAN 30 SIEM), and how a name in a policy or a control claim becomes addresses.

A name is a zone (`control`), a named host (`historian`), or written out (`10.20.20.5`,
`10.10.10.0/24`, `any`). `outside:<zone>` is every address not in that zone."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Mapping

from otpatch.modules.firewall import model as M


class ZoneError(ValueError):
    """A name that is neither a zone, a host nor an address: one line, with where."""


@dataclass(frozen=True)
class Zone:
    name: str
    networks: M.Addresses
    vlan: int | None = None
    description: str = ""


@dataclass(frozen=True)
class Zones:
    """The site's zones and named hosts."""

    zones: Mapping[str, Zone] = field(default_factory=dict)
    hosts: Mapping[str, M.Addresses] = field(default_factory=dict)

    def resolve(self, name: str, where: str = "") -> M.Addresses:
        """The addresses a name stands for; ZoneError for one that is none of these."""
        text = str(name).strip()
        if text.startswith("outside:"):
            return outside(self.resolve(text[len("outside:"):], where))
        if text in self.zones:
            return self.zones[text].networks
        if text in self.hosts:
            return self.hosts[text]
        if text.lower() == "any":
            return M.ANY_ADDRESS
        try:
            return M.Addresses((ipaddress.ip_network(text, strict=False),))
        except ValueError:
            known = ", ".join(sorted([*self.zones, *self.hosts])) or "none"
            raise ZoneError(f"{where}{': ' if where else ''}{text[:40]!r} is not a zone, a "
                            f"named host or an address (zones and hosts: {known})") from None

    def zone_of(self, addresses: M.Addresses) -> str | None:
        """The zone that holds all of these addresses, if one does."""
        for zone in self.zones.values():
            if addresses.within(zone.networks):
                return zone.name
        return None

    def name_of(self, addresses: M.Addresses) -> str:
        """A named host, a zone, or the addresses as written."""
        for name, hosts in self.hosts.items():
            if hosts == addresses:
                return name
        for zone in self.zones.values():
            if zone.networks == addresses:
                return f"zone {zone.name}"
        return str(addresses)


def outside(addresses: M.Addresses) -> M.Addresses:
    """Every IPv4 address not in `addresses` (as networks: the complement)."""
    rest = [M.ANY_NET]
    for net in (n for n in addresses.networks if n.version == 4):
        cut = []
        for r in rest:
            if net.subnet_of(r):
                cut += list(r.address_exclude(net))
            elif not r.subnet_of(net):
                cut.append(r)
        rest = cut
    return M.Addresses(tuple(sorted(ipaddress.collapse_addresses(rest))))


def zones_from(doc: Mapping[str, Any], where: str) -> Zones:
    """Zones and hosts from a policy's `zones:` and `hosts:` (already schema-checked):
    zones: {control: {vlan: 10, networks: [10.10.10.0/24], description: ...}},
    hosts: {historian: 10.20.20.5}."""
    plain = Zones()
    zones = {name: Zone(name, _nets(plain, spec.get("networks", []), f"{where} zones.{name}"),
                        spec.get("vlan"), spec.get("description", ""))
             for name, spec in (doc.get("zones") or {}).items()}
    hosts = {name: _nets(plain, value if isinstance(value, list) else [value],
                         f"{where} hosts.{name}")
             for name, value in (doc.get("hosts") or {}).items()}
    return Zones(zones, hosts)


def _nets(zones: Zones, values: list, where: str) -> M.Addresses:
    nets: list[M.Network] = []
    for value in values:
        nets += zones.resolve(str(value), where).networks
    return M.Addresses(tuple(nets))
