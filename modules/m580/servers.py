"""The simulators on the network: an M580 CPU (Modbus TCP server plus EtherNet/IP responder)
and an X80 adapter (EtherNet/IP responder), each around its device model from device.py."""
from __future__ import annotations

import struct
from types import SimpleNamespace
from typing import Callable, Protocol

from pymodbus.constants import DeviceInformation, ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.device import DeviceInformationFactory, ModbusDeviceIdentification
from pymodbus.pdu.mei_message import (ReadDeviceInformationRequest,
                                       ReadDeviceInformationResponse)
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from otpatch.modules.cip import objects
from otpatch.modules.cip.connected import SOCKADDR_T_O
from otpatch.modules.m580 import appobject
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.device import (SimClock, SimRefused, SimulatedAdapter,
                                         SimulatedCpu)
from otpatch.modules.m580.enip_sim import CipReply, CipRequest, EnipResponder, ObjectHandler
from otpatch.modules.m580.iosim import AdapterIo
from otpatch.modules.m580.versions import FirmwareVersion


def control_handler(clock: SimClock) -> ObjectHandler:
    """Class 0x64, the simulator control object: marker, clock, advance, time scale."""
    def handle(req: CipRequest) -> bytes:
        _instance_one(req)
        if req.service == objects.SET_ATTRIBUTE_SINGLE and req.attribute == objects.CTRL_ADVANCE_MS:
            (ms,) = struct.unpack_from("<I", req.data)
            clock.advance(ms / 1000)
            return b""
        if req.service != objects.GET_ATTRIBUTE_SINGLE:
            raise SimRefused(objects.NOT_SUPPORTED, "service")
        values = {objects.CTRL_MARKER: lambda: objects.short_string(objects.SIMULATOR_MARKER),
                  objects.CTRL_CLOCK_MS: lambda: struct.pack("<Q", round(clock.now() * 1000)),
                  objects.CTRL_TIME_SCALE: lambda: struct.pack("<f", clock.time_scale or 0.0)}
        if req.attribute not in values:
            raise SimRefused(objects.ATTRIBUTE_NOT_SUPPORTED, f"attribute {req.attribute}")
        return values[req.attribute]()
    return handle


class ReadableObject(Protocol):
    """An object instance's value as cip/objects.py lays it out."""

    def encode(self) -> bytes: ...
    def attributes(self) -> dict[int, bytes]: ...


READ_SERVICES = (objects.GET_ATTRIBUTES_ALL, objects.GET_ATTRIBUTE_SINGLE)


def read_attributes(req: CipRequest, value: ReadableObject) -> bytes:
    """Get_Attributes_All or Get_Attribute_Single of one instance; 0x14 for an attribute it
    does not have, 0x08 for any other service."""
    if req.service == objects.GET_ATTRIBUTES_ALL:
        return value.encode()
    if req.service != objects.GET_ATTRIBUTE_SINGLE:
        raise SimRefused(objects.NOT_SUPPORTED, f"service 0x{req.service:02X}")
    found = value.attributes().get(req.attribute) if req.attribute is not None else None
    if found is None:
        raise SimRefused(objects.ATTRIBUTE_NOT_SUPPORTED, f"attribute {req.attribute}")
    return found


def identity_handler(identity: Callable[[], objects.CipIdentity]) -> ObjectHandler:
    """Class 0x01, the Identity object, instance 1: attributes 1-8, read only."""
    def handle(req: CipRequest) -> bytes:
        _instance_one(req)
        return read_attributes(req, identity())
    return handle


def loader_handler(cpu: SimulatedCpu) -> ObjectHandler:
    """Class 0x65, the simulator's firmware loader (what Unity Loader / UMAS is for a real
    CPU): begin, chunks, commit, restore previous version, and its status."""
    def handle(req: CipRequest) -> bytes:
        _instance_one(req)
        if req.service in READ_SERVICES:
            return read_attributes(req, cpu.loader_status())
        if req.service == objects.LOADER_BEGIN:
            try:
                size, port, major, minor, _declared = objects.parse_loader_begin(req.data)
            except ValueError as e:
                raise SimRefused(objects.NOT_ENOUGH_DATA, str(e)) from e
            cpu.begin_transfer(size, port, FirmwareVersion(major, minor))
        elif req.service == objects.LOADER_CHUNK:
            (offset,) = struct.unpack_from("<I", req.data)
            cpu.write_chunk(offset, req.data[4:])
        elif req.service == objects.LOADER_COMMIT:
            cpu.commit_transfer()
        elif req.service == objects.LOADER_RESTORE_PREVIOUS:
            cpu.restore_previous()
        else:
            raise SimRefused(objects.NOT_SUPPORTED, "service")
        return b""
    return handle


def application_handler(cpu: SimulatedCpu) -> ObjectHandler:
    """Class 0x66, the simulated CPU's application store (what Control Expert's upload and
    download over UMAS are for a real CPU): status, upload chunks, download begin / chunks /
    commit (the CPU checks the CRC-32 it was told)."""
    def handle(req: CipRequest) -> bytes:
        _instance_one(req)
        if req.service in READ_SERVICES:
            return read_attributes(req, cpu.application_status())
        try:
            if req.service == objects.APP_UPLOAD_CHUNK:
                return cpu.upload(*appobject.parse_upload_request(req.data))
            if req.service == objects.APP_DOWNLOAD_BEGIN:
                cpu.begin_download(*appobject.parse_download_begin(req.data))
            elif req.service == objects.APP_DOWNLOAD_CHUNK:
                (offset,) = struct.unpack_from("<I", req.data)
                cpu.download_chunk(offset, req.data[4:])
            elif req.service == objects.APP_DOWNLOAD_COMMIT:
                cpu.commit_download()
            else:
                raise SimRefused(objects.NOT_SUPPORTED, "service")
        except (ValueError, struct.error) as e:
            raise SimRefused(objects.NOT_ENOUGH_DATA, str(e)) from e
        return b""
    return handle


def hardware_handler(cpu: SimulatedCpu) -> ObjectHandler:
    """Class 0x67, the simulated CPU's hardware: product version, and the spare swap that
    stands for a person replacing the CPU with its registered spare."""
    def handle(req: CipRequest) -> bytes:
        _instance_one(req)
        if req.service in READ_SERVICES:
            return read_attributes(req, cpu.hardware_status())
        if req.service != objects.HW_SWAP_SPARE:
            raise SimRefused(objects.NOT_SUPPORTED, "service")
        cpu.swap_spare()
        return b""
    return handle


def connection_manager_handler(adapter: SimulatedAdapter, io: AdapterIo) -> ObjectHandler:
    """Class 0x06, the Connection Manager, instance 1: counters 1-8 (Get_Attribute_Single,
    Get_Attributes_All), Forward_Open and Forward_Close of class-1 connections (CIP Vol. 1
    sections 3-4.1 and 3-5.4; cip/connected.py)."""
    def handle(req: CipRequest) -> bytes | CipReply:
        _instance_one(req)
        if req.service in READ_SERVICES:
            return read_attributes(req, adapter.connection_manager())
        if req.service == objects.FORWARD_OPEN:
            conn, reply = adapter.connections.open(req.data, req.peer,
                                                   req.items.get(SOCKADDR_T_O))
            io.opened(conn)
            return CipReply(reply, (io.sockaddr(),))
        if req.service == objects.FORWARD_CLOSE:
            return adapter.connections.close(req.data)
        raise SimRefused(objects.NOT_SUPPORTED, f"service 0x{req.service:02X}")
    return handle


def _instance_one(req: CipRequest) -> None:
    if req.instance != 1:
        raise SimRefused(objects.OBJECT_DOES_NOT_EXIST, f"no instance {req.instance}")


class _OwnIdentityRequest(ReadDeviceInformationRequest):
    """FC 43/14 answered from this server's own device. pymodbus answers FC 43 from a
    process-wide control block, so two simulators in one process would share one identity."""

    source: Callable[[], dict[int, str]] = staticmethod(dict)

    async def datastore_update(self, context, device_id: int) -> ModbusPDU:
        if self.read_code not in {c.value for c in DeviceInformation}:
            return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_VALUE)
        control = SimpleNamespace(Identity=ModbusDeviceIdentification(info=self.source()))
        information = DeviceInformationFactory.get(control, self.read_code, self.object_id)
        if self.read_code == DeviceInformation.SPECIFIC and not information.get(self.object_id):
            return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_ADDRESS)
        return ReadDeviceInformationResponse(read_code=self.read_code, information=information,
                                             dev_id=device_id,
                                             transaction_id=self.transaction_id)


def _identity_hook(source: Callable[[], dict[int, str]]):
    """pymodbus' documented trace_pdu hook: swap an incoming FC 43/14 request for one that
    answers from `source`."""
    def trace(sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if sending or not isinstance(pdu, ReadDeviceInformationRequest):
            return pdu
        own = _OwnIdentityRequest(read_code=pdu.read_code, object_id=pdu.object_id,
                                  dev_id=pdu.dev_id, transaction_id=pdu.transaction_id)
        own.source = source
        return own
    return trace


def _register_blocks() -> list[SimData]:
    """The status block, read-only except the registers in WRITABLE."""
    blocks, first = [], R.STATUS_FIRST
    end = R.STATUS_FIRST + R.STATUS_COUNT
    for address in sorted(R.WRITABLE) + [end]:
        if address > first:
            blocks.append(SimData(first, count=address - first, values=0,
                                  datatype=DataType.REGISTERS, readonly=True))
        if address < end:
            blocks.append(SimData(address, values=0, datatype=DataType.REGISTERS))
        first = address + 1
    return blocks


def _register_action(cpu: SimulatedCpu):
    """Every register access goes through the model: writes become commands, reads show the
    model's state at that simulated instant."""
    async def action(function_code: int, start: int, address: int, count: int,
                     registers: list[int], values: list[int] | list[bool] | None
                     ) -> ExcCodes | None:
        for offset, value in enumerate(values or ()):
            if address + offset == R.OPERATING_MODE and not cpu.set_mode(int(value)):
                return ExcCodes.ILLEGAL_VALUE
        for index, value in cpu.registers().items():
            if 0 <= index - start < len(registers):
                registers[index - start] = value
        return None
    return action


class CpuSimulator:
    """One simulated M580 CPU on the network."""

    def __init__(self, cpu: SimulatedCpu, bind: str, modbus_port: int, enip_port: int):
        self.model, self.bind, self.modbus_port = cpu, bind, modbus_port
        handlers = {objects.IDENTITY: identity_handler(cpu.cip_identity),
                    objects.SIM_CONTROL: control_handler(cpu.clock),
                    objects.FIRMWARE_LOADER: loader_handler(cpu),
                    objects.APPLICATION_STORE: application_handler(cpu),
                    objects.CPU_HARDWARE: hardware_handler(cpu)}
        self.enip = EnipResponder(cpu.cip_identity, handlers, bind, enip_port)
        self._modbus: ModbusTcpServer | None = None

    async def start(self) -> None:
        device = SimDevice(id=0, simdata=_register_blocks(), action=_register_action(self.model))
        self._modbus = ModbusTcpServer(device, address=(self.bind, self.modbus_port),
                                       trace_pdu=_identity_hook(self.model.modbus_identity))
        try:
            await self._modbus.serve_forever(background=True)
        except RuntimeError as e:
            raise OSError(f"{self.model.config.name}: cannot listen for Modbus on "
                          f"{self.bind}:{self.modbus_port}") from e
        self.modbus_port = self._modbus.transport.sockets[0].getsockname()[1]
        await self.enip.start()

    async def stop(self) -> None:
        if self._modbus is not None:
            await self._modbus.shutdown()
        await self.enip.stop()

    def endpoints(self) -> dict[str, str]:
        return {"modbus": f"{self.bind}:{self.modbus_port}",
                "enip": f"{self.bind}:{self.enip.port}"}


class AdapterSimulator:
    """One simulated X80 EIO drop adapter on the network: EtherNet/IP explicit messaging,
    and the UDP side of the class-1 connections its CPU's scanner opens (iosim.AdapterIo)."""

    def __init__(self, adapter: SimulatedAdapter, bind: str, enip_port: int):
        self.model, self.bind = adapter, bind
        self.io = AdapterIo(adapter.connections, bind)
        handlers = {objects.IDENTITY: identity_handler(adapter.cip_identity),
                    objects.SIM_CONTROL: control_handler(adapter.clock),
                    objects.CONNECTION_MANAGER: connection_manager_handler(adapter, self.io)}
        self.enip = EnipResponder(adapter.cip_identity, handlers, bind, enip_port)

    async def start(self) -> None:
        await self.io.start()
        await self.enip.start()

    async def stop(self) -> None:
        await self.enip.stop()
        await self.io.stop()

    def endpoints(self) -> dict[str, str]:
        return {"enip": f"{self.bind}:{self.enip.port}"}
