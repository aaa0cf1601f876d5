"""The simulated devices' behaviour, without any network: an M580 CPU with its firmware store
and an X80 EIO drop adapter with its implicit I/O connection, both on a simulated clock."""
from __future__ import annotations

import hashlib
import heapq
import itertools
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable

from otpatch.modules.cip import objects
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.versions import NO_VERSION, FirmwareVersion

CPU_FAULTS = frozenset({"hash_mismatch", "transfer_abort", "reboot_hang",
                        "wrong_version_after_reboot"})
ADAPTER_FAULTS = frozenset({"io_connection_loss"})
FAULTS = CPU_FAULTS | ADAPTER_FAULTS

TRANSFER_S = 8 * 60  # a full BME P58 1020 image over the USB service port at 115,200 baud
REBOOT_S = 52  # the automatic reboot after a transfer: the article gives 45-60 s
RESTORE_S = 6 * 60  # Control Expert "PLC - Restore Previous Version", restart included
ABORT_AT = 0.37  # transfer_abort: the share of the transfer done when it breaks off
IO_TIMEOUT_EVERY_S = 7 * 60  # io_connection_loss: one connection timeout per 7 minutes


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


class SimRefused(Exception):
    """The simulated device refuses a request: a CIP general status and the reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


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

    @property
    def cip_serial(self) -> int:
        """The CIP serial (UDINT): the inventory serial if it is hex, else its CRC-32."""
        text = self.serial.strip()
        try:
            return int(text, 16) & 0xFFFFFFFF
        except ValueError:
            return zlib.crc32(text.encode())

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


class SimulatedCpu:
    """An M580 CPU: RUN state, operating mode, PID loops, I/O drops, firmware store."""

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
        status = 0x0004 | {R.CpuState.UPDATING: objects.STATUS_FIRMWARE_UPDATE,
                           R.CpuState.RUN: 0x0060, R.CpuState.HALTED: 0x0430}.get(self.state,
                                                                                 0x0070)
        c = self.config
        return objects.CipIdentity(objects.SCHNEIDER_VENDOR_ID, objects.DEVICE_TYPE_PLC,
                                   c.cip_product_code, self.running.major, self.running.minor,
                                   status, c.cip_serial, c.product_name)

    def modbus_identity(self) -> dict[int, str]:
        """FC 43/14 objects: basic, regular, and 0x80 (extended) naming the simulator."""
        self.timeline.settle()
        c = self.config
        return {0x00: "Schneider Electric", 0x01: c.part_number, 0x02: str(self.running),
                0x03: "www.se.com", 0x04: c.product_name, 0x05: c.model or "Modicon M580",
                0x80: objects.SIMULATOR_MARKER}

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
        t.committed, t.started = True, self.timeline.settle()
        self.transfers += 1
        self.transfer_state, self.state = R.TransferState.IN_PROGRESS, R.CpuState.UPDATING
        if "transfer_abort" in self.faults:
            self.timeline.at(t.started + ABORT_AT * TRANSFER_S, self._abort)
        else:
            self.timeline.at(t.started + TRANSFER_S, self._transferred)

    def restore_previous(self) -> None:
        self._refuse_if_busy()
        if self.previous.is_none:
            raise SimRefused(objects.STATE_CONFLICT, "no previous version stored")
        self.restore_state, self.state = R.RestoreState.IN_PROGRESS, R.CpuState.UPDATING
        self.restores += 1
        self.timeline.at(self.clock.now() + RESTORE_S, self._restored)

    def _refuse_if_busy(self) -> None:
        self.timeline.settle()
        if self.state in (R.CpuState.UPDATING, R.CpuState.REBOOTING):
            raise SimRefused(objects.DEVICE_STATE_CONFLICT,
                             f"CPU is {self.state.name.lower()}")

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
        if "wrong_version_after_reboot" not in self.faults:  # that fault: boots the old bank
            self.running = self.staged
        # reboot_hang: the new image is in flash but the CPU never comes up on it
        self.state = R.CpuState.HALTED if "reboot_hang" in self.faults else R.CpuState.RUN

    def _restored(self, due: float) -> None:
        self.running, self.previous, self.staged = self.previous, self.running, NO_VERSION
        self.restore_state, self.state = R.RestoreState.COMPLETE, R.CpuState.RUN


class SimulatedAdapter:
    """An X80 EIO drop adapter: one implicit I/O connection from its CPU at the RPI."""

    def __init__(self, config: DeviceConfig, faults: frozenset[str], clock: SimClock):
        self.config, self.clock = config, clock
        self.reset(faults)

    def reset(self, faults: frozenset[str]) -> None:
        """With these faults from now on (an adapter keeps no other state)."""
        self.faults = frozenset(faults) & ADAPTER_FAULTS

    def connection(self) -> objects.IoConnectionDiagnostics:
        now = self.clock.now()
        rpi_us = round(self.config.rpi_ms * 1000)
        timeouts = int(now // IO_TIMEOUT_EVERY_S) if "io_connection_loss" in self.faults else 0
        return objects.IoConnectionDiagnostics(True, rpi_us, rpi_us, timeouts,
                                               int(now * 1e6 // rpi_us))

    def cip_identity(self) -> objects.CipIdentity:
        c = self.config
        return objects.CipIdentity(objects.SCHNEIDER_VENDOR_ID, objects.DEVICE_TYPE_COMMS_ADAPTER,
                                   c.cip_product_code, c.version.major, c.version.minor,
                                   0x0065, c.cip_serial, c.product_name)
