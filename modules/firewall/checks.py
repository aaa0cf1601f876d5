"""The packet-filter checks of a firewall review, one small function per finding id; each
takes the Scope of one review (the ruleset and the policy) and yields Hits (where, and what
this profile does in words). CHECKS (catalog.py) gives each id its severity, why it matters
and its fix.

Reachability is first match (model.Ruleset.accepting): an accept rule behind a drop that
covers it is not open. A rule that accepts everything from anywhere to anywhere is
any-to-any-accept alone: the service checks skip it rather than say it four more times."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import islice
from typing import Any, Iterator

from otpatch.modules.firewall import model as M
from otpatch.modules.firewall.finding import Location

# (protocol, port, in words): EtherNet/IP's three faces (the seed's "UDP 44818 (EtherNet/IP
# I/O)" is wrong: implicit I/O is UDP 2222; 44818 is explicit messaging and ListIdentity)
ENIP = (("udp", 2222, "implicit I/O (UDP 2222)"),
        ("tcp", 44818, "explicit messaging (TCP 44818)"),
        ("udp", 44818, "ListIdentity discovery (UDP 44818)"))
S7, MODBUS, HTTP = ("tcp", 102, "S7comm (TCP 102)"), ("tcp", 502, "Modbus TCP (TCP 502)"), \
    ("tcp", 80, "HTTP (TCP 80)")


@dataclass(frozen=True)
class Scope:
    """What one review checks: the ruleset, the policy, and what several checks share."""

    ruleset: M.Ruleset
    policy: Any  # policy.Policy

    @cached_property
    def shadows(self) -> list[tuple[M.Rule, M.Rule]]:
        """(rule, the first earlier rule of its table that covers it) for each rule that
        can never match; both shadow ids read it, computed once."""
        return [pair for rules in self.ruleset.tables.values() for pair in _covered(rules)]


@dataclass(frozen=True)
class Hit:
    """One place a check fires; `fix` set when the fix's words depend on the policy."""

    location: Location
    message: str
    fix: str = ""


def any_to_any_accept(scope: Scope) -> Iterator[Hit]:
    for rule in scope.ruleset.rules():
        if rule.accepts and _any_to_any(rule):
            yield Hit(Location.of_rule(rule), f"{rule.describe()}: every protocol and port "
                                              "from any address to any address")


def s7_open_into_control(scope: Scope) -> Iterator[Hit]:
    policy = scope.policy
    fix = ("" if not policy.allow_names["s7"] else "Accept TCP 102 into the control zone "
           f"only from {_listed(policy, 's7')}, the Siemens PG/PC the policy names; drop it "
           "from everyone else.")
    for hit in _into_control(scope, S7, "s7"):
        yield Hit(hit.location, hit.message, fix)


def modbus_open_into_control(scope: Scope) -> Iterator[Hit]:
    policy = scope.policy
    fix = (f"Accept TCP 502 into the control zone only from {_listed(policy, 'modbus')} "
           "(the policy's allow.modbus); drop it from everyone else.")
    for hit in _into_control(scope, MODBUS, "modbus"):
        yield Hit(hit.location, hit.message, fix)


def icmp_unrestricted(scope: Scope) -> Iterator[Hit]:
    policy = scope.policy
    names = policy.allow_names["icmp"]
    fix = (f"Accept ICMP echo-request only, and only from {_listed(policy, 'icmp')}; drop "
           "other ICMP." if names else "Drop ICMP from outside the control zone, or accept "
           "echo-request from the OT historian only (name it in the policy's allow.icmp).")
    for hit in _into_control(scope, ("icmp", None, "ICMP"), "icmp", to_control=False):
        yield Hit(hit.location, hit.message, fix)


def enip_open_to_any(scope: Scope) -> Iterator[Hit]:
    rs, policy = scope.ruleset, scope.policy
    carried: dict[M.Rule, list[str]] = {}
    for protocol, port, words in ENIP:
        for rule in _accepted(rs, M.Flow(protocol, destination_port=_port(port))):
            if (rule.source.any or rule.destination.any) and not _any_to_any(rule):
                carried.setdefault(rule, []).append(words)
    for rule, what in carried.items():
        other = next((r for r in carried if _kind(r) != _kind(rule)), None)
        both = (f"; with {other.table} rule {other.position} it is open both ways"
                if other else "")
        yield Hit(Location.of_rule(rule), f"accepts EtherNet/IP {' and '.join(what)} from "
                  f"{policy.describe(rule.source)} to {policy.describe(rule.destination)}"
                  f"{both}")


def http_management_rule(scope: Scope) -> Iterator[Hit]:
    rs, policy = scope.ruleset, scope.policy
    protocol, port, words = HTTP
    flow = M.Flow(protocol, destination=policy.firewall, destination_port=_port(port))
    for rule in _accepted(rs, flow):
        if rule.destination.within(policy.firewall) and not _any_to_any(rule):
            yield Hit(Location.of_rule(rule), f"accepts {words} from "
                      f"{policy.describe(rule.source)} to the mGuard's own address "
                      f"{rule.destination}")


def rule_shadowed(scope: Scope) -> Iterator[Hit]:
    yield from _shadowed(scope, same_action=True)


def rule_shadowed_conflict(scope: Scope) -> Iterator[Hit]:
    yield from _shadowed(scope, same_action=False)


def unlogged_cross_zone_accept(scope: Scope) -> Iterator[Hit]:
    rs, policy = scope.ruleset, scope.policy
    zones = policy.zones
    for rule in rs.rules():
        if not rule.accepts or rule.log or _to_collector(rule, policy):
            continue
        src, dst = zones.zone_of(rule.source), zones.zone_of(rule.destination)
        if src is None or src != dst:
            yield Hit(Location.of_rule(rule), f"{rule.describe()}: crosses from "
                      f"{_zone_words(src)} to {_zone_words(dst)} without LOG")


# -- shared ---------------------------------------------------------------------------------

def _into_control(scope: Scope, service: tuple, allow: str, to_control: bool = True
                  ) -> Iterator[Hit]:
    """Accept rules a flow of `service` from outside the control zone reaches (into the
    control zone, or anywhere), whose source beyond the control zone is not all hosts the
    policy allows."""
    rs, policy, (protocol, port, words) = scope.ruleset, scope.policy, service
    inside, allowed = policy.control, policy.allow[allow]
    flow = M.Flow(protocol, source=policy.outside_control,
                  destination=inside if to_control else M.ANY_ADDRESS,
                  destination_port=_port(port) if port else M.ANY_PORT)
    for rule in _accepted(rs, flow):
        if _any_to_any(rule) or not _beyond(rule.source, inside, allowed):
            continue
        yield Hit(Location.of_rule(rule), f"accepts {words} from "
                  f"{policy.describe(rule.source)} to {policy.describe(rule.destination)}; "
                  f"the policy allows it from {_listed(policy, allow)}")


def _listed(policy: Any, allow: str) -> str:
    names = policy.allow_names[allow]
    if not names:
        return "no host"
    return ", ".join(f"{n} ({policy.zones.resolve(n)})" for n in names)


def _beyond(source: M.Addresses, inside: M.Addresses, allowed: M.Addresses) -> bool:
    """Some of `source` lies outside `inside` and outside `allowed`."""
    return any(not M.Addresses((n,)).within(inside) and not M.Addresses((n,)).within(allowed)
               for n in source.networks)


def _accepted(rs: M.Ruleset, flow: M.Flow) -> list[M.Rule]:
    return rs.accepting("incoming", flow) + rs.accepting("outgoing", flow)


def _any_to_any(rule: M.Rule) -> bool:
    return (rule.protocol == "all" and rule.source.any and rule.destination.any
            and rule.destination_port.any and rule.source_port.any)


def _port(port: int) -> M.Ports:
    return M.Ports(((port, port),))


def _kind(rule: M.Rule) -> str:
    return "incoming" if rule.table.endswith("incoming") else "outgoing"


def _covered(rules: tuple[M.Rule, ...]) -> list[tuple[M.Rule, M.Rule]]:
    """Each rule of one table with the first earlier rule that covers it. Every pair is
    compared (O(n²)); the address hulls and the protocol, compared as plain values first,
    spare most pairs the exact Rule.covers."""
    keyed = [(r, r.protocol, *_hull(r.source), *_hull(r.destination)) for r in rules]
    found = []
    for i, (rule, protocol, slo, shi, dlo, dhi) in enumerate(keyed):
        for earlier, eproto, eslo, eshi, edlo, edhi in islice(keyed, i):
            if (eslo <= slo and shi <= eshi and edlo <= dlo and dhi <= edhi
                    and (eproto == "all" or eproto == protocol) and earlier.covers(rule)):
                found.append((rule, earlier))
                break
    return found


def _hull(addresses: M.Addresses) -> tuple[int, int]:
    """The lowest and highest address of the set, IPv6 above IPv4: a set within another
    has its hull within the other's."""
    keys = [(v << 128) | lo for v, lo, _ in addresses.spans] + \
        [(v << 128) | hi for v, _, hi in addresses.spans]
    return (min(keys), max(keys)) if keys else (0, -1)


def _shadowed(scope: Scope, same_action: bool) -> Iterator[Hit]:
    for rule, earlier in scope.shadows:
        if (earlier.action == rule.action) == same_action:
            effect = ("" if same_action else f"; its {rule.action} never applies: the "
                      f"packets are {_done(earlier.action)} first")
            yield Hit(Location.of_rule(rule), f"{rule.describe()}: can never match: "
                      f"rule {earlier.position} ({earlier.describe()}) matches every packet "
                      f"it would{effect}")


def _to_collector(rule: M.Rule, policy: Any) -> bool:
    """The rule forwards syslog to the SIEM: logging it would log every log message."""
    return (rule.destination.within(policy.syslog_collector)
            and rule.protocol in ("udp", "tcp")
            and rule.destination_port.within(_port(policy.syslog_port)))


def _done(action: str) -> str:
    return {"accept": "accepted", "drop": "dropped", "reject": "rejected"}.get(
        action, f"sent to rule set {action}")


def _zone_words(zone: str | None) -> str:
    return f"zone {zone}" if zone else "addresses in no single zone"
