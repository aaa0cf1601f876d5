"""Class-1 (implicit I/O) connections in bytes: the Forward_Open and Forward_Close requests and
replies of the Connection Manager, the sockaddr info items that say where each side's UDP
packets go, and the cyclic UDP packets themselves. The one place their bytes are packed and
unpacked; the simulators use it on both sides (scanner and adapter). otpatch's check never
opens a connection: a CPU's EIO scanner owns its drops' connections.

Sources: CIP Vol. 1 section 3-5.4 (Forward_Open 0x54, Forward_Close 0x4E; connection
timeout multiplier 0 = x4 ... 7 = x512; network connection parameters) and its extended
status table (as Wireshark's packet-cip.c `cip_cm_ext_st_vals` lists it); the request layout
as pycomm3 (cip_driver.py `_forward_open`, `_forward_close`) and cpppo (server/enip/device.py
`Connection_Manager`) build and parse it; CIP Vol. 2 section 2-6 common packet format: the
sockaddr info items 0x8000 (O->T, in the reply: where the target consumes) and 0x8001 (T->O,
in the request: where the originator consumes), as OpENer's cipioconnection.c
`OpenConsumingPointToPointConnection` / `OpenProducingPointToPointConnection` use them, and a
class-1 packet: item count, sequenced address item 0x8002 (connection id, encapsulation
sequence number), connected data item 0x00B1 (16-bit CIP sequence count, for O->T the 32-bit
run/idle header, the data)."""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

SOCKADDR_O_T, SOCKADDR_T_O = 0x8000, 0x8001
SEQUENCED_ADDRESS, CONNECTED_DATA = 0x8002, 0x00B1
CONNECTION_FAILURE = 0x01  # general status: the extended status word says why
# CIP Vol. 1 Table 3-5.33 (extended status of a Connection Manager failure)
DUPLICATE_OPEN, TRANSPORT_NOT_SUPPORTED, OWNERSHIP_CONFLICT = 0x0100, 0x0103, 0x0106
CONNECTION_NOT_FOUND, INVALID_PARAMETER, INVALID_SIZE = 0x0107, 0x0108, 0x0109
INVALID_PATH = 0x0117
EXTENDED_TEXT = {DUPLICATE_OPEN: "connection in use or duplicate Forward_Open",
                 TRANSPORT_NOT_SUPPORTED: "transport class and trigger not supported",
                 OWNERSHIP_CONFLICT: "ownership conflict",
                 CONNECTION_NOT_FOUND: "target connection not found",
                 INVALID_PARAMETER: "invalid network connection parameter",
                 INVALID_SIZE: "invalid connection size",
                 INVALID_PATH: "invalid produced or consumed application path"}
CLASS1_CYCLIC = 0x01  # transport class/trigger: client, cyclic, class 1
POINT_TO_POINT = 0x4000  # network connection parameters, bits 14-13 = 10
SCHEDULED = 0x0800  # network connection parameters, priority bits 11-10 = 10
RUN = 0x00000001  # run/idle header: bit 0 set, the originator is in run mode
_OPEN = struct.Struct("<BBIIHHIB3xIHIHBB")
_OPEN_REPLY = struct.Struct("<IIHHIIIBB")
_CLOSE = struct.Struct("<BBHHIBB")
_TRIAD_REPLY = struct.Struct("<HHIBB")


class CipError(Exception):
    """A CIP error reply: general status, extended status words, and its reply data (a
    Forward_Open refusal echoes the connection triad)."""

    def __init__(self, status: int, extended: tuple[int, ...] = (), data: bytes = b"",
                 reason: str = ""):
        super().__init__(reason or EXTENDED_TEXT.get(extended[0] if extended else -1,
                                                     f"general status 0x{status:02X}"))
        self.status, self.extended, self.data = status, extended, data


def timeout_factor(multiplier: int) -> int:
    """The connection timeout multiplier's value (0 -> 4, 1 -> 8, ... 7 -> 512)."""
    return 4 << multiplier


@dataclass(frozen=True)
class ForwardOpen:
    """A Forward_Open request (service 0x54 on class 0x06 instance 1): the triad (connection
    serial, originator vendor id and serial) names the connection."""

    o_t_id: int
    t_o_id: int
    serial: int
    vendor: int
    originator_serial: int
    multiplier: int  # encoded: 0 is x4
    o_t_rpi_us: int
    o_t_params: int
    t_o_rpi_us: int
    t_o_params: int
    path: bytes
    trigger: int = CLASS1_CYCLIC
    priority_tick: int = 0x0A
    timeout_ticks: int = 0x0E

    @property
    def triad(self) -> tuple[int, int, int]:
        return self.serial, self.vendor, self.originator_serial

    def encode(self) -> bytes:
        words = (len(self.path) + 1) // 2
        return _OPEN.pack(self.priority_tick, self.timeout_ticks, self.o_t_id, self.t_o_id,
                          self.serial, self.vendor, self.originator_serial, self.multiplier,
                          self.o_t_rpi_us, self.o_t_params, self.t_o_rpi_us, self.t_o_params,
                          self.trigger, words) + self.path.ljust(2 * words, b"\x00")

    @classmethod
    def decode(cls, data: bytes) -> "ForwardOpen":
        """ValueError when the request is malformed (too short, path cut off)."""
        if len(data) < _OPEN.size:
            raise ValueError(f"Forward_Open of {len(data)} bytes, at least {_OPEN.size} needed")
        (tick, ticks, o_t, t_o, serial, vendor, orig, mult, o_t_rpi, o_t_params, t_o_rpi,
         t_o_params, trigger, words) = _OPEN.unpack_from(data)
        path = data[_OPEN.size:_OPEN.size + 2 * words]
        if len(path) != 2 * words:
            raise ValueError("Forward_Open connection path cut off")
        return cls(o_t, t_o, serial, vendor, orig, mult, o_t_rpi, o_t_params, t_o_rpi,
                   t_o_params, path, trigger, tick, ticks)

    def reply(self, o_t_id: int, o_t_api_us: int, t_o_api_us: int) -> bytes:
        """The success reply data: both connection ids, the triad, the actual intervals."""
        return _OPEN_REPLY.pack(o_t_id, self.t_o_id, *self.triad, o_t_api_us, t_o_api_us, 0, 0)

    def refusal(self, extended: int) -> CipError:
        """The error reply for this request (general status 0x01 with `extended`)."""
        return CipError(CONNECTION_FAILURE, (extended,), _TRIAD_REPLY.pack(*self.triad, 0, 0))


@dataclass(frozen=True)
class OpenReply:
    o_t_id: int
    t_o_id: int
    o_t_api_us: int
    t_o_api_us: int

    @classmethod
    def decode(cls, data: bytes) -> "OpenReply":
        o_t, t_o, _, _, _, o_t_api, t_o_api, _, _ = _OPEN_REPLY.unpack_from(data)
        return cls(o_t, t_o, o_t_api, t_o_api)


@dataclass(frozen=True)
class ForwardClose:
    """A Forward_Close request (service 0x4E): the triad of the connection to close."""

    serial: int
    vendor: int
    originator_serial: int
    path: bytes = b""

    @property
    def triad(self) -> tuple[int, int, int]:
        return self.serial, self.vendor, self.originator_serial

    def encode(self) -> bytes:
        words = (len(self.path) + 1) // 2
        return (_CLOSE.pack(0x0A, 0x0E, *self.triad, words, 0)
                + self.path.ljust(2 * words, b"\x00"))

    @classmethod
    def decode(cls, data: bytes) -> "ForwardClose":
        if len(data) < _CLOSE.size:
            raise ValueError(f"Forward_Close of {len(data)} bytes, at least {_CLOSE.size} needed")
        _, _, serial, vendor, orig, words, _ = _CLOSE.unpack_from(data)
        return cls(serial, vendor, orig, data[_CLOSE.size:_CLOSE.size + 2 * words])

    def reply(self) -> bytes:
        return _TRIAD_REPLY.pack(*self.triad, 0, 0)

    def refusal(self, extended: int) -> CipError:
        return CipError(CONNECTION_FAILURE, (extended,), _TRIAD_REPLY.pack(*self.triad, 0, 0))


def assembly_path(config: int, consumed: int, produced: int) -> bytes:
    """The connection path to an adapter's assemblies (class 0x04): configuration instance,
    then the O->T and T->O connection points."""
    return bytes([0x20, 0x04, 0x24, config, 0x2C, consumed, 0x2C, produced])


def parse_assembly_path(path: bytes) -> tuple[int, int, int]:
    """(configuration, O->T point, T->O point); ValueError for any other path."""
    if len(path) < 8 or path[0:2] != b"\x20\x04" or path[2] != 0x24 or path[4] != 0x2C \
            or path[6] != 0x2C:
        raise ValueError("not an assembly connection path")
    return path[3], path[5], path[7]


def sockaddr_item(kind: int, address: str, port: int) -> tuple[int, bytes]:
    """A sockaddr info item (type 0x8000 or 0x8001): struct sockaddr_in, big-endian."""
    ip = int(ipaddress.IPv4Address(address))
    return kind, struct.pack(">hHI8x", 2, port, ip)


def parse_sockaddr(body: bytes) -> tuple[str, int]:
    """(address, port) from a sockaddr info item's 16 bytes; ValueError if malformed."""
    if len(body) != 16:
        raise ValueError(f"sockaddr info item of {len(body)} bytes, 16 expected")
    _, port, ip = struct.unpack_from(">hHI", body)
    return str(ipaddress.IPv4Address(ip)), port


def io_packet(connection_id: int, sequence: int, count: int, data: bytes,
              header: int | None = None) -> bytes:
    """One class-1 UDP packet; `header` is the 32-bit run/idle header (O->T), or None."""
    payload = struct.pack("<H", count & 0xFFFF)
    if header is not None:
        payload += struct.pack("<I", header)
    payload += data
    return (struct.pack("<HHHII", 2, SEQUENCED_ADDRESS, 8, connection_id,
                        sequence & 0xFFFFFFFF)
            + struct.pack("<HH", CONNECTED_DATA, len(payload)) + payload)


@dataclass(frozen=True)
class IoPacket:
    connection_id: int
    sequence: int
    payload: bytes  # the connected data item: CIP sequence count, header, data

    @classmethod
    def decode(cls, packet: bytes) -> "IoPacket":
        """ValueError for anything that is not a sequenced class-1 packet."""
        count, kind, length, connection_id, sequence = struct.unpack_from("<HHHII", packet)
        if count != 2 or kind != SEQUENCED_ADDRESS or length != 8:
            raise ValueError("not a class-1 packet")
        kind, length = struct.unpack_from("<HH", packet, 14)
        if kind != CONNECTED_DATA or len(packet) < 18 + length:
            raise ValueError("no connected data item")
        return cls(connection_id, sequence, packet[18:18 + length])

    def run_idle(self) -> int | None:
        """The run/idle header of an O->T packet (after the 16-bit sequence count)."""
        if len(self.payload) < 6:
            return None
        return struct.unpack_from("<I", self.payload, 2)[0]
