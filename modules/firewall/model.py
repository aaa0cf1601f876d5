"""An mGuard's firewall as typed values: packet-filter rules in their tables and order,
management access, remote syslog, VLANs and IPsec connections; what a review, a diff and a
compensating control reason about. Made by ruleset.py from a parsed profile; nothing here
holds a secret (pre-shared keys and private keys are never read into it).

Semantics (mGuard 10.x manual, ../shared/design/mguard-profile-format.md): rules are
evaluated top-down, first match wins; incoming traffic is dropped by default (except over
VPN), outgoing allowed; the rules do not apply to traffic addressed to the mGuard itself,
which management access rules govern."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ANY_NET = ipaddress.ip_network("0.0.0.0/0")
PROTOCOLS = ("tcp", "udp", "icmp", "all")
ACTIONS = ("accept", "reject", "drop")  # else: a rule set named by TARGET_REF
DEFAULT = {"incoming": "drop", "outgoing": "accept"}  # what no rule matching means


@dataclass(frozen=True)
class Addresses:
    """A set of IP networks; `any` when the rule says any / 0.0.0.0/0."""

    networks: tuple[Network, ...]

    @property
    def any(self) -> bool:
        return any(n.prefixlen == 0 for n in self.networks)

    @cached_property
    def spans(self) -> tuple[tuple[int, int, int], ...]:
        """(IP version, first, last address as integers) of each network: what overlaps
        and within compare (a review of a 5,000-rule profile compares millions of pairs;
        ipaddress's own subnet_of is several times slower)."""
        return tuple((n.version, int(n.network_address), int(n.broadcast_address))
                     for n in self.networks)

    def overlaps(self, other: "Addresses") -> bool:
        return any(v == ov and lo <= ohi and olo <= hi
                   for v, lo, hi in self.spans for ov, olo, ohi in other.spans)

    def within(self, other: "Addresses") -> bool:
        """Every address of this set lies in `other`."""
        theirs = other.spans
        return all(any(v == ov and olo <= lo and hi <= ohi for ov, olo, ohi in theirs)
                   for v, lo, hi in self.spans)

    def __str__(self) -> str:
        return "any" if self.any else ", ".join(str(n) for n in self.networks)


@dataclass(frozen=True)
class Ports:
    """A set of ports as inclusive ranges; `any` is 0-65535."""

    ranges: tuple[tuple[int, int], ...]

    @property
    def any(self) -> bool:
        return any(lo <= 0 and hi >= 65535 for lo, hi in self.ranges)

    def has(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.ranges)

    def overlaps(self, other: "Ports") -> bool:
        return any(lo <= ohi and olo <= hi for lo, hi in self.ranges
                   for olo, ohi in other.ranges)

    def within(self, other: "Ports") -> bool:
        return all(any(olo <= lo and hi <= ohi for olo, ohi in other.ranges)
                   for lo, hi in self.ranges)

    def __str__(self) -> str:
        if self.any:
            return "any"
        return ", ".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in self.ranges)


ANY_ADDRESS = Addresses((ANY_NET,))
ANY_PORT = Ports(((0, 65535),))


@dataclass(frozen=True)
class Rule:
    """One packet-filter rule where it stands: its table (`incoming`, `outgoing`,
    `vpn:<connection>:incoming` ...), its 1-based position, the profile path and line, and
    which setting named its action (TARGET before 8.1, TARGET_REF since)."""

    table: str
    position: int
    protocol: str  # tcp | udp | icmp | all
    source: Addresses
    source_port: Ports
    destination: Addresses
    destination_port: Ports
    action: str  # accept | reject | drop | the name of a rule set (TARGET_REF)
    log: bool
    comment: str
    path: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)
    action_setting: str = field(default="TARGET", compare=False)

    @property
    def accepts(self) -> bool:
        return self.action == "accept"

    @property
    def where(self) -> str:
        at = f", line {self.line}" if self.line else ""
        return f"{self.table} rule {self.position} ({self.path}{at})"

    def carries(self, protocol: str) -> bool:
        """Whether the rule's protocol covers `protocol` (tcp, udp, icmp)."""
        return self.protocol in ("all", protocol)

    def covers(self, other: "Rule") -> bool:
        """Every packet `other` matches, this rule matches too (a shadowing rule)."""
        return (self.protocol in ("all", other.protocol)
                and other.source.within(self.source)
                and other.destination.within(self.destination)
                and (not _ported(other.protocol)
                     or (other.source_port.within(self.source_port)
                         and other.destination_port.within(self.destination_port))))

    def meaning(self) -> tuple:
        """What the rule does, whatever the setting names: what a semantic diff compares."""
        return (self.protocol, self.source.networks, self.source_port.ranges,
                self.destination.networks, self.destination_port.ranges, self.action,
                self.log)

    def describe(self) -> str:
        ports = f" port {self.destination_port}" if _ported(self.protocol) else ""
        return (f"{self.action} {self.protocol} from {self.source} to {self.destination}"
                f"{ports}" + (" (logged)" if self.log else "")
                + (f" \"{self.comment}\"" if self.comment else ""))


def _ported(protocol: str) -> bool:
    return protocol in ("tcp", "udp")


@dataclass(frozen=True)
class Flow:
    """Traffic a question is about: a protocol, where from, where to, which ports."""

    protocol: str
    source: Addresses = ANY_ADDRESS
    destination: Addresses = ANY_ADDRESS
    destination_port: Ports = ANY_PORT


@dataclass(frozen=True)
class Access:
    """A management access rule (HTTPS, SSH, SNMP to the mGuard itself)."""

    service: str
    source: Addresses
    action: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Management:
    """How the mGuard itself is reached: each service enabled or not (None: not written),
    its port, and its access rules."""

    https_enabled: bool | None
    https_port: int | None
    http_enabled: bool | None
    ssh_enabled: bool | None
    snmp_v1_enabled: bool | None
    access: tuple[Access, ...] = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Syslog:
    enabled: bool | None
    ip: str | None
    port: int | None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Vlan:
    vlan_id: int | None
    interface: str | None
    network: Network | None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Tunnel:
    """An IPsec connection: its name, whether it is started, its tunnels' networks."""

    name: str
    started: bool | None
    networks: tuple[tuple[str | None, str | None], ...]
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Ruleset:
    """Everything a review reads of one profile."""

    source: str
    version: str
    tables: dict[str, tuple[Rule, ...]]
    management: Management
    syslog: Syslog
    vlans: tuple[Vlan, ...]
    tunnels: tuple[Tunnel, ...]

    def rules(self) -> Iterable[Rule]:
        for name in self.tables:
            yield from self.tables[name]

    def counts(self) -> dict[str, int]:
        """Rules per table, and their total."""
        counts = {name: len(rules) for name, rules in self.tables.items()}
        return {**counts, "total": sum(counts.values())}

    def accepting(self, table_kind: str, flow: Flow) -> list[Rule]:
        """The accept rules of the tables of this kind (`incoming` or `outgoing`, VPN
        tables included) that some packet of `flow` reaches before any rule that drops
        it: first match wins, so an accept rule after a drop that covers all it would
        match is never reached."""
        found = []
        for name, rules in self.tables.items():
            if not name.endswith(table_kind):
                continue
            stopped: list[Rule] = []
            for rule in rules:
                if not _meets(rule, flow):
                    continue
                if rule.accepts and not any(s.covers(rule) for s in stopped):
                    found.append(rule)
                elif not rule.accepts:
                    stopped.append(rule)
        return found


def _meets(rule: Rule, flow: Flow) -> bool:
    """Some packet of the flow matches the rule."""
    if not (rule.carries(flow.protocol) or flow.protocol == "all"):
        return False
    if not (rule.source.overlaps(flow.source) and rule.destination.overlaps(flow.destination)):
        return False
    return not _ported(flow.protocol) or rule.destination_port.overlaps(flow.destination_port)
