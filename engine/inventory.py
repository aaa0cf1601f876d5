"""The inventory: Ansible's YAML inventory format, typed and frozen, and target resolution.

The file is what ansible-runner reads too: groups under `all` (or at the top level) with
`hosts`, `vars` and `children`, a group defined in several places being one group. What
otpatch decided to accept (schemas/inventory.schema.json is the truth):

- host and group variables otpatch reads are typed: vendor, model, part_number, firmware,
  serial_number (text; `serial`, its old name, is Ansible's reserved word: still read, with
  a deprecation note, never both in one mapping), otpatch_device (the kind of device:
  m580 | x80 | noc | mguard | software, modules/contract/devices.py; without it the kind is
  inferred from part number and model as before, and a note says so), zone,
  vlan (1..4094), simulator (bool), otpatch_stage (lab | staging | production; a host
  without one is production), endpoints (name -> address),
  credentials (username and one of password_env / password_file);
- any `ansible_*` variable passes through untouched, and a free `custom:` mapping holds
  whatever else a site wants; any other key is an error (a typo must not pass silently);
- `approvers` and `maintenance_windows` live under `all.vars` only; an approver's
  `public_key_file` is resolved against the inventory's folder;
- so do `journal_hosts` (the otpatch hosts whose signed journal checkpoints the site
  trusts: name and the public key `otpatch keygen --host` printed) and `siem` (the syslog
  receiver every checkpoint is sent to: host, port 514 unless given);
- a secret written inline (a key like password, secret, token, api_key, ansible_password,
  anywhere, `custom` included) is refused as credential-inline: name where it is instead.

Group variables are merged under host variables, shallowly (Ansible's default), parents
before children (by depth, then name), so `Host.vars` is what Ansible would see.

Notes (a deprecated name, an inferred device kind) never stop a load: each is a located line
in `Inventory.notes`, and logged (the deprecation as a warning, an inference as info)."""
from __future__ import annotations

import dataclasses
import logging

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from otpatch.modules.contract.devices import infer_device
from otpatch.modules.contract.errors import PlaybookError, Problem
from otpatch.engine.model import Playbook, Stage
from otpatch.modules.contract.values import freeze
from otpatch.modules.contract.schemas import schema_problems
from otpatch.modules.contract.yamlsrc import YamlSource, read_yaml

LOG = logging.getLogger(__name__)
SITE_KEYS = ("approvers", "maintenance_windows", "journal_hosts", "siem",
             "time_sync")  # all.vars only
RULES = {
    "credential-inline": "a password, secret or token written in the inventory itself",
    "window-order": "a maintenance window that ends before it starts",
    "window-time": "a maintenance window time that is not a real date and time",
    "group-cycle": "a group that is its own child, directly or not",
    "target-unresolved": "a playbook target whose inventory group is missing, empty or "
                         "holds several hosts for a one-host target",
    "journal-host-duplicate": "two journal_hosts with the same name or the same public key",
}
WHY = {
    "credential-inline": "a secret in a file that is copied, versioned and shown is no "
                         "secret: name the variable or file that holds it",
    "window-order": "a window that ends before it starts can never be open",
    "window-time": "a window must be a real instant, with its offset, to compare with now",
    "group-cycle": "group membership must be finite to say which hosts a target is",
    "target-unresolved": "every target must name exactly the hosts it means, or the step "
                         "would touch none, or the wrong ones",
    "journal-host-duplicate": "a verify report names the host that signed a checkpoint: "
                              "one name, one key",
}


@dataclass(frozen=True)
class Host:
    """One device (or simulator) and the variables Ansible would give it."""

    name: str
    vendor: str = ""
    model: str = ""
    part_number: str = ""
    firmware: str = ""
    serial: str = ""  # `serial_number` in the file (`serial` there is deprecated)
    device: str | None = None  # `otpatch_device`, or inferred (a note says so); None: unknown
    zone: str = ""
    vlan: int | None = None
    endpoints: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    simulator: bool = False
    stage: Stage = Stage.PRODUCTION  # `otpatch_stage`; unset means production
    credentials: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    vars: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class Approver:
    """A person who may sign off, the roles they hold and their Ed25519 public key."""

    name: str
    roles: tuple[str, ...]
    public_key: str | None = None
    public_key_file: str | None = None  # as written, resolved against the inventory's folder


@dataclass(frozen=True)
class MaintenanceWindow:
    """An agreed span of time in which production may be changed."""

    name: str
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class JournalHost:
    """An otpatch host whose signed journal checkpoints the site trusts."""

    name: str
    public_key: str  # base64 of the raw Ed25519 public key, as `otpatch keygen --host` prints


@dataclass(frozen=True)
class Siem:
    """The SIEM's syslog receiver (UDP, RFC 5424) that journal checkpoints are sent to."""

    host: str
    port: int = 514


@dataclass(frozen=True)
class TimeSync:
    """The site's time policy: window and expiry checks of execute runs need the host clock
    synchronised, within `max_error` seconds (IEC 62443-3-3 SR 2.11)."""

    required: bool
    max_error: float = 1.0


@dataclass(frozen=True)
class Inventory:
    path: str | None
    hosts: Mapping[str, Host]
    groups: Mapping[str, tuple[str, ...]]  # group -> its hosts, children's included
    approvers: tuple[Approver, ...]
    windows: Mapping[str, MaintenanceWindow]
    content_hash: str
    journal_hosts: tuple[JournalHost, ...] = ()
    siem: Siem | None = None
    time_sync: TimeSync | None = None
    notes: tuple[str, ...] = ()  # file:line:col: what was read but deserves a word

    def group_hosts(self, group: str) -> tuple[Host, ...]:
        return tuple(self.hosts[name] for name in self.groups.get(group, ()))


def empty_inventory() -> Inventory:
    """No hosts, no approvers, no windows: for playbooks without targets."""
    empty = MappingProxyType({})
    return Inventory(None, empty, empty, (), empty, YamlSource("", {}, {}).content_hash)


def load_inventory(path: str | Path) -> Inventory:
    """The validated inventory; PlaybookError carrying every problem found otherwise."""
    source = read_yaml(path)
    problems = schema_problems(source, "inventory")
    if problems:
        raise PlaybookError(problems)
    groups = _Groups(source)
    windows, problems = _windows(source)
    journal_hosts, trouble = _journal_hosts(source)
    problems += groups.problems + trouble
    if problems:
        raise PlaybookError(problems)
    folder = Path(path).resolve().parent
    hosts = {name: _with_paths_resolved(host, folder) for name, host in groups.hosts().items()}
    notes = groups.notes + _inferred_devices(source, groups, hosts)
    siem = _site(source).get("siem")
    return Inventory(path=str(path), hosts=MappingProxyType(hosts),
                     groups=MappingProxyType(groups.members), approvers=_approvers(source),
                     windows=MappingProxyType(windows), content_hash=source.content_hash,
                     journal_hosts=journal_hosts,
                     siem=Siem(siem["host"], siem.get("port", 514)) if siem else None,
                     time_sync=_time_sync(_site(source).get("time_sync")), notes=notes)


def _inferred_devices(source: YamlSource, groups: "_Groups", hosts: Mapping[str, Host]
                      ) -> tuple[str, ...]:
    """A located info note for each host whose kind was inferred, not given."""
    notes = []
    for name, host in hosts.items():
        if host.device is None or "otpatch_device" in host.vars:
            continue
        line, col = source.locate(groups.host_paths[name])
        notes.append(f"{source.file}:{line}:{col}: note: host {name}: device kind "
                     f"{host.device} inferred from part number {host.part_number!r} and model "
                     f"{host.model!r}; say `otpatch_device: {host.device}`")
        LOG.info("%s", notes[-1])
    return tuple(notes)


def _time_sync(spec: Any) -> TimeSync | None:
    from otpatch.modules.contract.durations import parse_duration

    if not spec:
        return None
    return TimeSync(bool(spec.get("required", False)),
                    parse_duration(spec.get("max_error", "1s")))


def resolve_targets(playbook: Playbook, inventory: Inventory) -> dict[str, tuple[Host, ...]]:
    """The hosts of each playbook target; PlaybookError (an InputError) located at the target
    for a group that is missing, empty, or holds several hosts for a one-host target."""
    out, problems = {}, []
    for name, target in playbook.targets.items():
        hosts = inventory.group_hosts(target.group)
        trouble = _target_trouble(target, hosts, inventory)
        if trouble:
            w = target.where
            problems.append(Problem(w.file, w.line, w.col, "target-unresolved",
                                    f"target {name}: {trouble}"))
        out[name] = hosts
    if problems:
        raise PlaybookError(problems)
    return out


def _target_trouble(target: Any, hosts: tuple[Host, ...], inventory: Inventory) -> str:
    where = f"in {inventory.path}" if inventory.path else "(no inventory given)"
    if target.group not in inventory.groups:
        known = ", ".join(sorted(inventory.groups)) or "none"
        return f"no group {target.group!r} {where} (groups: {known})"
    if not hosts:
        return f"group {target.group!r} {where} has no hosts"
    if len(hosts) > 1 and not target.many:
        names = ", ".join(h.name for h in hosts)
        return (f"group {target.group!r} has {len(hosts)} hosts ({names}) but the target is "
                "one host: narrow the group or declare `many: true`")
    return ""


def _approvers(source: YamlSource) -> tuple[Approver, ...]:
    site = ((source.data.get("all") or {}).get("vars") or {})
    folder = Path(source.file).parent
    return tuple(Approver(name=a["name"], roles=tuple(a["roles"]),
                          public_key=a.get("public_key"),
                          public_key_file=str(folder / a["public_key_file"])
                          if a.get("public_key_file") else None)
                 for a in site.get("approvers", ()))


def _site(source: YamlSource) -> dict:
    return (source.data.get("all") or {}).get("vars") or {}


def _journal_hosts(source: YamlSource) -> tuple[tuple[JournalHost, ...], list[Problem]]:
    """The trusted journal hosts; a second use of a name or a key is a problem at it."""
    out, problems, seen = [], [], {}
    for i, spec in enumerate(_site(source).get("journal_hosts") or ()):
        host = JournalHost(spec["name"], spec["public_key"])
        both = (("name", host.name), ("public key", host.public_key))
        twice = [(what, seen[what, value]) for what, value in both if (what, value) in seen]
        if twice:
            problems.append(source.problem(
                ("all", "vars", "journal_hosts", i), "journal-host-duplicate",
                f"journal host {host.name}: the same {twice[0][0]} as journal host "
                f"{twice[0][1]}"))
        for key in both:
            seen.setdefault(key, f"#{len(out) + 1} ({host.name})")
        out.append(host)
    return tuple(out), problems


def _windows(source: YamlSource) -> tuple[dict[str, MaintenanceWindow], list[Problem]]:
    site = ((source.data.get("all") or {}).get("vars") or {})
    out, problems = {}, []
    for name, spec in (site.get("maintenance_windows") or {}).items():
        path = ("all", "vars", "maintenance_windows", name)
        try:
            start, end = (datetime.fromisoformat(spec[k]) for k in ("start", "end"))
        except ValueError as e:
            problems.append(source.problem(path, "window-time", f"window {name}: {e}"))
            continue
        if end <= start:
            problems.append(source.problem(path, "window-order", f"window {name}: ends "
                                           f"({spec['end']}) before it starts ({spec['start']})"))
        out[name] = MaintenanceWindow(name, start, end)
    return out, problems


class _Groups:
    """Every group, wherever defined: its own hosts, vars and children; then membership."""

    def __init__(self, source: YamlSource):
        self.source = source
        self.own: dict[str, list[str]] = {}
        self.vars: dict[str, dict] = {}
        self.children: dict[str, list[str]] = {}
        self.host_vars: dict[str, dict] = {}
        self.paths: dict[str, tuple] = {}  # where each group is first defined
        self.host_paths: dict[str, tuple] = {}  # where each host is first listed
        self.problems: list[Problem] = []
        self.notes: tuple[str, ...] = ()
        for name, body in source.data.items():
            self._collect(name, body, (name,))
        if "all" not in self.own:
            self._collect("all", None, ("all",))
        self.children["all"] += [g for g in source.data if g != "all"
                                 and g not in self.children["all"]]
        self.order = self._children_first()
        self.members = self._members()

    def _collect(self, name: str, body: dict | None, path: tuple) -> None:
        body = body or {}
        self.paths.setdefault(name, path)
        self.own.setdefault(name, [])
        self.vars.setdefault(name, {}).update(self._renamed(
            {k: v for k, v in (body.get("vars") or {}).items() if k not in SITE_KEYS},
            path + ("vars",)))
        kids = self.children.setdefault(name, [])
        for host, hvars in (body.get("hosts") or {}).items():
            self.own[name].append(host)
            self.host_paths.setdefault(host, path + ("hosts", host))
            self.host_vars.setdefault(host, {}).update(
                self._renamed(hvars or {}, path + ("hosts", host)))
        for child, child_body in (body.get("children") or {}).items():
            kids.append(child)
            self._collect(child, child_body, path + ("children", child))

    def _renamed(self, mapping: dict, path: tuple) -> dict:
        """The mapping with `serial` read as `serial_number` (the schema refuses both), and
        a located deprecation note."""
        if "serial" not in mapping:
            return mapping
        line, col = self.source.locate(path + ("serial",))
        note = (f"{self.source.file}:{line}:{col}: note: `serial` is deprecated (Ansible "
                "reserves the name): rename it `serial_number`")
        self.notes += (note,)
        LOG.warning("%s", note)
        return {("serial_number" if k == "serial" else k): v for k, v in mapping.items()}

    def _children_first(self) -> list[str]:
        """Groups ordered so that children come before parents; groups on a cycle reported."""
        order = _peel({g: set(kids) for g, kids in self.children.items()})
        stuck = set(self.children) - set(order)
        parents = {g: {p for p in stuck if g in self.children[p]} for g in stuck}
        for g in sorted(stuck - set(_peel(parents))):  # ancestors of a cycle are not on it
            self.problems.append(self.source.problem(
                self.paths[g], "group-cycle",
                f"group {g!r} is its own child (directly or through others)"))
        return order

    def _members(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for g in self.order:
            hosts = dict.fromkeys(self.own[g])
            for kid in self.children[g]:
                hosts.update(dict.fromkeys(out.get(kid, ())))
            out[g] = tuple(hosts)
        return out

    def hosts(self) -> dict[str, Host]:
        depth = self._depths()
        ranked = [(g, set(self.members[g]))
                  for g in sorted(self.members, key=lambda g: (depth.get(g, 0), g))]
        return {name: _host(name, self._merged(name, ranked)) for name in self.host_vars}

    def _merged(self, host: str, ranked: list[tuple[str, set]]) -> dict:
        merged: dict[str, Any] = {}
        for g, members in ranked:
            if host in members:
                merged.update(self.vars[g])
        merged.update(self.host_vars[host])
        return merged

    def _depths(self) -> dict[str, int]:
        depth = {"all": 0}
        for g in reversed(self.order):  # parents first
            for kid in self.children[g]:
                depth[kid] = max(depth.get(kid, 0), depth.get(g, 0) + 1)
        return depth


def _host(name: str, v: dict) -> Host:
    return Host(name=name, vendor=v.get("vendor", ""), model=v.get("model", ""),
                part_number=v.get("part_number", ""), firmware=v.get("firmware", ""),
                serial=v.get("serial_number", ""), zone=v.get("zone", ""), vlan=v.get("vlan"),
                device=v.get("otpatch_device") or infer_device(v.get("part_number", ""),
                                                               v.get("model", "")),
                endpoints=freeze(v.get("endpoints") or {}),
                simulator=bool(v.get("simulator", False)),
                stage=Stage(v.get("otpatch_stage", Stage.PRODUCTION.value)),
                credentials=freeze(v.get("credentials") or {}), vars=freeze(v))


def _with_paths_resolved(host: Host, folder: Path) -> Host:
    """File references in host vars (tls_ca_file, credentials.password_file) are relative to
    the inventory's folder, wherever otpatch runs from."""
    def resolved(value: Any) -> str:
        path = Path(str(value)).expanduser()
        return str(path if path.is_absolute() else folder / path)

    host_vars, creds = dict(host.vars), dict(host.credentials)
    if host_vars.get("tls_ca_file"):
        host_vars["tls_ca_file"] = resolved(host_vars["tls_ca_file"])
    if creds.get("password_file"):
        creds["password_file"] = resolved(creds["password_file"])
        host_vars["credentials"] = creds
    return dataclasses.replace(host, vars=freeze(host_vars), credentials=freeze(creds))


def _peel(successors: dict[str, set[str]]) -> list[str]:
    """Nodes ordered so each comes after all its successors (Kahn); nodes on a cycle, or
    leading into one, are left out."""
    waiting = {n: len(s) for n, s in successors.items()}
    before: dict[str, set[str]] = {}
    for n, succ in successors.items():
        for m in succ:
            before.setdefault(m, set()).add(n)
    todo = deque(n for n, k in waiting.items() if k == 0)
    order = []
    while todo:
        n = todo.popleft()
        order.append(n)
        for p in before.get(n, ()):
            waiting[p] -= 1
            if waiting[p] == 0:
                todo.append(p)
    return order
