"""A compensating control's claims checked against an mGuard profile: credit is given for
what the firewall does, not for what a control file says it does.

A claim `blocks` traffic (controls.py Claim). It is violated when an accept rule of the
claim's tables is reached, first match wins, by some packet it says is blocked (the claim's
sources minus its excepted ones, to its destination and port): that rule is the witness,
with where it stands (table, position, profile path and line) and what of the blocked
traffic it lets through. Incoming tables drop what no rule matches; outgoing ones accept it
(model.DEFAULT), so an outgoing claim is violated too where the blocked traffic can fall
through to that default; a VPN connection's outgoing table is asked only about traffic into
its tunnel's remote networks.

The check is conservative where first match makes it hard: an accept rule counts as reached
unless a single earlier drop covers all of it, so several drops that only together cover it
do not save it. A wrong verdict withdraws credit; it never grants it."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Sequence

from otpatch.modules.firewall import model as M
from otpatch.modules.firewall.zones import Zones, outside
from otpatch.modules.risk.controls import Claim, Control

NO_PROFILE = "no profile given"


class ClaimStatus(Enum):
    HOLDS = "holds"
    VIOLATED = "violated"
    UNCHECKED = "unchecked"  # no profile to check against: credited, and marked so


@dataclass(frozen=True)
class Witness:
    """A rule (or a table's default, rule None) that lets through traffic a claim blocks."""

    claim: Claim
    table: str
    rule: M.Rule | None
    source: M.Addresses  # of the blocked sources, those it lets through
    destination: M.Addresses

    def describe(self) -> str:
        if self.rule is None:
            return (f"{self.table}: no rule stops {self.claim.protocol} from {self.source} to "
                    f"{self.destination}{_port(self.claim.port)}, and the table's default "
                    "accepts it")
        rule = self.rule
        port = f" port {rule.destination_port}" if rule.protocol in ("tcp", "udp") else ""
        return (f"{rule.where} accepts {rule.protocol} from {rule.source} to "
                f"{rule.destination}{port}")

    def to_dict(self) -> dict[str, Any]:
        rule = self.rule
        return {"claim": self.claim.describe(), "table": self.table, "text": self.describe(),
                "rule": None if rule is None else {
                    "position": rule.position, "path": rule.path, "line": rule.line,
                    "comment": rule.comment, "rule": rule.describe()},
                "lets_through": {"source": str(self.source),
                                 "destination": str(self.destination)}}


@dataclass(frozen=True)
class ClaimVerdict:
    """Whether a control's claims hold against a profile, and the witnesses if they do not."""

    control: str
    status: ClaimStatus
    claims: tuple[Claim, ...]
    profile: str = ""  # the profile checked against ("" when unchecked)
    witnesses: tuple[Witness, ...] = ()
    sha256: str = ""  # of the profile file as read: which profile the verdict speaks of

    @property
    def credited(self) -> bool:
        """Whether the control's metrics may be applied: unless a claim is violated."""
        return self.status is not ClaimStatus.VIOLATED

    def explain(self) -> str:
        """One line: what the check found, and what it means for the credit."""
        head = f"control {self.control}: "
        if self.status is ClaimStatus.UNCHECKED:
            return head + (f"claims not checked: {NO_PROFILE} (credited on its cited "
                           "evidence alone)")
        if self.status is ClaimStatus.HOLDS:
            return head + f"claims hold against {self.profile}: " + "; ".join(
                c.describe() for c in self.claims)
        more = len(self.witnesses) - 1
        also = f"; and {more} more rule{'s' if more > 1 else ''}" if more else ""
        return (head + "credit withdrawn: " + self.witnesses[0].describe()
                + f" (profile {self.profile}{also})")

    def to_dict(self) -> dict[str, Any]:
        return {"control": self.control, "status": self.status.value,
                "credited": self.credited, "profile": self.profile or None,
                "profile_sha256": self.sha256 or None,
                "claims": [c.describe() for c in self.claims], "why": self.explain(),
                "witnesses": [w.to_dict() for w in self.witnesses]}


def check(control: Control, ruleset: M.Ruleset, zones: Zones) -> ClaimVerdict:
    """The verdict on a control's claims against this ruleset (names resolved by `zones`;
    load_controls with the same zones has already refused the unknown ones)."""
    witnesses = tuple(w for claim in control.claims
                      for w in violations(claim, ruleset, zones))
    status = ClaimStatus.VIOLATED if witnesses else ClaimStatus.HOLDS
    return ClaimVerdict(control.id, status, control.claims, ruleset.source, witnesses)


def unchecked(control: Control) -> ClaimVerdict:
    """The verdict on a control with claims when there is no profile to check them on."""
    return ClaimVerdict(control.id, ClaimStatus.UNCHECKED, control.claims)


def judge(cited: Sequence[Control], profile: Any, zones: Zones | None
          ) -> tuple[ClaimVerdict, ...]:
    """A verdict for each cited control that makes claims: checked against `profile` (a
    firewall.review SavedProfile: ruleset and file hash) when there is one, unchecked
    otherwise. Controls without claims get none (there is nothing to check)."""
    if profile is None or zones is None:
        return tuple(unchecked(c) for c in cited if c.claims)
    return tuple(replace(check(c, profile.ruleset, zones), sha256=profile.sha256)
                 for c in cited if c.claims)


def credited(cited: Sequence[Control], verdicts: Iterable[ClaimVerdict]
             ) -> tuple[Control, ...]:
    """The cited controls whose metrics may be applied: all but those with a violated claim."""
    withdrawn = {v.control for v in verdicts if not v.credited}
    return tuple(c for c in cited if c.id not in withdrawn)


def policy_zones(path: str | Path | None) -> Zones:
    """The zones and named hosts of a firewall policy (the shipped default when None)."""
    from otpatch.modules.firewall.policy import load_policy

    return load_policy(path).zones


def blocked_flow(claim: Claim, zones: Zones) -> M.Flow:
    """The traffic the claim says no rule accepts: its sources but the excepted ones."""
    source = zones.resolve(claim.source, claim.where)
    if claim.excepted:
        spared = [n for name in claim.excepted for n in zones.resolve(name, claim.where).networks]
        source = common(source, outside(M.Addresses(tuple(spared))))
    ports = M.ANY_PORT if claim.port is None else M.Ports(((claim.port, claim.port),))
    return M.Flow(claim.protocol, source, zones.resolve(claim.destination, claim.where), ports)


def violations(claim: Claim, ruleset: M.Ruleset, zones: Zones) -> list[Witness]:
    """The accept rules (and default-accepting tables) that let blocked traffic through."""
    flow = blocked_flow(claim, zones)
    found = [Witness(claim, rule.table, rule, common(rule.source, flow.source),
                     common(rule.destination, flow.destination))
             for rule in ruleset.accepting(claim.table, flow)]
    if M.DEFAULT[claim.table] == "accept":
        found += _falling_through(claim, flow, ruleset)
    return found


def _falling_through(claim: Claim, flow: M.Flow, ruleset: M.Ruleset) -> list[Witness]:
    """The tables of a default-accept kind where some blocked packet may meet no rule
    (conservatively: no single rule covers it, source network by network)."""
    remote = {f"vpn:{t.name}:{claim.table}": _networks(r for _, r in t.networks)
              for t in ruleset.tunnels}
    out = []
    for name, rules in ruleset.tables.items():
        if not name.endswith(claim.table):
            continue
        tunnel = remote.get(name)
        into = common(flow.destination, tunnel) if tunnel and tunnel.networks \
            else flow.destination
        # a part some rule covers is decided there: dropped, or accepted by a rule that
        # accepting() has already named
        open_ = [n for n in flow.source.networks if into.networks
                 and not any(r.covers(_as_rule(flow, n, into)) for r in rules)]
        if open_:
            out.append(Witness(claim, name, None, M.Addresses(tuple(open_)), into))
    return out


def _as_rule(flow: M.Flow, source: M.Network, destination: M.Addresses) -> M.Rule:
    """Part of a flow as a rule, so Rule.covers can say whether a drop stops all of it."""
    return M.Rule("", 0, flow.protocol, M.Addresses((source,)), M.ANY_PORT, destination,
                  flow.destination_port, "accept", False, "")


def _networks(texts: Iterable[str | None]) -> M.Addresses:
    nets = []
    for text in texts:
        try:
            nets.append(ipaddress.ip_network(str(text), strict=False))
        except ValueError:
            continue  # a tunnel network that is not written as one says nothing here
    return M.Addresses(tuple(nets))


def common(a: M.Addresses, b: M.Addresses) -> M.Addresses:
    """The addresses in both sets (networks either nest or are disjoint)."""
    nets = [x if x.subnet_of(y) else y for x in a.networks for y in b.networks
            if x.version == y.version and (x.subnet_of(y) or y.subnet_of(x))]
    return M.Addresses(tuple(n for v in (4, 6) for n in ipaddress.collapse_addresses(
        [n for n in nets if n.version == v])))


def _port(port: int | None) -> str:
    return f" port {port}" if port is not None else ""
