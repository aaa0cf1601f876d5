"""An asyncio EtherNet/IP responder: over TCP the encapsulation commands pycomm3 and other
explicit-messaging clients use (RegisterSession, UnRegisterSession, ListIdentity, ListServices,
SendRRData) and unconnected CIP requests dispatched to the simulator's objects by class; over
UDP on the same port, ListIdentity and ListServices (what discovery tools send)."""
from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from dataclasses import dataclass
from typing import Callable, Mapping

from otpatch.modules.cip import objects
from otpatch.modules.m580.device import SimRefused

LOG = logging.getLogger(__name__)

HEADER = struct.Struct("<HHII8sI")  # command, length, session, status, context, options
NOP, LIST_SERVICES, LIST_IDENTITY = 0x0000, 0x0004, 0x0063
REGISTER_SESSION, UNREGISTER_SESSION, SEND_RR_DATA = 0x0065, 0x0066, 0x006F
INVALID_COMMAND, INVALID_SESSION, INVALID_LENGTH = 0x0001, 0x0064, 0x0065
NULL_ADDRESS, UNCONNECTED_DATA = 0x0000, 0x00B2
UDP_COMMANDS = frozenset({LIST_IDENTITY, LIST_SERVICES})  # the others need a TCP session


@dataclass(frozen=True)
class CipRequest:
    service: int
    class_code: int
    instance: int
    attribute: int | None
    data: bytes


ObjectHandler = Callable[[CipRequest], bytes]  # reply data, or raises SimRefused


def parse_request(message: bytes) -> CipRequest:
    """Service, logical path (class, instance, attribute: 8 or 16 bit) and request data."""
    service, words = message[0], message[1]
    path, data = message[2:2 + 2 * words], message[2 + 2 * words:]
    found: dict[int, int] = {}
    i = 0
    while i < len(path):
        seg = path[i]
        kind, wide = seg & 0xFC, seg & 0x03
        if wide == 0:
            found[kind], i = path[i + 1], i + 2
        elif wide == 1:
            found[kind], i = struct.unpack_from("<H", path, i + 2)[0], i + 4
        else:
            raise SimRefused(objects.PATH_UNKNOWN, f"path segment 0x{seg:02X}")
    if 0x20 not in found:
        raise SimRefused(objects.PATH_UNKNOWN, "no class in path")
    return CipRequest(service, found[0x20], found.get(0x24, 0), found.get(0x30), data)


class EnipResponder:
    """One TCP listener answering as one EtherNet/IP device."""

    def __init__(self, identity: Callable[[], objects.CipIdentity],
                 handlers: Mapping[int, ObjectHandler], bind: str, port: int):
        self.identity, self.handlers = identity, dict(handlers)
        self.bind, self.port = bind, port
        self._server: asyncio.base_events.Server | None = None
        self._sessions = itertools.count(0x1001)
        self._clients: dict[asyncio.StreamWriter, asyncio.Task] = {}
        self._datagrams: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.bind, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        await self._listen_udp()

    async def _listen_udp(self) -> None:
        """UDP on the TCP listener's port (the spec's 44818 for both)."""
        loop = asyncio.get_running_loop()
        try:
            self._datagrams, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self._answer_datagram), local_addr=(self.bind, self.port))
        except OSError as e:
            await self.stop()
            raise OSError(f"cannot listen for EtherNet/IP over UDP on {self.bind}:{self.port}: "
                          f"{e}") from e

    def _answer_datagram(self, packet: bytes) -> bytes | None:
        """The reply to one UDP encapsulation packet; None to drop it (malformed, or a command
        that UDP does not carry)."""
        if len(packet) < HEADER.size:
            return None
        command, length, sess, _, context, _ = HEADER.unpack_from(packet)
        if command not in UDP_COMMANDS or len(packet) < HEADER.size + length:
            LOG.debug("dropped a UDP packet, command 0x%04X", command)
            return None
        status, data = self._listing(command)
        return HEADER.pack(command, len(data), sess, status, context, 0) + data

    async def stop(self) -> None:
        if self._datagrams is not None:
            self._datagrams.close()
            self._datagrams = None
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            # before 3.12 wait_closed does not wait for the connections' own tasks
            await asyncio.gather(*self._clients.values(), return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = 0
        self._clients[writer] = asyncio.current_task()
        try:
            while True:
                head = await reader.readexactly(HEADER.size)
                command, length, sess, _, context, _ = HEADER.unpack(head)
                body = await reader.readexactly(length)
                if command == UNREGISTER_SESSION:
                    break
                if command == REGISTER_SESSION:
                    session = next(self._sessions)
                    sess = session
                reply = self._answer(command, sess, session, body)
                if reply is not None:
                    status, data = reply
                    writer.write(HEADER.pack(command, len(data), sess, status, context, 0) + data)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            self._clients.pop(writer, None)
            writer.close()

    def _answer(self, command: int, sess: int, session: int, body: bytes
                ) -> tuple[int, bytes] | None:
        if command == NOP:
            return None
        if command == REGISTER_SESSION:
            return 0, struct.pack("<HH", 1, 0)
        if command in UDP_COMMANDS:
            return self._listing(command)
        if command != SEND_RR_DATA:
            return INVALID_COMMAND, b""
        if not session or sess != session:
            return INVALID_SESSION, b""
        return self._send_rr_data(body)

    def _listing(self, command: int) -> tuple[int, bytes]:
        """ListIdentity or ListServices reply data: the same over TCP and UDP."""
        if command == LIST_IDENTITY:
            return 0, objects.list_identity_item(self.identity(), self.bind, self.port)
        name = b"Communications\x00\x00"
        item = struct.pack("<HH", 1, 0x0120) + name
        return 0, struct.pack("<HHH", 1, 0x0100, len(item)) + item

    def _send_rr_data(self, body: bytes) -> tuple[int, bytes]:
        try:
            message = _unconnected_item(body)
        except (ValueError, struct.error):
            return INVALID_LENGTH, b""
        service = message[0] if message else 0
        try:
            request = parse_request(message)
            handler = self.handlers.get(request.class_code)
            if handler is None:
                raise SimRefused(objects.PATH_UNKNOWN, f"no class 0x{request.class_code:X}")
            status, data = objects.SUCCESS, handler(request)
        except SimRefused as e:
            LOG.debug("refused service 0x%02X: %s", service, e)
            status, data = e.status, b""
        except (IndexError, struct.error):
            status, data = objects.NOT_ENOUGH_DATA, b""
        except ValueError:
            status, data = objects.INVALID_VALUE, b""
        cip = bytes([service | 0x80, 0, status, 0]) + data
        cpf = struct.pack("<IHH", 0, 0, 2) + struct.pack("<HH", NULL_ADDRESS, 0)
        return 0, cpf + struct.pack("<HH", UNCONNECTED_DATA, len(cip)) + cip


def _unconnected_item(body: bytes) -> bytes:
    """The unconnected data item of a SendRRData common packet format."""
    _, _, count = struct.unpack_from("<IHH", body)
    offset = 8
    for _ in range(count):
        kind, length = struct.unpack_from("<HH", body, offset)
        offset += 4
        if kind == UNCONNECTED_DATA:
            return body[offset:offset + length]
        offset += length
    raise ValueError("no unconnected data item")


class _Datagrams(asyncio.DatagramProtocol):
    """Each UDP request answered to its sender, unicast (the simulators bind loopback only,
    so there is no broadcast to spread replies over: no MaxResponseDelay)."""

    def __init__(self, answer: Callable[[bytes], bytes | None]):
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        reply = self.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
