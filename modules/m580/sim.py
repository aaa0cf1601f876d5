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
A CPU's FC 43/14 also answers object 0x06 (UserApplicationName) while it has an application.

Register map of a simulated CPU (holding registers, FC 3; FC 6/16 only where marked RW;
constants in registers.py, imported by driver and simulator alike):

| addr | name              | values                                                          |
|------|-------------------|-----------------------------------------------------------------|
| 100  | CPU_STATE         | 0 STOP, 1 RUN, 2 REBOOTING, 3 HALTED (recovery), 4 UPDATING,    |
|      |                   | 5 NOCONF (no valid application: Control Expert's state name)    |
| 101  | RUN_LED           | 0 off (also NOCONF: not confirmed), 1 solid green, 2 blinking   |
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
over UDP on the same port; layouts in cip/objects.py and cip/connected.py). Every object
answers Get_Attributes_All (0x01) and Get_Attribute_Single (0x0E) on instance 1 (the control
object: 0x0E only); other services 0x08, unknown attributes 0x14, other instances 0x16,
unknown classes 0x05:
  0x01  Identity, attributes 1-8: vendor 243, device type 0x0E (CPU) / 0x0C (adapter),
        product code, revision, status (bits 4-7 = 0001, 0x0010, while firmware is being
        written; an adapter's say how its I/O connections stand: 0110 one in run mode, 0111
        established but idle, 0011 none, 0010 one timed out and none in run mode since),
        serial, product name, state.
  0x06  Connection Manager (adapter), instance 1: counters 1-8 (Open Requests, Open Format
        / Resource / Other Rejects, Close Requests, Close Format / Other Requests,
        Connection Timeouts; UINT, from 0 at start and after a reset), Forward_Open (0x54)
        and Forward_Close (0x4E) of class-1 connections to the assemblies 151 (config), 150
        (outputs, 38 bytes O->T with the run/idle header) and 100 (inputs, 34 bytes T->O);
        one exclusive owner: another originator is refused 0x01/0x0106 (iosim.py).
  0x64  simulator control (both kinds), instance 1: attr 1 marker, attr 2 simulated clock in ms
        (ULINT), attr 3 advance in ms (UDINT, Set_Attribute_Single: the control channel a dry
        run's virtual clock drives), attr 4 time scale (REAL, 0 when none).
  0x65  firmware loader (CPU): services 0x4B begin, 0x4C chunk, 0x4D commit, 0x4E restore
        previous version; attributes 1-4: state, progress, port, device-computed SHA-256.
        It stands in for Unity Loader / UMAS, which have no public API. Going back across
        4.20 (a CPU on 4.20 or later, an image or a restore before 4.20: FAQ000272937) is
        refused 0x10 unless the image is the stand-in special downgrade firmware (its first
        bytes: simfigures.SPECIAL_FIRMWARE_MARKER) and the CPU's product version is PV 05 or
        later (MIN_DOWNGRADE_PV, a simulator figure: the FAQ names none); then the CPU
        boots the old version without its application: NOCONF, Identity status 0x0030 (not
        configured, no I/O connections), FC 43 without object 0x06, no I/O to its drops.
  0x66  application store (CPU), instance 1: attributes 1 present, 2 CRC-32 (zlib, over
        the image), 3 size, 4 download state (0 idle, 1 loading, 2 complete), 5 name;
        services 0x4B upload (offset UDINT, length UINT, at most 16 KiB), 0x4C download
        begin (size UDINT, CRC-32 UDINT, name SHORT_STRING), 0x4D chunk (offset, bytes),
        0x4E commit (refused 0x09 when the image's CRC-32 is not the one declared). A
        download stops the CPU (NOCONF without an application) for 3 min, then it runs the
        application. It stands in for Control Expert's upload and download (UMAS).
  0x67  hardware (CPU), instance 1: attributes 1 product version, 2 swap state (0 idle, 1
        under way, 2 complete), 3 spare registered; service 0x4B swaps in the inventory's
        `spare_cpu` (it stands for a person): the CPU is REBOOTING for 18 min, then answers
        with the spare's serial, part number, product version and firmware (the host's own
        when the spare gives none), no firmware history, and the application of its SD card
        (the CPU's as-configured one: FAQ000272937 method 2), in RUN.

Class-1 I/O (scanner.py, iosim.py): each CPU's EIO scanner opens a Forward_Open to every
adapter host of the same lab whose `eio_scanner` names the CPU, at the adapter's RPI (10 ms;
`custom: {rpi_ms: N}`), timeout multiplier x4, and exchanges cyclic UDP packets on ephemeral
ports named in the sockaddr info items (never the EtherNet/IP port's ListIdentity listener).
These packets run on the wall clock whatever the simulated clock does. While the CPU writes
a firmware, reboots or halts, its scanner closes the connections (Forward_Close, no timeout)
and opens them again once it runs; in STOP it sends idle. A lab is ready, and a reset
returns, once every drop is in run mode. A connection times out after 4 RPI periods without
a packet, counted in periods the lab's thread really ran (iosim.py says why).

Simulated time advances only through the control object, plus, when a `time_scale` is given
(wall seconds per simulated second), wall time divided by it: at 0.002 an 8-minute transfer
takes 0.96 s, so execute-mode runs polling the wall clock finish quickly. Timings: transfer
8 min, automatic reboot 52 s (the article's 45-60 s), restore previous version 6 min (restart
included); a special downgrade is a transfer and a reboot; estimates where no source gives a
figure: application download 3 min, spare swap 18 min (simfigures.py). A simulator keeps answering while "rebooting" (CPU_STATE 2), so a dry run can
drive its clock; a real CPU goes silent (m580.wait_run takes silence for "not yet").

Inventory variables a CPU's simulator reads: firmware, part_number, serial_number,
product_version (default PV 07), spare_cpu, and `custom: {application_name: NAME}` (default
M580_APP; the image is NAME's stand-in, the same bytes for the CPU and its spare's SD card).

Faults: hash_mismatch, transfer_abort (at 37 %), reboot_hang (HALTED on the new image after
the transfer; restore previous still works), wrong_version_after_reboot (boots the old version),
io_connection_loss (on a CPU: all its drops; on an adapter: that drop): while the CPU runs a
firmware other than the one it was configured with, its scanner stops sending to the drops
concerned, which time out (Connection Timeouts +1, again after each re-open) until the CPU
runs its configured version again (a rollback). A fault scoped to one host starts that host
in a lab of its own (engine/simlab.py groups hosts by their faults), apart from its scanner
or drops: scope io_connection_loss to a stage, or reset a running lab with it.
Faults of other packages are ignored."""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from typing import Any, Iterable

from otpatch.modules.contract.errors import InputError
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.device import (FAULTS, DeviceConfig, SimClock, SimulatedAdapter,
                                         SimulatedCpu)
from otpatch.modules.m580.hardware import product_version_of, spare_of
from otpatch.modules.m580.scanner import Drop, EioScanner
from otpatch.modules.m580.servers import AdapterSimulator, CpuSimulator
from otpatch.modules.m580.versions import parse_version

LOG = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
IO_UP_S = 2.0  # at start and after a reset: the scanners' connections back in run mode
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
                        rpi_ms=float(custom.get("rpi_ms", 10)), **_cpu_hardware(host, kind))


def _cpu_hardware(host: Any, kind: str) -> dict[str, Any]:
    """A CPU's product version, application name (`custom: {application_name: ...}`) and
    registered spare, from its inventory variables (simfigures.py's defaults otherwise)."""
    if kind != H.CPU:
        return {}
    found: dict[str, Any] = {"spare": spare_of(host)}
    pv = product_version_of(host)
    if pv is not None:
        found["product_version"] = pv
    name = ((host.vars or {}).get("custom") or {}).get("application_name")
    if name:
        found["application_name"] = str(name)
    return found


class M580Lab:
    """Running simulators; `endpoints(host)` gives where each answers. A context manager."""

    def __init__(self, hosts: Iterable[Any], faults: Iterable[str] = (),
                 time_scale: float | None = None, bind: str = "127.0.0.1"):
        if not ipaddress.ip_address(bind).is_loopback:
            raise InputError(f"simulators bind a loopback address only, not {bind}")
        self.faults = frozenset(faults) & FAULTS
        self.time_scale, self.bind = time_scale, bind
        chosen = [(h, kind) for h in hosts if h.simulator and (kind := H.device_kind(h))]
        self._sims = {h.name: self._simulator(h, kind) for h, kind in chosen}
        self._scanners = self._eio_scanners([h for h, _ in chosen])
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="m580-lab", daemon=True)

    def _eio_scanners(self, hosts: list[Any]) -> dict[str, EioScanner]:
        """A scanner per CPU with drops: the adapter hosts of this lab whose `eio_scanner`
        names it, at each adapter's configured RPI."""
        drops: dict[str, list[Drop]] = {}
        for host in hosts:
            cpu = (host.vars or {}).get("eio_scanner")
            sim = self._sims[host.name]
            if isinstance(sim, AdapterSimulator) and isinstance(self._sims.get(cpu),
                                                                CpuSimulator):
                rpi_us = round(sim.model.config.rpi_ms * 1000)
                drops.setdefault(cpu, []).append(Drop(host.name, sim, rpi_us))
        return {cpu: EioScanner(self._sims[cpu].model, found, self.bind, self.faults)
                for cpu, found in drops.items()}

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
        these faults (theirs; others ignored), and once the drops' I/O is back in run mode
        (bounded by IO_UP_S). Call it while no client talks to the lab."""
        chosen = frozenset(faults) & FAULTS
        if only is None:
            self.faults = chosen
        names = set(only) if only is not None else None
        if self._loop is None or not self._thread.is_alive():
            self._reset_models(chosen, names)
            return

        async def reset_in_loop() -> None:  # the models belong to the lab's thread
            self._reset_models(chosen, names)
            await self._io_up()
        asyncio.run_coroutine_threadsafe(reset_in_loop(), self._loop).result(
            START_TIMEOUT_S)

    def _reset_models(self, faults: frozenset[str], names: set[str] | None) -> None:
        for name, sim in self._sims.items():
            if names is None or name in names:
                sim.model.reset(faults)
                if name in self._scanners:
                    self._scanners[name].reset(faults)

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
        started: list[Any] = []
        try:
            for sim in [*self._sims.values(), *self._scanners.values()]:
                started.append(sim)  # stopped below even if it starts only halfway
                await sim.start()
            await self._io_up()
        except Exception as e:  # a port in use: reported to start()'s caller
            self._error = e
        self._ready.set()
        if self._error is None:
            await self._stopping.wait()
        for sim in reversed(started):  # scanners first: no packet to a stopped adapter
            await sim.stop()

    async def _io_up(self) -> None:
        """Wait, up to IO_UP_S, until every scanner's drops show run mode: a run starting
        now finds the I/O as a running plant has it."""
        waited = 0.0
        while not all(s.drops_in_run_mode() for s in self._scanners.values()):
            if waited >= IO_UP_S:
                LOG.warning("EIO drops not in run mode after %.0f s", IO_UP_S)
                return
            await asyncio.sleep(0.01)
            waited += 0.01


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
