"""M580 / X80 simulators for the lab and for dry runs: `start_simulators(hosts, faults)`.

One simulator per M580 CPU host (Modbus TCP server on its `modbus` endpoint, EtherNet/IP
responder on its `enip` endpoint) and per X80 EIO drop adapter host (EtherNet/IP on `enip`),
all bound to 127.0.0.1, served from one background thread with its own asyncio loop.

Identifying as a simulator (what `SIMULATOR_PROBES` checks before a dry run, and each driver
before its first simulator-only command, in every mode: simidentity.py):
  - Modbus FC 43/14: product name "<part> (otpatch simulator)", and the extended object 0x80
    "otpatch simulator";
  - CIP Identity product name "<part> (otpatch simulator)", and the control object 0x64
    (asked only once the Identity names a simulator).

Register map of a simulated CPU (holding registers, FC 3; FC 6/16 only where marked RW;
constants in registers.py, imported by driver and simulator alike):

| addr | name              | values                                                          |
|------|-------------------|-----------------------------------------------------------------|
| 100  | CPU_STATE         | 0 STOP, 1 RUN, 2 REBOOTING, 3 HALTED (recovery), 4 UPDATING     |
| 101  | RUN_LED           | 0 off, 1 solid green, 2 blinking green                          |
| 102  | OPERATING_MODE RW | 0 auto, 1 manual (refused unless the CPU is in RUN or STOP)     |
| 103  | PID_LOOPS         | PID loops configured                                            |
| 104  | PID_LOOPS_STABLE  | PID loops within their deadband (0 unless RUN)                  |
| 105  | IO_DROPS          | remote I/O drops configured                                     |
| 106  | IO_DROPS_HEALTHY  | drops exchanging I/O (0 unless RUN)                             |
| 110  | RUNNING_VERSION   | 110 major, 111 minor (v03.20 = 3, 20)                           |
| 112  | STAGED_VERSION    | 112 major, 113 minor: the image last written; 0.0 none          |
| 114  | PREVIOUS_VERSION  | 114 major, 115 minor: what restore-previous goes back to        |
| 116  | TRANSFER_STATE    | 0 idle, 1 in progress, 2 complete, 3 aborted                    |
| 117  | TRANSFER_PROGRESS | percent                                                         |
| 118  | RESTORE_STATE     | 0 idle, 1 in progress, 2 complete, 3 failed                     |

CIP objects (explicit messaging, unconnected, TCP 44818; ListIdentity and ListServices also
over UDP on the same port; layouts in cip/objects.py). Every object answers Get_Attributes_All
(0x01) and Get_Attribute_Single (0x0E) on instance 1 (the control object: 0x0E only); other
services 0x08, unknown attributes 0x14, other instances 0x16, unknown classes 0x05:
  0x01  Identity, attributes 1-8: vendor 243, device type 0x0E (CPU) / 0x0C (adapter),
        product code, revision, status (bits 4-7 = 0001, 0x0010, while firmware is being
        written), serial, product name, state.
  0x64  simulator control (both kinds), instance 1: attr 1 marker, attr 2 simulated clock in ms
        (ULINT), attr 3 advance in ms (UDINT, Set_Attribute_Single: the control channel a dry
        run's virtual clock drives), attr 4 time scale (REAL, 0 when none).
  0x65  firmware loader (CPU): services 0x4B begin, 0x4C chunk, 0x4D commit, 0x4E restore
        previous version; attributes 1-4: state, progress, port, device-computed SHA-256.
        It stands in for Unity Loader / UMAS, which have no public API.
  0x352 I/O connection diagnostics (adapter), instance 1: the CPU's implicit connection to the
        drop, attributes 1-5: established, RPI O->T and T->O in us (10 ms default; `custom: {rpi_ms: N}` in the
        inventory), timeouts and frames since the simulator started.

Simulated time advances only through the control object, plus, when a `time_scale` is given
(wall seconds per simulated second), wall time divided by it: at 0.002 an 8-minute transfer
takes 0.96 s, so execute-mode runs polling the wall clock finish quickly. Timings: transfer
8 min, automatic reboot 52 s (the article's 45-60 s), restore previous version 6 min (restart
included). A simulator keeps answering while "rebooting" (CPU_STATE 2), so a dry run can
drive its clock; a real CPU goes silent (m580.wait_run takes silence for "not yet").

Faults: hash_mismatch, transfer_abort (at 37 %), reboot_hang (HALTED on the new image after
the transfer; restore previous still works), wrong_version_after_reboot (boots the old version),
io_connection_loss (every adapter counts one connection timeout per 7 simulated minutes).
Faults of other packages are ignored."""
from __future__ import annotations

import asyncio
import ipaddress
import threading
from typing import Any, Iterable

from otpatch.modules.contract.errors import InputError
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.device import (FAULTS, DeviceConfig, SimClock, SimulatedAdapter,
                                         SimulatedCpu)
from otpatch.modules.m580.servers import AdapterSimulator, CpuSimulator
from otpatch.modules.m580.versions import parse_version

START_TIMEOUT_S = 10.0
_DEFAULTS = {H.CPU: ("BMEP581020", "Modicon M580", 0x0A01),
             H.ADAPTER: ("BMECRA31210", "Modicon X80 EIO drop adapter", 0x0B01)}


def device_config(host: Any, kind: str) -> DeviceConfig:
    """What the simulator of `host` plays, from its inventory variables."""
    part, model, product_code = _DEFAULTS[kind]
    try:
        version = parse_version(host.firmware or "")
    except ValueError as e:
        raise InputError(f"{host.name}: `firmware` must give the running version: {e}") from e
    custom = (host.vars or {}).get("custom") or {}
    return DeviceConfig(name=host.name, part_number=host.part_number or part,
                        model=host.model or model, version=version,
                        serial=host.serial or host.name, cip_product_code=product_code,
                        rpi_ms=float(custom.get("rpi_ms", 10)))


class M580Lab:
    """Running simulators; `endpoints(host)` gives where each answers. A context manager."""

    def __init__(self, hosts: Iterable[Any], faults: Iterable[str] = (),
                 time_scale: float | None = None, bind: str = "127.0.0.1"):
        if not ipaddress.ip_address(bind).is_loopback:
            raise InputError(f"simulators bind a loopback address only, not {bind}")
        self.faults = frozenset(faults) & FAULTS
        self.time_scale, self.bind = time_scale, bind
        self._sims = {h.name: self._simulator(h, kind) for h in hosts
                      if h.simulator and (kind := H.device_kind(h))}
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="m580-lab", daemon=True)

    def _simulator(self, host: Any, kind: str) -> CpuSimulator | AdapterSimulator:
        config, clock = device_config(host, kind), SimClock(self.time_scale)
        enip = self._port(host, "enip")
        if kind == H.CPU:
            return CpuSimulator(SimulatedCpu(config, self.faults, clock), self.bind,
                                self._port(host, "modbus"), enip)
        return AdapterSimulator(SimulatedAdapter(config, self.faults, clock), self.bind, enip)

    def _port(self, host: Any, name: str) -> int:
        address, port = H.endpoint(host, name)
        if not ipaddress.ip_address(address).is_loopback:
            raise InputError(f"{host.name}: a simulator answers on a loopback address only; "
                             f"the inventory gives {name}={address}:{port}")
        return port

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(self._sims)

    def endpoints(self, host_name: str) -> dict[str, str]:
        """The bound endpoints of one simulated host (ephemeral ports resolved)."""
        return self._sims[host_name].endpoints()

    def device(self, host_name: str) -> SimulatedCpu | SimulatedAdapter:
        """The simulated device itself, in process (its state and action counts)."""
        return self._sims[host_name].model

    def reset(self, faults: Iterable[str] = (), only: Iterable[str] | None = None) -> None:
        """Every device (or those of the hosts named in `only`) back to as configured, with
        these faults (theirs; others ignored). Call it while no client talks to the lab."""
        chosen = frozenset(faults) & FAULTS
        if only is None:
            self.faults = chosen
        names = set(only) if only is not None else None
        for name, sim in self._sims.items():
            if names is None or name in names:
                sim.model.reset(chosen)

    def start(self) -> "M580Lab":
        if self._thread.ident is not None:  # already started (start_simulators, then `with`)
            return self
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("M580 simulators did not start within "
                               f"{START_TIMEOUT_S:.0f} s")
        if self._error is not None:
            self._thread.join(START_TIMEOUT_S)
            raise self._error
        return self

    def stop(self) -> None:
        """Stop every simulator and wait for the thread to end."""
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(START_TIMEOUT_S)

    def __enter__(self) -> "M580Lab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        started = []
        try:
            for sim in self._sims.values():
                started.append(sim)  # stopped below even if it starts only halfway
                await sim.start()
        except Exception as e:  # a port in use: reported to start()'s caller
            self._error = e
        self._ready.set()
        if self._error is None:
            await self._stopping.wait()
        for sim in started:
            await sim.stop()


def start_simulators(hosts: Iterable[Any], faults: Iterable[str] = (),
                     time_scale: float | None = None, bind: str = "127.0.0.1") -> M580Lab:
    """Start one simulator per M580 CPU and X80 adapter host marked `simulator: true`; other
    hosts are left alone. Ports 0 in an endpoint are ephemeral: ask `endpoints(host)`."""
    return M580Lab(hosts, faults, time_scale, bind).start()


def lab() -> tuple[frozenset[str], Any]:
    """For the engine's simulator lab (package SIMULATORS): the faults the M580 simulators
    know, and start(hosts, faults, options)."""
    def start(hosts: list, faults: tuple, options: dict) -> M580Lab:
        return start_simulators(hosts, faults, time_scale=options.get("time_scale"))
    return FAULTS, start
