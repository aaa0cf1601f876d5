"""The M580 / X80 simulators answer real clients: pycomm3 over EtherNet/IP, pymodbus FC 43
and registers; they keep their own clock and bind loopback only."""
from __future__ import annotations

import socket
import struct

import pytest
from pycomm3 import CIPDriver, ClassCode, Services
from pymodbus.client import ModbusTcpClient
from pymodbus.constants import DeviceInformation

from otpatch.modules.contract.errors import InputError
from otpatch.modules.cip import objects
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.sim import start_simulators
from tests.fixtures.m580.support import adapter_host, cpu_host


@pytest.fixture
def lab():
    running = start_simulators([cpu_host(), cpu_host("lab-plc-2", firmware="SV4.30"),
                                adapter_host()])
    yield running
    running.stop()


def _address(lab, host, name):
    address, port = lab.endpoints(host)[name].split(":")
    return address, int(port)


def _modbus(lab, host) -> ModbusTcpClient:
    address, port = _address(lab, host, "modbus")
    client = ModbusTcpClient(address, port=port, timeout=2, retries=0)
    assert client.connect()
    return client


def _identity(lab, host):
    with CIPDriver(lab.endpoints(host)["enip"]) as plc:
        reply = plc.generic_message(service=Services.get_attributes_all,
                                    class_code=ClassCode.identity_object, instance=1,
                                    connected=False, unconnected_send=False, route_path=False)
    assert reply.error is None
    return objects.CipIdentity.decode(reply.value)


@pytest.mark.parametrize("host, device_type, revision, name", [
    ("lab-plc-1", 0x0E, (3, 20), "BMEP581020 (otpatch simulator)"),
    ("lab-plc-2", 0x0E, (4, 30), "BMEP581020 (otpatch simulator)"),
    ("lab-x80-1", 0x0C, (2, 40), "BMECRA31210 (otpatch simulator)"),
], ids=["cpu", "second-cpu", "x80-adapter"])
def test_pycomm3_reads_cip_identity(lab, host, device_type, revision, name):
    ident = _identity(lab, host)
    assert (ident.vendor_id, ident.device_type) == (243, device_type)
    assert (ident.revision_major, ident.revision_minor) == revision
    assert ident.product_name == name
    listed = CIPDriver.list_identity(lab.endpoints(host)["enip"])
    assert listed["vendor"] == "Schneider Electric"
    assert (listed["revision"]["major"], listed["revision"]["minor"]) == revision
    assert listed["product_name"] == name


def test_each_cpu_answers_fc43_with_its_own_identity(lab):
    seen = {}
    for host in ("lab-plc-1", "lab-plc-2"):
        client = _modbus(lab, host)
        rr = client.read_device_information(read_code=DeviceInformation.EXTENDED, device_id=255)
        client.close()
        assert not rr.isError()
        seen[host] = {k: v.decode() for k, v in rr.information.items()}
    assert seen["lab-plc-1"][0x00] == "Schneider Electric"
    assert seen["lab-plc-1"][0x01] == "BMEP581020"
    assert (seen["lab-plc-1"][0x02], seen["lab-plc-2"][0x02]) == ("v03.20", "v04.30")
    assert seen["lab-plc-1"][0x80] == "otpatch simulator"


def test_register_map_reads_status_and_takes_the_mode(lab):
    client = _modbus(lab, "lab-plc-1")
    try:
        regs = client.read_holding_registers(R.STATUS_FIRST, count=R.STATUS_COUNT,
                                             device_id=255).registers
        at = lambda a: regs[a - R.STATUS_FIRST]  # noqa: E731
        assert at(R.CPU_STATE) == R.CpuState.RUN and at(R.RUN_LED) == R.RunLed.SOLID_GREEN
        assert (at(R.RUNNING_VERSION), at(R.RUNNING_VERSION + 1)) == (3, 20)
        assert not client.write_register(R.OPERATING_MODE, R.OperatingMode.MANUAL,
                                         device_id=255).isError()
        assert client.write_register(R.CPU_STATE, R.CpuState.STOP, device_id=255).isError()
        assert client.write_register(R.OPERATING_MODE, 9, device_id=255).isError()
        mode = client.read_holding_registers(R.OPERATING_MODE, count=1, device_id=255)
        assert mode.registers == [R.OperatingMode.MANUAL]
    finally:
        client.close()


def test_control_object_advances_only_that_simulators_clock(lab):
    def clock_ms(host):
        with CIPDriver(lab.endpoints(host)["enip"]) as plc:
            tag = plc.generic_message(service=objects.GET_ATTRIBUTE_SINGLE,
                                      class_code=objects.SIM_CONTROL, instance=1,
                                      attribute=objects.CTRL_CLOCK_MS, connected=False,
                                      unconnected_send=False, route_path=False)
        return struct.unpack("<Q", tag.value)[0]

    with CIPDriver(lab.endpoints("lab-x80-1")["enip"]) as adapter:
        adapter.generic_message(service=objects.SET_ATTRIBUTE_SINGLE,
                                class_code=objects.SIM_CONTROL, instance=1,
                                attribute=objects.CTRL_ADVANCE_MS,
                                request_data=struct.pack("<I", 4 * 3600 * 1000),
                                connected=False, unconnected_send=False, route_path=False)
    assert clock_ms("lab-x80-1") == 4 * 3600 * 1000
    assert clock_ms("lab-plc-1") == 0


def test_stop_closes_every_port():
    lab = start_simulators([cpu_host()])
    address, port = lab.endpoints("lab-plc-1")["enip"].split(":")
    lab.stop()
    with pytest.raises(OSError):
        socket.create_connection((address, int(port)), timeout=1).close()


@pytest.mark.parametrize("host, bind", [
    (cpu_host(modbus="10.0.0.5:502", enip="10.0.0.5:44818"), "127.0.0.1"),
    (cpu_host(), "0.0.0.0"),
], ids=["inventory-address", "bind-all"])
def test_simulators_bind_loopback_only(host, bind):
    with pytest.raises(InputError, match="loopback"):
        start_simulators([host], bind=bind)


def test_a_port_in_use_is_reported_and_nothing_is_left_running():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError):
            start_simulators([cpu_host(modbus="127.0.0.1:0", enip=f"127.0.0.1:{port}")])
