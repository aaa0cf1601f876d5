"""The site policy a firewall review checks against (schemas/firewall-policy.schema.json),
validated once at load: every problem at once, each file:line:col (PlaybookError).

`load_policy(None)` is the shipped default (default-policy.yml here: the seed's plant).
A site file with `extends: default` starts from it: its zones, hosts, allow lists and
severities are added by name, a name it repeats replacing the default's entry whole (a
zone with its networks, an allow list with its hosts: nothing is appended to a list); its
other keys (control_zone, firewall, description, each syslog key) replace the default's.
Without `extends` a file stands alone and must name everything the review needs."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from otpatch.modules.contract.errors import PlaybookError, Problem
from otpatch.modules.contract.yamlsrc import YamlSource, display_path
from otpatch.modules.firewall import model as M
from otpatch.modules.firewall.catalog import BY_ID
from otpatch.modules.firewall.finding import Severity
from otpatch.modules.firewall.zones import ZoneError, Zones, outside, zones_from

DEFAULT_POLICY = Path(__file__).with_name("default-policy.yml")
SCHEMA = "firewall-policy"
SERVICES = ("s7", "modbus", "icmp")  # the allow lists
SYSLOG_PORT = 514
BY_NAME = ("zones", "hosts", "allow", "severities", "syslog")  # merged key by key
RULES = {
    "policy-bad-address": "a zone network or a host is not an IP address or network",
    "policy-unknown-name": "a name that is no zone, named host or address",
    "policy-unknown-finding": "a severity given for a finding id the review does not have",
    "policy-name-clash": "a host named like a zone (the zone would win)",
    "policy-zones-overlap": "two zones share addresses (a host would be in both)",
}


@dataclass(frozen=True)
class Policy:
    """A loaded policy: zones and hosts, resolved to addresses, and the review's settings."""

    source: str  # "default", a file, or "FILE (extends default)"
    zones: Zones
    control_zone: str
    firewall: M.Addresses  # the mGuard's own interface addresses
    syslog_collector: M.Addresses
    syslog_collector_text: str  # as a profile writes SYSLOG_REMOTE_IP
    syslog_port: int
    allow: Mapping[str, M.Addresses]  # service -> who may reach it from outside control
    allow_names: Mapping[str, tuple[str, ...]]
    severities: Mapping[str, Severity] = field(default_factory=dict)  # the site's changes

    @property
    def control(self) -> M.Addresses:
        return self.zones.zones[self.control_zone].networks

    @property
    def outside_control(self) -> M.Addresses:
        return outside(self.control)

    def severity(self, finding_id: str, default: Severity) -> Severity:
        return self.severities.get(finding_id, default)

    def describe(self, addresses: M.Addresses) -> str:
        """`any address`, `historian (10.20.20.5/32)`, `all of zone operations (...)`."""
        if addresses.any:
            return "any address"
        name = self.zones.name_of(addresses)
        if name == str(addresses):
            return name
        return f"all of {name} ({addresses})" if name.startswith("zone ") \
            else f"{name} ({addresses})"


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy of a YAML file (None: the shipped default); PlaybookError carrying every
    problem, each file:line:col, otherwise."""
    if path is None:
        return default_policy()
    site = _read(Path(path))
    if site.data.get("extends") == "default":
        return _build([_read(DEFAULT_POLICY), site], f"{path} (extends default)")
    return _build([site], str(path))


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    return _build([_read(DEFAULT_POLICY)], "default")


def _read(path: Path) -> YamlSource:
    from otpatch.modules.contract.schemas import schema_problems
    from otpatch.modules.contract.yamlsrc import read_yaml

    source = read_yaml(path)
    problems = schema_problems(source, SCHEMA)
    if problems:
        raise PlaybookError(problems)
    return source


class _Layers:
    """The merged document of the default and a site file, and which file each part came
    from, so a problem is located in the file that wrote it."""

    def __init__(self, layers: Iterable[YamlSource]):
        self.data: dict[str, Any] = {}
        self.origin: dict[tuple, YamlSource] = {}
        for layer in layers:
            for key, value in layer.data.items():
                if key in BY_NAME:
                    for name, item in value.items():
                        self.data.setdefault(key, {})[name] = item
                        self.origin[(key, name)] = layer
                elif key != "extends":
                    self.data[key] = value
                    self.origin[(key,)] = layer

    def problem(self, path: tuple, rule: str, message: str, value: bool = True) -> Problem:
        """A problem at the value of `path` (at its key with value=False)."""
        layer = self.origin.get(path[:2]) or self.origin[path[:1]]
        return layer.problem(path, rule, f"{display_path(path)}: {message}", value=value)


def _build(layers: list[YamlSource], source: str) -> Policy:
    doc = _Layers(layers)
    problems = _bad_addresses(doc) + _clashes(doc)
    if problems:
        raise PlaybookError(problems)
    zones = zones_from(doc.data, source)
    problems = _overlaps(doc, zones) + _unknown_findings(doc)
    resolved = _Resolver(doc, zones, problems)
    control = doc.data["control_zone"]
    if control not in zones.zones:
        problems.append(doc.problem(("control_zone",), "policy-unknown-name",
                                    f"{control!r} is not a zone ({', '.join(zones.zones)})"))
    firewall = resolved.many(("firewall",), doc.data["firewall"])
    collector = doc.data["syslog"]["collector"]
    collector_at = resolved.one(("syslog", "collector"), collector)
    allow_names = {s: tuple(doc.data.get("allow", {}).get(s, ())) for s in SERVICES}
    allow = {s: resolved.many(("allow", s), list(names)) for s, names in allow_names.items()}
    if problems:
        raise PlaybookError(problems)
    return Policy(source, zones, control, firewall, collector_at,
                  _as_written(collector_at, collector), doc.data["syslog"].get("port",
                                                                               SYSLOG_PORT),
                  allow, allow_names,
                  {k: Severity(v) for k, v in doc.data.get("severities", {}).items()})


class _Resolver:
    """Names to addresses; a name that is none of a zone, a host or an address is a
    problem at its place."""

    def __init__(self, doc: _Layers, zones: Zones, problems: list[Problem]):
        self.doc, self.zones, self.problems = doc, zones, problems

    def one(self, path: tuple, name: str) -> M.Addresses:
        try:
            return self.zones.resolve(name)
        except ZoneError as e:
            self.problems.append(self.doc.problem(path, "policy-unknown-name", str(e)))
            return M.Addresses(())

    def many(self, path: tuple, names: str | list) -> M.Addresses:
        items = [names] if isinstance(names, str) else names
        nets: list[M.Network] = []
        for i, name in enumerate(items):
            nets += self.one(path if isinstance(names, str) else path + (i,), name).networks
        return M.Addresses(tuple(nets))


def _bad_addresses(doc: _Layers) -> list[Problem]:
    places = [(("zones", z, "networks", i), net)
              for z, spec in doc.data.get("zones", {}).items()
              for i, net in enumerate(spec["networks"])]
    for name, value in doc.data.get("hosts", {}).items():
        places += ([(("hosts", name), value)] if isinstance(value, str) else
                   [(("hosts", name, i), v) for i, v in enumerate(value)])
    out = []
    for path, text in places:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            out.append(doc.problem(path, "policy-bad-address", f"{text[:60]!r} is not an IP "
                                   "address or network (10.20.20.5, 10.10.10.0/24)"))
    return out


def _clashes(doc: _Layers) -> list[Problem]:
    zones = doc.data.get("zones", {})
    return [doc.problem(("hosts", name), "policy-name-clash",
                        f"host {name!r} has the name of a zone: rename one", value=False)
            for name in doc.data.get("hosts", {}) if name in zones]


def _overlaps(doc: _Layers, zones: Zones) -> list[Problem]:
    out, seen = [], []
    for zone in zones.zones.values():
        shared = [f"{o.name!r} ({o.networks})" for o in seen
                  if zone.networks.overlaps(o.networks)]
        if shared:
            out.append(doc.problem(("zones", zone.name), "policy-zones-overlap",
                                   f"zone {zone.name!r} ({zone.networks}) overlaps "
                                   f"{', '.join(shared)}", value=False))
        seen.append(zone)
    return out


def _unknown_findings(doc: _Layers) -> list[Problem]:
    return [doc.problem(("severities", name), "policy-unknown-finding",
                        f"no finding has the id {name!r} (ids: {', '.join(BY_ID)})",
                        value=False)
            for name in doc.data.get("severities", {}) if name not in BY_ID]


def _as_written(addresses: M.Addresses, name: str) -> str:
    """The collector as SYSLOG_REMOTE_IP would hold it: one address, or the name."""
    nets = addresses.networks
    if len(nets) == 1 and nets[0].num_addresses == 1:
        return str(nets[0].network_address)
    return name
