"""The simulated devices' behaviour, without any network: an M580 CPU with its firmware store,
application and hardware (cpustore.py), and an X80 EIO drop adapter with its Connection
Manager (iosim.py), on a simulated clock; their figures are in simfigures.py."""
from __future__ import annotations

import hashlib
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Callable

from otpatch.modules.cip import objects
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.appobject import DownloadState, SwapState
from otpatch.modules.m580.engineering_link import crosses_down
from otpatch.modules.m580.hardware import SpareCpu, cip_serial_of, pv_text
from otpatch.modules.m580.iosim import AdapterConnections
from otpatch.modules.m580.cpustore import ApplicationAndHardware
from otpatch.modules.m580.simapp import (  # SimRefused: enip_sim's too
    Application, ApplicationDownload, Hardware, SimRefused)
from otpatch.modules.m580.simfigures import (ABORT_AT, DEFAULT_APPLICATION, MIN_DOWNGRADE_PV,
                                             NOCONF_STATUS, REBOOT_S, RESTORE_S,
                                             SIM_PRODUCT_VERSION, SPECIAL_FIRMWARE_MARKER,
                                             TRANSFER_S)
from otpatch.modules.m580.versions import NO_VERSION, FirmwareVersion

CPU_FAULTS = frozenset({"hash_mismatch", "transfer_abort", "reboot_hang",
                        "wrong_version_after_reboot"})
ADAPTER_FAULTS = frozenset({"io_connection_loss"})
FAULTS = CPU_FAULTS | ADAPTER_FAULTS

class SimClock:
    """Simulated seconds: advanced by hand, plus wall time divided by `time_scale` (wall
    seconds per simulated second: at 0.002 an 8-minute transfer takes 0.96 s)."""

    def __init__(self, time_scale: float | None = None):
        if time_scale is not None and time_scale <= 0:
            raise ValueError(f"time_scale must be above 0, not {time_scale}")
        self.time_scale = time_scale
        self._wall0 = time.monotonic()
        self._advanced = 0.0

    def now(self) -> float:
        if self.time_scale is None:
            return self._advanced
        return self._advanced + (time.monotonic() - self._wall0) / self.time_scale

    def advance(self, seconds: float) -> None:
        self._advanced += max(0.0, seconds)


@dataclass(frozen=True)
class DeviceConfig:
    """What a simulator is told about the device it plays (from the inventory host)."""

    name: str
    part_number: str
    model: str
    version: FirmwareVersion
    serial: str
    cip_product_code: int
    rpi_ms: float = 10.0
    pid_loops: int = 4
    io_drops: int = 1
    product_version: int = SIM_PRODUCT_VERSION  # the CPU's hardware PV
    application_name: str = DEFAULT_APPLICATION  # the CPU's application (and its SD card's)
    spare: SpareCpu | None = None  # the pre-registered spare CPU (inventory `spare_cpu`)

    @property
    def cip_serial(self) -> int:
        """The CIP serial (UDINT): the inventory serial if it is hex, else its CRC-32."""
        return cip_serial_of(self.serial)

    @property
    def hardware(self) -> Hardware:
        return Hardware(self.serial, self.part_number, self.product_version)

    @property
    def product_name(self) -> str:
        return f"{self.part_number} ({objects.SIMULATOR_MARKER})"


class _Timeline:
    """Events due at simulated times, run in order by `settle()`; an event may schedule more,
    relative to its own due time, so one big advance plays out a whole sequence."""

    def __init__(self, clock: SimClock):
        self.clock = clock
        self._events: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = itertools.count()

    def at(self, due: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self._events, (due, next(self._seq), action))

    def cancel(self) -> None:
        """Nothing pending happens any more (the CPU was powered down and replaced)."""
        self._events.clear()

    def settle(self) -> float:
        now = self.clock.now()
        while self._events and self._events[0][0] <= now:
            due, _, action = heapq.heappop(self._events)
            action(due)
        return now


@dataclass
class _Transfer:
    started: float
    port: int
    version: FirmwareVersion
    size: int
    image: bytearray = field(default_factory=bytearray)
    committed: bool = False
    special: bool = False  # the special downgrade firmware across 4.20: erases the application


class SimulatedCpu(ApplicationAndHardware):
    """An M580 CPU: RUN state, operating mode, PID loops, I/O drops, firmware store, its
    application (lost in a special downgrade, put back by a download) and its hardware (the
    spare swap replaces it)."""

    def __init__(self, config: DeviceConfig, faults: frozenset[str], clock: SimClock):
        self.config, self.clock = config, clock
        self.reset(faults)

    def reset(self, faults: frozenset[str]) -> None:
        """Back to the CPU as configured (RUN, auto, its configured firmware, nothing staged
        or under way), with these faults, its action counts at 0; the clock runs on. For a
        lab shared by several runs, as if each had its own CPU."""
        self.faults = frozenset(faults) & CPU_FAULTS
        self.timeline = _Timeline(self.clock)
        self.state, self.mode = R.CpuState.RUN, R.OperatingMode.AUTO
        self.running, self.staged, self.previous = self.config.version, NO_VERSION, NO_VERSION
        self.transfer_state, self.progress = R.TransferState.IDLE, 0
        self.restore_state = R.RestoreState.IDLE
        self.reported_sha256 = ""
        self._transfer: _Transfer | None = None
        # what the CPU was asked to do: a crash test counts them (never twice for one change)
        self.transfers = 0  # images committed to flash (commit_transfer)
        self.restores = 0  # Restore Previous Version started
        self.hardware = self.config.hardware
        self.application: Application | None = Application.as_configured(
            self.config.application_name)
        self.download_state, self.swap_state = DownloadState.IDLE, SwapState.IDLE
        self._download: ApplicationDownload | None = None
        self.downloads = 0  # application downloads loaded (commit_download)
        self.swaps = 0  # spare swaps started

    # -- what the device shows --------------------------------------------------------------
    def registers(self) -> dict[int, int]:
        now = self.timeline.settle()
        running = self.state == R.CpuState.RUN
        regs = {R.CPU_STATE: self.state, R.RUN_LED: self._led(), R.OPERATING_MODE: self.mode,
                R.PID_LOOPS: self.config.pid_loops,
                R.PID_LOOPS_STABLE: self.config.pid_loops if running else 0,
                R.IO_DROPS: self.config.io_drops,
                R.IO_DROPS_HEALTHY: self.config.io_drops if running else 0,
                R.TRANSFER_STATE: self.transfer_state, R.TRANSFER_PROGRESS: self._progress(now),
                R.RESTORE_STATE: self.restore_state}
        for base, version in ((R.RUNNING_VERSION, self.running), (R.STAGED_VERSION, self.staged),
                              (R.PREVIOUS_VERSION, self.previous)):
            regs[base], regs[base + 1] = version.major, version.minor
        return {k: int(v) for k, v in regs.items()}

    def _led(self) -> R.RunLed:
        if self.state == R.CpuState.RUN:
            return R.RunLed.SOLID_GREEN
        if self.state in (R.CpuState.STOP, R.CpuState.UPDATING):
            return R.RunLed.BLINKING_GREEN
        return R.RunLed.OFF

    def _progress(self, now: float) -> int:
        if self.transfer_state == R.TransferState.IN_PROGRESS and self._transfer:
            return min(99, int((now - self._transfer.started) / TRANSFER_S * 100))
        return self.progress

    def cip_identity(self) -> objects.CipIdentity:
        self.timeline.settle()
        status = NOCONF_STATUS if self.state == R.CpuState.NOCONF else 0x0004 | {
            R.CpuState.UPDATING: objects.STATUS_FIRMWARE_UPDATE, R.CpuState.RUN: 0x0060,
            R.CpuState.HALTED: 0x0430}.get(self.state, 0x0070)
        return objects.CipIdentity(objects.SCHNEIDER_VENDOR_ID, objects.DEVICE_TYPE_PLC,
                                   self.config.cip_product_code, self.running.major,
                                   self.running.minor, status, self.hardware.cip_serial,
                                   self._product_name())

    def _product_name(self) -> str:
        return f"{self.hardware.part_number} ({objects.SIMULATOR_MARKER})"

    def modbus_identity(self) -> dict[int, str]:
        """FC 43/14 objects: basic, regular (0x06 the application's name, while it has one),
        and 0x80 (extended) naming the simulator."""
        self.timeline.settle()
        found = {0x00: "Schneider Electric", 0x01: self.hardware.part_number,
                 0x02: str(self.running), 0x03: "www.se.com", 0x04: self._product_name(),
                 0x05: self.config.model or "Modicon M580", 0x80: objects.SIMULATOR_MARKER}
        if self.application is not None:
            found[0x06] = self.application.name
        return found

    # -- what a client may ask -------------------------------------------------------------
    def set_mode(self, value: int) -> bool:
        """Operating mode written to its register; False (the write is refused) when the
        value is unknown or the CPU is not running its application."""
        self.timeline.settle()
        if value not in {m.value for m in R.OperatingMode} or self.state not in (R.CpuState.RUN,
                                                                   R.CpuState.STOP):
            return False
        self.mode = R.OperatingMode(value)
        return True

    def loader_status(self) -> objects.LoaderStatus:
        now = self.timeline.settle()
        port = self._transfer.port if self._transfer else 0
        return objects.LoaderStatus(self.transfer_state, self._progress(now), port,
                                    self.reported_sha256)

    def begin_transfer(self, size: int, port: int, version: FirmwareVersion) -> None:
        self._refuse_if_busy()
        if size <= 0:
            raise SimRefused(objects.INVALID_VALUE, "empty image")
        self._transfer = _Transfer(self.clock.now(), port, version, size)
        self.transfer_state, self.progress, self.reported_sha256 = R.TransferState.IDLE, 0, ""

    def write_chunk(self, offset: int, data: bytes) -> None:
        t = self._transfer
        if t is None or t.committed or offset != len(t.image) or offset + len(data) > t.size:
            raise SimRefused(objects.STATE_CONFLICT, "chunk out of sequence")
        t.image += data

    def commit_transfer(self) -> None:
        t = self._transfer
        if t is None or t.committed or len(t.image) != t.size:
            raise SimRefused(objects.STATE_CONFLICT, "image incomplete")
        self._check_downgrade(t)
        t.committed, t.started = True, self.timeline.settle()
        self.transfers += 1
        self.transfer_state, self.state = R.TransferState.IN_PROGRESS, R.CpuState.UPDATING
        if "transfer_abort" in self.faults:
            self.timeline.at(t.started + ABORT_AT * TRANSFER_S, self._abort)
        else:
            self.timeline.at(t.started + TRANSFER_S, self._transferred)

    def _check_downgrade(self, t: _Transfer) -> None:
        """FAQ000272937: across 4.20 downward only the special firmware, and only on a CPU
        whose product version allows it (MIN_DOWNGRADE_PV); the CPU then boots without its
        application."""
        if not crosses_down(self.running, t.version):
            return
        if not bytes(t.image).startswith(SPECIAL_FIRMWARE_MARKER):
            raise SimRefused(objects.DEVICE_STATE_CONFLICT,
                             f"{self.running} to {t.version} needs the special firmware from "
                             "Schneider support (FAQ000272937)")
        pv = self.hardware.product_version
        if pv < MIN_DOWNGRADE_PV:
            raise SimRefused(objects.DEVICE_STATE_CONFLICT,
                             f"product version {pv_text(pv)} does not allow the downgrade to "
                             f"{t.version} (this simulator: {pv_text(MIN_DOWNGRADE_PV)} and "
                             "later)")
        t.special = True

    def restore_previous(self) -> None:
        self._refuse_if_busy()
        if self.previous.is_none:
            raise SimRefused(objects.STATE_CONFLICT, "no previous version stored")
        if crosses_down(self.running, self.previous):
            raise SimRefused(objects.DEVICE_STATE_CONFLICT,
                             f"{self.running} to {self.previous} needs the special firmware "
                             "from Schneider support (FAQ000272937)")
        self.restore_state, self.state = R.RestoreState.IN_PROGRESS, R.CpuState.UPDATING
        self.restores += 1
        self.timeline.at(self.clock.now() + RESTORE_S, self._restored)

    def _refuse_if_busy(self) -> None:
        self.timeline.settle()
        if self.state in (R.CpuState.UPDATING, R.CpuState.REBOOTING):
            raise SimRefused(objects.DEVICE_STATE_CONFLICT,
                             f"CPU is {self.state.name.lower()}")
        if self.download_state == DownloadState.IN_PROGRESS or \
                self.swap_state == SwapState.IN_PROGRESS:
            raise SimRefused(objects.DEVICE_STATE_CONFLICT,
                             "an application download or a spare swap is under way")

    # -- what happens as simulated time passes ----------------------------------------------
    def _abort(self, due: float) -> None:
        self.transfer_state, self.progress = R.TransferState.ABORTED, int(ABORT_AT * 100)
        self.state, self._transfer = R.CpuState.RUN, None

    def _transferred(self, due: float) -> None:
        t = self._transfer
        digest = hashlib.sha256(bytes(t.image)).hexdigest()
        if "hash_mismatch" in self.faults:  # the image was damaged on its way into flash
            digest = hashlib.sha256(bytes(t.image) + b"\x00").hexdigest()
        self.transfer_state, self.progress, self.reported_sha256 = (
            R.TransferState.COMPLETE, 100, digest)
        self.previous, self.staged, self.state = self.running, t.version, R.CpuState.REBOOTING
        self.timeline.at(due + REBOOT_S, self._booted)

    def _booted(self, due: float) -> None:
        new_bank = "wrong_version_after_reboot" not in self.faults  # that fault: the old one
        if new_bank:
            self.running = self.staged
        # reboot_hang: the new image is in flash but the CPU never comes up on it
        self.state = R.CpuState.HALTED if "reboot_hang" in self.faults else self._up()
        if new_bank and self._transfer is not None and self._transfer.special:
            self.application = None  # FAQ000272937: "reject and erase the application"
            if self.state != R.CpuState.HALTED:
                self.state = R.CpuState.NOCONF

    def _up(self) -> R.CpuState:
        """The state a CPU starts in: RUN with an application, NOCONF without one."""
        return R.CpuState.RUN if self.application is not None else R.CpuState.NOCONF

    def _restored(self, due: float) -> None:
        self.running, self.previous, self.staged = self.previous, self.running, NO_VERSION
        self.restore_state, self.state = R.RestoreState.COMPLETE, self._up()

class SimulatedAdapter:
    """An X80 EIO drop adapter: the class-1 connections its CPU's EIO scanner opens
    (iosim.AdapterConnections: Forward_Open, counters, timeouts), and its Identity, whose
    status word says how those connections stand. `io_connection_loss` on an adapter makes
    its scanner stop sending to it once the CPU runs another firmware (scanner.py)."""

    def __init__(self, config: DeviceConfig, faults: frozenset[str], clock: SimClock):
        self.config, self.clock = config, clock
        self.connections = AdapterConnections()
        self.reset(faults)

    def reset(self, faults: frozenset[str]) -> None:
        """With these faults from now on; the counters as after power-up (the connections
        its scanner holds stay open)."""
        self.faults = frozenset(faults) & ADAPTER_FAULTS
        self.connections.reset()

    def connection_manager(self) -> objects.ConnectionManagerCounters:
        return self.connections.counters()

    def cip_identity(self) -> objects.CipIdentity:
        c = self.config
        return objects.CipIdentity(objects.SCHNEIDER_VENDOR_ID, objects.DEVICE_TYPE_COMMS_ADAPTER,
                                   c.cip_product_code, c.version.major, c.version.minor,
                                   self.connections.status_word(), c.cip_serial,
                                   c.product_name)
