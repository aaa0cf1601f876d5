"""The simulator lab: the device simulators an inventory's `simulator: true` hosts need,
on 127.0.0.1, for `otpatch sim up`, the demo and the tests."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Iterable

from otpatch.modules.contract.errors import InputError


def _starters() -> list[tuple[frozenset[str], Callable[..., Any]]]:
    """(fault names, start(hosts, faults, options)) of each package with simulators."""
    from otpatch.modules.registry import simulator_labs

    return simulator_labs()


def known_faults() -> frozenset[str]:
    return frozenset().union(*(faults for faults, _ in _starters()))


def check_faults(faults: Iterable[str]) -> tuple[str, ...]:
    """The faults as given, each `NAME` (every simulator) or `NAME@HOST` / `NAME@STAGE`
    (the simulators of one host, or of one stage's hosts); InputError for an unknown name."""
    faults = tuple(faults)
    known = known_faults()
    unknown = sorted({f.partition("@")[0] for f in faults} - known)
    if unknown:
        raise InputError(f"unknown fault(s) {', '.join(unknown)}; known: "
                         f"{', '.join(sorted(known))}")
    empty = [f for f in faults if f.endswith("@")]
    if empty:
        raise InputError(f"fault {empty[0]!r}: name a host or a stage after @")
    return faults


def faults_for(host: Any, faults: Iterable[str]) -> tuple[str, ...]:
    """The fault names that apply to `host`: unscoped ones, and those scoped to its name
    or to its stage."""
    out = []
    for fault in faults:
        name, _, scope = fault.partition("@")
        if not scope or scope in (host.name, host.stage.value):
            out.append(name)
    return tuple(dict.fromkeys(out))


def _unmatched_scopes(hosts: list[Any], faults: tuple[str, ...]) -> list[str]:
    names = {h.name for h in hosts} | {h.stage.value for h in hosts}
    return [f for f in faults if "@" in f and f.partition("@")[2] not in names]


class Lab:
    """Running simulators; `inventory` is the file dry runs should use (a copy with the
    bound ports when the lab was started on ephemeral ports)."""

    def __init__(self, inventory: Path, handles: list[Any],
                 hosts: dict[str, Any] | None = None) -> None:
        self.inventory, self.handles = inventory, handles
        self._hosts = hosts or {}  # name -> Host: where a scoped fault applies

    @property
    def skipped(self) -> tuple[str, ...]:
        """The `simulator: true` hosts of a kind no simulator package serves."""
        return tuple(name for name in self._hosts if name not in self.hosts)

    def endpoints(self, host: str) -> dict[str, str]:
        for handle in self.handles:
            if host in handle.hosts:
                return handle.endpoints(host)
        raise KeyError(host)

    def trust_vars(self, host: str) -> dict[str, str]:
        """Host variables that make the driver trust this host's simulator (TLS)."""
        for handle in self.handles:
            if host in handle.hosts and hasattr(handle, "trust_vars"):
                return handle.trust_vars(host)
        return {}

    def device(self, host: str) -> Any:
        """The simulated device of `host`, in process: its state and action counts."""
        for handle in self.handles:
            if host in handle.hosts:
                return handle.device(host)
        raise KeyError(host)

    def reset(self, faults: Iterable[str] = ()) -> None:
        """Every simulated device back to as configured, with these faults: one lab for
        several runs (the crash tests), as if each had its own. Only while no run talks
        to it."""
        faults = check_faults(faults)
        if unmatched := _unmatched_scopes(list(self._hosts.values()), faults):
            raise InputError(f"fault {unmatched[0]!r}: no simulator host or stage of that name")
        for handle in self.handles:
            if not any("@" in f for f in faults):
                handle.reset(faults)
                continue
            for name in handle.hosts:  # scoped faults: each host its own
                handle.reset(faults_for(self._hosts[name], faults), only=[name])

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(h for handle in self.handles for h in handle.hosts)

    def stop(self) -> None:
        for handle in reversed(self.handles):
            handle.stop()
        self.handles = []

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_lab(inventory: str | Path, faults: Iterable[str] = (), *, ephemeral: bool = False,
              time_scale: float | None = None, out_dir: Path | None = None,
              syslog_to: str | None = None, state_dir: Path | None = None,
              inventory_to: Path | None = None) -> Lab:
    """Start the simulators of the inventory's simulator hosts. With ephemeral, every port is
    chosen by the system and a copy of the inventory with those ports (and the certificates
    to trust) is written to `inventory_to` (default: out_dir, same file name). `syslog_to` ("host:port") is where the firewalls'
    syslog goes; `state_dir` keeps simulator keys, so certificate pins stay valid."""
    from otpatch.engine.inventory import load_inventory

    faults = check_faults(faults)
    hosts = [h for h in load_inventory(inventory).hosts.values() if h.simulator]
    if unmatched := _unmatched_scopes(hosts, faults):
        raise InputError(f"fault {unmatched[0]!r}: {inventory} has no simulator host or "
                         "stage of that name")
    if ephemeral:
        hosts = [_ephemeral(h) for h in hosts]
    options = {"time_scale": time_scale, "syslog_to": syslog_to, "state_dir": state_dir}
    # One lab for every host, so devices that talk to each other (a CPU's I/O scanner and
    # its drops) share it; scoped faults are then set host by host, as reset() does.
    scoped = any("@" in f for f in faults)
    handles: list[Any] = []
    try:
        for _, start in _starters():
            handles.append(start(hosts, () if scoped else faults, options))
    except OSError as e:  # a port in use, an address that is not this machine's
        Lab(Path(inventory), handles).stop()
        raise InputError(f"{inventory}: cannot start the simulators: {e}") from e
    except BaseException:
        Lab(Path(inventory), handles).stop()
        raise
    lab = Lab(Path(inventory), handles, {h.name: h for h in hosts})
    if scoped:
        lab.reset(faults)
    if ephemeral:
        target = inventory_to or (out_dir or Path(".")) / Path(inventory).name
        try:
            lab.inventory = _write_bound_inventory(Path(inventory), lab, Path(target))
        except BaseException:
            lab.stop()
            raise
    return lab


def _ephemeral(host: Any) -> Any:
    """The host on system-chosen ports, and without the inventory's certificate file: the
    copy of the inventory names the certificate this lab really serves."""
    from otpatch.modules.contract.values import freeze
    host_vars = {k: v for k, v in host.vars.items() if k != "tls_ca_file"}
    return dataclasses.replace(host, vars=freeze(host_vars), endpoints={
        k: _any_port(v) for k, v in host.endpoints.items()})


def _any_port(endpoint: str) -> str:
    host, _, _ = str(endpoint).rpartition(":")
    return f"{host or '127.0.0.1'}:0"


def _write_bound_inventory(source: Path, lab: Lab, target: Path) -> Path:
    """The inventory again, comments kept, with each simulated host's bound endpoints."""
    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString as Quoted

    yaml = YAML()
    yaml.preserve_quotes, yaml.width = True, 4096
    document = yaml.load(source.read_text(encoding="utf-8"))
    running = set(lab.hosts)
    for name, host_vars in _host_entries(document):
        if name in running and isinstance(host_vars, dict) and "endpoints" in host_vars:
            for kind, endpoint in lab.endpoints(name).items():
                host_vars["endpoints"][kind] = Quoted(endpoint)  # `a:b` in a flow map
            host_vars.update(lab.trust_vars(name))
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        yaml.dump(document, f)
    return target


def _host_entries(node: Any) -> Iterable[tuple[str, Any]]:
    """(host name, host vars) of every host in an Ansible YAML inventory, children included."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "hosts" and isinstance(value, dict):
            yield from value.items()
        elif isinstance(value, dict):
            yield from _host_entries(value)
