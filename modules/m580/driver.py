"""The M580 driver: identity two ways (Modbus FC 43/14 and the CIP Identity object) and
cross-checked, status from the simulator's register map, operating mode, the firmware
transport, and the simulator's clock.

The identity reads are public (Modbus FC 43/14, CIP Identity class 0x01, cited in
FC43_SOURCE and CIP_IDENTITY_SOURCE) and work on any host. Everything else here is the
otpatch simulator's own interface (its register map, its CIP classes 0x64 and 0x65): before
the first such command the driver confirms, once, that the host answers as a simulator
(simidentity.py), and otherwise refuses with "not available on a real device: ..." having
sent nothing but the identity read."""
from __future__ import annotations

import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from pymodbus.client import ModbusTcpClient
from pymodbus.constants import DeviceInformation
from pymodbus.exceptions import ModbusException

from otpatch.modules.contract.errors import DeviceUnreachable, ModuleFailed
from otpatch.modules.cip import objects
from otpatch.modules.cip.session import CipSession, advance_clock
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580 import simidentity
from otpatch.modules.m580.transport import (FirmwareTransport, SimulatorTransport,
                                            VendorToolTransport)
from otpatch.modules.m580.versions import FirmwareVersion
from otpatch.modules.simulator_only import SimulatorCheck

TIMEOUT_S = 2.0
_FC43_NAMES = {0x00: "vendor", 0x01: "product_code", 0x02: "revision", 0x03: "vendor_url",
               0x04: "product_name", 0x05: "model_name", 0x06: "application_name"}
REGISTER_MAP = ("{purpose} uses the otpatch simulator's register map (CPU state, RUN LED, "
                "operating mode, firmware state), which a real M580 does not publish: there "
                "these go through EcoStruxure Control Expert (UMAS, proprietary, no public "
                "API); m580.identity and m580.verify_version read the public identity")
SIM_CLOCK = "{purpose} passes simulated time (CIP class 0x64), which only a simulator has"

# The public interfaces the identity and health reads use, as the modules cite them.
FC43_SOURCE = ("Modbus Application Protocol Specification V1.1b3, section 6.21 (function 43 / "
               "MEI type 14, Read Device Identification), "
               "https://modbus.org/docs/Modbus_Application_Protocol_V1_1b3.pdf")
CIP_IDENTITY_SOURCE = ("ODVA, The CIP Networks Library Volume 1 (Common Industrial Protocol), "
                       "section 5-2 Identity object (class 0x01, instance 1), Get_Attributes_All"
                       "; attribute 5 Status, Tables 5-2.3 (status bits) and 5-2.4 (extended "
                       "device status), https://www.odva.org/")
ENIP_SOURCE = ("ODVA, The CIP Networks Library Volume 2 (EtherNet/IP Adaptation of CIP), "
               "chapter 2 encapsulation: explicit messaging on TCP 44818, https://www.odva.org/")
CIP_STATUS_CROSS_CHECK = ("OpENer (an open-source EtherNet/IP stack), source/src/cip/"
                          "cipidentity.h: the same status bits and extended status values, "
                          "https://github.com/EIPStackGroup/OpENer")


@dataclass(frozen=True)
class ModbusIdentity:
    """FC 43/14 objects by name; `objects` keeps every object by id (0x80+ included)."""

    vendor: str
    product_code: str
    revision: str
    product_name: str
    model_name: str
    objects: dict[int, str]


@dataclass(frozen=True)
class CpuStatus:
    """The status block of the register map, decoded."""

    state: R.CpuState
    run_led: R.RunLed
    mode: R.OperatingMode
    pid_loops: int
    pid_loops_stable: int
    io_drops: int
    io_drops_healthy: int
    running: FirmwareVersion
    staged: FirmwareVersion
    previous: FirmwareVersion
    transfer: R.TransferState
    transfer_progress: int
    restore: R.RestoreState

    @property
    def running_green(self) -> bool:
        return self.state == R.CpuState.RUN and self.run_led == R.RunLed.SOLID_GREEN

    def fact(self) -> dict[str, Any]:
        return {"state": R.label(self.state), "run_led": R.label(self.run_led),
                "mode": R.label(self.mode), "pid_loops": self.pid_loops,
                "pid_loops_stable": self.pid_loops_stable,
                "pid_stable": self.pid_loops_stable == self.pid_loops,
                "io_drops": self.io_drops, "io_drops_healthy": self.io_drops_healthy,
                "io_healthy": self.io_drops_healthy == self.io_drops,
                "running_version": str(self.running),
                "staged_version": "" if self.staged.is_none else str(self.staged),
                "previous_version": "" if self.previous.is_none else str(self.previous),
                "transfer": R.label(self.transfer), "restore": R.label(self.restore)}


class M580Driver:
    """One M580 CPU (or, for identity, any Schneider EtherNet/IP device) of the inventory."""

    def __init__(self, host: Any, timeout: float = TIMEOUT_S, purpose: str = "this step"):
        """`purpose` names the step in refusals (e.g. "m580.set_mode")."""
        self.host, self.timeout, self.purpose = host, timeout, purpose
        self.simulator_check = SimulatorCheck(host, lambda: simidentity.answer(self))

    # -- Modbus TCP ------------------------------------------------------------------------
    @contextmanager
    def _modbus(self) -> Iterator[ModbusTcpClient]:
        address, port = H.endpoint(self.host, "modbus")
        try:  # asked first with a plain socket: pymodbus logs a refused connect as an ERROR
            socket.create_connection((address, port), timeout=self.timeout).close()
        except OSError as e:
            raise DeviceUnreachable(f"{self.host.name}: no Modbus TCP answer at "
                                    f"{address}:{port}: {e.strerror or e}") from e
        client = ModbusTcpClient(address, port=port, timeout=self.timeout, retries=0)
        try:
            if not client.connect():
                raise DeviceUnreachable(f"{self.host.name}: no Modbus TCP answer at "
                                        f"{address}:{port}")
            yield client
        except ModbusException as e:
            raise DeviceUnreachable(f"{self.host.name}: Modbus TCP {address}:{port} stopped "
                                    f"answering: {e}") from e
        finally:
            client.close()

    def modbus_identity(self, read_code: int = DeviceInformation.REGULAR) -> ModbusIdentity:
        """Read device identification (FC 43/14), following `more follows` (FC43_SOURCE:
        a read of the identification objects, nothing written)."""
        found: dict[int, str] = {}
        with self._modbus() as client:
            object_id = 0
            for _ in range(8):  # a handful of frames at most, even for chatty devices
                rr = client.read_device_information(read_code=read_code, object_id=object_id,
                                                    device_id=0xFF)
                if rr.isError():
                    raise ModuleFailed(f"{self.host.name}: FC 43/14 refused: {rr}")
                found.update({k: v.decode("utf-8", "replace") if isinstance(v, bytes)
                              else str(v) for k, v in rr.information.items()})
                if not rr.more_follows:
                    break
                object_id = rr.next_object_id
        names = {_FC43_NAMES[k]: v for k, v in found.items() if k in _FC43_NAMES}
        return ModbusIdentity(names.get("vendor", ""), names.get("product_code", ""),
                              names.get("revision", ""), names.get("product_name", ""),
                              names.get("model_name", ""), found)

    def _register_map(self) -> None:
        """The register map is the simulator's: on a real CPU the same %MW mean something
        else, and reading them would lie (writing them would be worse). An inventory mark is
        never trusted alone: the host must answer as an otpatch simulator."""
        self.simulator_check.require(REGISTER_MAP.format(purpose=self.purpose))

    def status(self) -> CpuStatus:
        self._register_map()
        with self._modbus() as client:
            rr = client.read_holding_registers(R.STATUS_FIRST, count=R.STATUS_COUNT,
                                               device_id=0xFF)
        if rr.isError():
            raise ModuleFailed(f"{self.host.name}: status registers {R.STATUS_FIRST}.."
                               f"{R.STATUS_FIRST + R.STATUS_COUNT - 1} refused: {rr}")
        r = {R.STATUS_FIRST + i: v for i, v in enumerate(rr.registers)}
        version = lambda base: FirmwareVersion(r[base], r[base + 1])  # noqa: E731
        return CpuStatus(R.CpuState(r[R.CPU_STATE]), R.RunLed(r[R.RUN_LED]),
                         R.OperatingMode(r[R.OPERATING_MODE]), r[R.PID_LOOPS],
                         r[R.PID_LOOPS_STABLE], r[R.IO_DROPS], r[R.IO_DROPS_HEALTHY],
                         version(R.RUNNING_VERSION), version(R.STAGED_VERSION),
                         version(R.PREVIOUS_VERSION), R.TransferState(r[R.TRANSFER_STATE]),
                         r[R.TRANSFER_PROGRESS], R.RestoreState(r[R.RESTORE_STATE]))

    def set_mode(self, mode: R.OperatingMode) -> None:
        self._register_map()
        with self._modbus() as client:
            rr = client.write_register(R.OPERATING_MODE, int(mode), device_id=0xFF)
        if rr.isError():
            raise ModuleFailed(f"{self.host.name}: the CPU refused operating mode "
                               f"{R.label(mode)} (register {R.OPERATING_MODE}): {rr}")

    # -- EtherNet/IP -----------------------------------------------------------------------
    def cip(self) -> CipSession:
        address, port = H.endpoint(self.host, "enip")
        return CipSession(f"{address}:{port}", self.host.name, self.timeout)

    def cip_identity(self) -> objects.CipIdentity:
        """The CIP Identity object by Get_Attributes_All, unconnected explicit messaging
        (CIP_IDENTITY_SOURCE, ENIP_SOURCE): a read, nothing written."""
        with self.cip() as session:
            return session.identity()

    def advance_sim_clock(self, seconds: float) -> None:
        """Let the simulator pass `seconds` of simulated time (poll_until's `advance`)."""
        self.simulator_check.require(SIM_CLOCK.format(purpose=self.purpose))
        with self.cip() as session:
            advance_clock(session, seconds)

    def transport(self) -> FirmwareTransport:
        """The simulator's loader (CIP class 0x65) for a host the inventory marks
        `simulator: true` and that answers as one; the vendor-tool plug point, which refuses
        before sending anything, for anything else."""
        if self.simulator_check.confirmed():
            address, port = H.endpoint(self.host, "enip")
            return SimulatorTransport(f"{address}:{port}", self.host.name, self.timeout)
        return VendorToolTransport(self.host.name)
