"""The simulator lab for `otpatch sim up` and the demo: one simulator per mGuard host of an
inventory, on that host's `https` endpoint, with certificates the inventory can trust.

How the lab inventory trusts the simulators (the driver never skips verification):
- each simulator makes a self-signed certificate (SAN 127.0.0.1, localhost, its name);
  with `state_dir`, it is kept in `state_dir/<host>/https-{cert,key}.pem` and reused on the
  next start, so its fingerprint stays stable (a `tls_fingerprint` pin stays valid);
  without, it is made fresh in a temporary folder removed at stop;
- if the host has `tls_ca_file`, the simulator writes its certificate (public, no key)
  there at every start: the inventory points the driver at the file the lab keeps current.

Each simulator plays the host's `model` (its platform: platform.py), `firmware`, `serial_number`
and `part_number`; a model and firmware that do not go together (an FL MGUARD RS4000 on 10.x)
are refused at start, naming the host. Without `firmware`: the platform's default (8.8.1 on
the RS platform, 10.3.1 on the 2000/4000).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from otpatch.modules.contract.devices import MGUARD
from otpatch.modules.contract.errors import InputError
from otpatch.modules.mguard import creds
from otpatch.modules.mguard.driver import endpoint_of
from otpatch.modules.mguard.sim import MguardSimulator, loopback
from otpatch.modules.mguard.simdevice import FAULTS, DeviceMismatch


def is_mguard(host: Any) -> bool:
    """Whether an inventory host is a Phoenix Contact mGuard: its `otpatch_device` (or the
    kind the loader inferred for an inventory without one)."""
    return getattr(host, "device", None) == MGUARD


class LabHandle:
    """The running simulators, by host name. A context manager: leaving it stops them."""

    def __init__(self, simulators: dict[str, MguardSimulator]):
        self.simulators = simulators

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(self.simulators)

    def _sim(self, host_name: str) -> MguardSimulator:
        try:
            return self.simulators[host_name]
        except KeyError:
            raise KeyError(f"no mGuard simulator for {host_name!r}; running: "
                           f"{', '.join(self.simulators) or 'none'}") from None

    def endpoints(self, host_name: str) -> dict[str, str]:
        """The endpoints the simulator really listens on (an ephemeral port resolved)."""
        return {"https": self._sim(host_name).endpoint}

    def ca_file(self, host_name: str) -> str:
        """A PEM file the driver can verify the simulator's certificate with."""
        return str(self._sim(host_name).cert.cert)

    def fingerprint(self, host_name: str) -> str:
        return self._sim(host_name).fingerprint

    def trust_vars(self, host_name: str) -> dict[str, str]:
        """Host variables that let the driver trust this simulator (for an inventory copy)."""
        return {"tls_ca_file": str(Path(self.ca_file(host_name)).resolve())}

    def device(self, host_name: str) -> Any:
        """The simulated device itself, in process (its state and action counts)."""
        return self._sim(host_name).device

    def reset(self, faults: Iterable[str] = (), only: Iterable[str] | None = None) -> None:
        """Every device (or those of the hosts named in `only`) as delivered, with these
        faults (its own; others ignored)."""
        names = set(only) if only is not None else None
        for name, sim in self.simulators.items():
            if names is None or name in names:
                sim.reset(frozenset(faults) & FAULTS)

    def stop(self) -> None:
        for sim in self.simulators.values():
            sim.stop()

    def __enter__(self) -> "LabHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_simulators(hosts: Iterable[Any], faults: Iterable[str] = (),
                     time_scale: float | None = None, bind: str = "127.0.0.1",
                     syslog_to: tuple[str, int] | str | None = None,
                     state_dir: str | Path | None = None) -> LabHandle:
    """Start one simulator per mGuard host marked `simulator: true` (others are left alone),
    in background threads; faults that are not the mGuard's are ignored. `syslog_to`
    ("host:port" or a pair) is where the simulators' syslog goes (nowhere when None)."""
    if not loopback(bind):
        raise InputError(f"simulators listen on loopback addresses only, not {bind}")
    target = _address(syslog_to) if syslog_to else None
    running: dict[str, MguardSimulator] = {}
    try:
        for host in (h for h in hosts if is_mguard(h) and h.simulator):
            running[host.name] = _start_one(host, frozenset(faults) & FAULTS, time_scale,
                                            bind, target, state_dir)
    except BaseException:
        LabHandle(running).stop()
        raise
    return LabHandle(running)


def _start_one(host: Any, faults: frozenset[str], time_scale: float | None, bind: str,
               syslog_to: tuple[str, int] | None, state_dir: str | Path | None
               ) -> MguardSimulator:
    address, port = endpoint_of(host)
    if not loopback(address):
        raise InputError(f"{host.name}: its https endpoint {address} is not a loopback "
                         "address: a simulator cannot stand in for it")
    device = {k: v for k, v in (("firmware", host.firmware), ("serial", host.serial),
                                ("part_number", host.part_number), ("model", host.model)) if v}
    try:
        sim = MguardSimulator(host.name, username=creds.username_of(host),
                              password=creds.password_of(host), port=port, bind=bind,
                              faults=faults, time_scale=time_scale, syslog_to=syslog_to,
                              cert_dir=Path(state_dir) / host.name if state_dir else None,
                              **device)
    except DeviceMismatch as e:  # the simulator plays the inventory's model, on its line
        raise InputError(f"{e}: the simulator plays the model and firmware the inventory "
                         "names") from None
    if host.vars.get("tls_ca_file"):
        ca_file = Path(str(host.vars["tls_ca_file"])).expanduser()
        ca_file.parent.mkdir(parents=True, exist_ok=True)
        ca_file.write_text(sim.cert.pem, encoding="ascii")
    return sim.start()


def _address(value: tuple[str, int] | str) -> tuple[str, int]:
    if isinstance(value, str):
        address, _, port = value.rpartition(":")
        return address, int(port)
    return value[0], int(value[1])


def lab() -> tuple[frozenset[str], Any]:
    """For the engine's simulator lab (package SIMULATORS): the faults the mGuard simulators
    know, and start(hosts, faults, options)."""
    def start(hosts: list, faults: tuple, options: dict) -> LabHandle:
        return start_simulators(hosts, faults, time_scale=options.get("time_scale"),
                                syslog_to=options.get("syslog_to"),
                                state_dir=options.get("state_dir"))
    return FAULTS, start
