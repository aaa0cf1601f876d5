"""Independent EtherNet/IP clients read the simulators' identity: pycomm3 and cpppo over TCP
(ListIdentity, Get_Attribute_Single) and over UDP (a ListIdentity datagram to the port)."""
from __future__ import annotations

import socket
import struct

import pytest
from cpppo.server.enip import client as cpppo_client
from cpppo.server.enip.get_attribute import proxy_simple
from pycomm3 import CIPDriver
from pycomm3.packets import ListIdentityRequestPacket

from otpatch.modules.cip import objects
from otpatch.modules.m580.sim import start_simulators
from tests.fixtures.m580.support import adapter_host, cpu_host

TIMEOUT_S = 2.0
HOSTS = ("lab-plc-1", "lab-x80-1")
HEADER = struct.Struct("<HHII8sI")
LIST_IDENTITY, LIST_SERVICES, REGISTER_SESSION = 0x63, 0x04, 0x65


@pytest.fixture(scope="module")
def lab():
    running = start_simulators([cpu_host(), adapter_host()])
    yield running
    running.stop()


def _address(lab, host: str) -> tuple[str, int]:
    address, port = lab.endpoints(host)["enip"].split(":")
    return address, int(port)


def _expected(lab, host: str) -> objects.CipIdentity:
    return lab.device(host).cip_identity()


def _request(lab, host: str, service: int, class_code: int, instance: int = 1,
             attribute: int | None = None):
    """One unconnected request by pycomm3's generic_message; its response packet."""
    with CIPDriver(lab.endpoints(host)["enip"]) as plc:
        plc.socket_timeout = TIMEOUT_S
        tag = plc.generic_message(service=service, class_code=class_code, instance=instance,
                                  attribute=b"" if attribute is None else attribute,
                                  connected=False, unconnected_send=False, route_path=False,
                                  return_response_packet=True)
    return tag.value


def _datagram(lab, host: str, packet: bytes, wait: float = TIMEOUT_S) -> bytes | None:
    """Send one UDP packet to the simulator's EtherNet/IP port; its reply, None if none
    within `wait` seconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        sock.sendto(packet, _address(lab, host))
        try:
            return sock.recv(4096)
        except socket.timeout:
            return None


# -- pycomm3 ------------------------------------------------------------------------------

@pytest.mark.parametrize("host", HOSTS)
def test_pycomm3_lists_identity_over_tcp(lab, host):
    expected = _expected(lab, host)
    listed = CIPDriver.list_identity(lab.endpoints(host)["enip"])
    assert listed["vendor"] == "Schneider Electric"
    assert listed["product_name"] == expected.product_name
    assert listed["serial"] == expected.serial_hex
    assert (listed["revision"]["major"], listed["revision"]["minor"]) == (
        expected.revision_major, expected.revision_minor)


@pytest.mark.parametrize("host", HOSTS)
def test_pycomm3_lists_identity_over_udp(lab, host):
    """The datagram pycomm3's discover() broadcasts to 44818, sent to the simulator's port,
    and its reply parsed by pycomm3."""
    request = ListIdentityRequestPacket()
    reply = _datagram(lab, host, request.build_request(None, 0, b"\x00" * 8, 0))
    assert reply is not None, "no UDP ListIdentity reply"
    identity = request.response_class(request, reply).identity
    assert identity["product_name"] == _expected(lab, host).product_name
    assert identity["vendor"] == "Schneider Electric"
    assert identity["ip_address"] == "127.0.0.1"


@pytest.mark.parametrize("attribute, read", [
    (1, lambda i: struct.pack("<H", i.vendor_id)),
    (2, lambda i: struct.pack("<H", i.device_type)),
    (3, lambda i: struct.pack("<H", i.product_code)),
    (4, lambda i: bytes([i.revision_major, i.revision_minor])),
    (5, lambda i: struct.pack("<H", i.status)),
    (6, lambda i: struct.pack("<I", i.serial)),
    (7, lambda i: objects.short_string(i.product_name)),
], ids=["vendor", "device-type", "product-code", "revision", "status", "serial", "name"])
@pytest.mark.parametrize("host", HOSTS)
def test_pycomm3_gets_each_identity_attribute(lab, host, attribute, read):
    response = _request(lab, host, objects.GET_ATTRIBUTE_SINGLE, objects.IDENTITY,
                        attribute=attribute)
    assert response, response.error
    assert response.data == read(_expected(lab, host))


def test_get_attribute_single_agrees_with_get_attributes_all(lab):
    whole = _request(lab, "lab-plc-1", objects.GET_ATTRIBUTES_ALL, objects.IDENTITY).data
    singles = b"".join(_request(lab, "lab-plc-1", objects.GET_ATTRIBUTE_SINGLE,
                                objects.IDENTITY, attribute=n).data for n in range(1, 9))
    assert singles == whole
    assert objects.CipIdentity.decode(whole).product_name == "BMEP581020 (otpatch simulator)"


@pytest.mark.parametrize("host, class_code, attribute, expected", [
    ("lab-plc-1", objects.FIRMWARE_LOADER, 1, bytes([0])),  # transfer state: idle
    ("lab-plc-1", objects.FIRMWARE_LOADER, 4, bytes(32)),  # no device-computed hash yet
    ("lab-x80-1", objects.CONNECTION_MANAGER, 1, struct.pack("<H", 0)),  # Open Requests
    ("lab-x80-1", objects.CONNECTION_MANAGER, 8, struct.pack("<H", 0)),  # Connection Timeouts
    ("lab-x80-1", objects.SIM_CONTROL, objects.CTRL_MARKER,
     objects.short_string(objects.SIMULATOR_MARKER)),
], ids=["loader-state", "loader-hash", "cm-open-requests", "cm-connection-timeouts",
        "control-marker"])
def test_get_attribute_single_on_the_other_objects(lab, host, class_code, attribute, expected):
    response = _request(lab, host, objects.GET_ATTRIBUTE_SINGLE, class_code,
                        attribute=attribute)
    assert response, response.error
    assert response.data == expected


@pytest.mark.parametrize("service, class_code, instance, attribute, status", [
    (objects.GET_ATTRIBUTE_SINGLE, objects.IDENTITY, 1, 9, objects.ATTRIBUTE_NOT_SUPPORTED),
    (objects.GET_ATTRIBUTE_SINGLE, objects.IDENTITY, 1, None, objects.ATTRIBUTE_NOT_SUPPORTED),
    (objects.GET_ATTRIBUTE_SINGLE, objects.IDENTITY, 2, 1, objects.OBJECT_DOES_NOT_EXIST),
    (objects.SET_ATTRIBUTE_SINGLE, objects.IDENTITY, 1, 7, objects.NOT_SUPPORTED),
    (objects.GET_ATTRIBUTE_SINGLE, objects.FIRMWARE_LOADER, 1, 5,
     objects.ATTRIBUTE_NOT_SUPPORTED),
    (objects.GET_ATTRIBUTE_SINGLE, 0x99, 1, 1, objects.PATH_UNKNOWN),
], ids=["no-attribute-9", "no-attribute-in-path", "no-instance-2", "set-identity",
        "no-loader-attribute-5", "no-class"])
def test_refusals_carry_the_cip_general_status(lab, service, class_code, instance, attribute,
                                               status):
    response = _request(lab, "lab-plc-1", service, class_code, instance, attribute)
    assert not response
    assert response.service_status == status


# -- cpppo --------------------------------------------------------------------------------

@pytest.mark.parametrize("host", HOSTS)
def test_cpppo_lists_identity_over_udp(lab, host):
    address, port = _address(lab, host)
    with cpppo_client.client(host=address, port=port, udp=True, broadcast=False) as conn:
        conn.list_identity(timeout=TIMEOUT_S)
        response, _ = cpppo_client.await_response(conn, timeout=TIMEOUT_S)
    assert response, "no UDP ListIdentity reply"
    identity = response.enip.CIP.list_identity.CPF.item[0].identity_object
    expected = _expected(lab, host)
    assert (identity.vendor_id, identity.device_type) == (243, expected.device_type)
    assert identity.product_name == expected.product_name
    assert (identity.serial_number, identity.sin_port) == (expected.serial, port)


@pytest.mark.parametrize("host", HOSTS)
def test_cpppo_lists_identity_and_gets_attributes_over_tcp(lab, host):
    address, port = _address(lab, host)
    expected = _expected(lab, host)
    via = proxy_simple(address, port=port, timeout=TIMEOUT_S)
    try:
        listed = via.list_identity()
        with via:
            values = list(via.read([("@1/1/7", "SSTRING"), ("@1/1/1", "UINT"),
                                    ("@1/1/4", "USINT"), ("@1/1/6", "UDINT")]))
    finally:
        via.close_gateway()
    assert listed.product_name == expected.product_name and listed.vendor_id == 243
    assert values == [[expected.product_name], [243],
                      [expected.revision_major, expected.revision_minor], [expected.serial]]


# -- the datagrams themselves -------------------------------------------------------------

def test_udp_list_services_answers_and_session_commands_are_dropped(lab):
    services = _datagram(lab, "lab-plc-1", HEADER.pack(LIST_SERVICES, 0, 0, 0, b"ctx-0001", 0))
    assert services is not None
    command, _, _, status, context, _ = HEADER.unpack_from(services)
    assert (command, status, context) == (LIST_SERVICES, 0, b"ctx-0001")
    assert b"Communications" in services
    register = HEADER.pack(REGISTER_SESSION, 4, 0, 0, bytes(8), 0) + struct.pack("<HH", 1, 0)
    assert _datagram(lab, "lab-plc-1", register, wait=0.3) is None  # a session needs TCP
