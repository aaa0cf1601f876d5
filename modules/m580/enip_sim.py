"""An asyncio EtherNet/IP responder: over TCP the encapsulation commands pycomm3 and other
explicit-messaging clients use (RegisterSession, UnRegisterSession, ListIdentity, ListServices,
SendRRData) and unconnected CIP requests dispatched to the simulator's objects by class; over
UDP on the same port, ListIdentity and ListServices (what discovery tools send). A request's
other common-packet-format items (the sockaddr info items of a Forward_Open) reach its
handler, and a handler's reply may carry items of its own (CipReply) or an extended status
(cip/connected.py CipError)."""
from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from otpatch.modules.cip import objects
from otpatch.modules.cip.connected import CipError
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
    items: Mapping[int, bytes] = field(default_factory=dict)  # other CPF items, by type
    peer: str = ""  # the client's IP address


@dataclass(frozen=True)
class CipReply:
    """Reply data and the CPF items to send after it (a Forward_Open's O->T sockaddr)."""

    data: bytes
    items: tuple[tuple[int, bytes], ...] = ()


# reply data (or a CipReply), or raises SimRefused / CipError
ObjectHandler = Callable[[CipRequest], "bytes | CipReply"]


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


FREE_PORT_ATTEMPTS = 20  # system-chosen TCP ports whose UDP twin was taken, at most


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
        """TCP and UDP on one port number. On a system-chosen port (0) the TCP port is free
        but the same number may be held over UDP by another program: choose again."""
        chosen = self.port == 0
        for attempt in range(FREE_PORT_ATTEMPTS if chosen else 1):
            self._server = await asyncio.start_server(self._serve, self.bind,
                                                      0 if chosen else self.port)
            self.port = self._server.sockets[0].getsockname()[1]
            try:
                await self._listen_udp()
                return
            except OSError:
                if not chosen or attempt == FREE_PORT_ATTEMPTS - 1:
                    raise
                self.port = 0

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
                reply = self._answer(command, sess, session, body, _peer(writer))
                if reply is not None:
                    status, data = reply
                    writer.write(HEADER.pack(command, len(data), sess, status, context, 0) + data)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            self._clients.pop(writer, None)
            writer.close()

    def _answer(self, command: int, sess: int, session: int, body: bytes, peer: str = ""
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
        return self._send_rr_data(body, peer)

    def _listing(self, command: int) -> tuple[int, bytes]:
        """ListIdentity or ListServices reply data: the same over TCP and UDP."""
        if command == LIST_IDENTITY:
            return 0, objects.list_identity_item(self.identity(), self.bind, self.port)
        name = b"Communications\x00\x00"
        item = struct.pack("<HH", 1, 0x0120) + name
        return 0, struct.pack("<HHH", 1, 0x0100, len(item)) + item

    def _send_rr_data(self, body: bytes, peer: str = "") -> tuple[int, bytes]:
        try:
            message, items = _cpf_items(body)
        except (ValueError, struct.error):
            return INVALID_LENGTH, b""
        service = message[0] if message else 0
        extended: tuple[int, ...] = ()
        try:
            request = parse_request(message)
            handler = self.handlers.get(request.class_code)
            if handler is None:
                raise SimRefused(objects.PATH_UNKNOWN, f"no class 0x{request.class_code:X}")
            answer = handler(replace(request, items=items, peer=peer))
            status, reply = objects.SUCCESS, (answer if isinstance(answer, CipReply)
                                              else CipReply(answer))
        except CipError as e:
            LOG.debug("refused service 0x%02X: %s", service, e)
            status, extended, reply = e.status, e.extended, CipReply(e.data)
        except SimRefused as e:
            LOG.debug("refused service 0x%02X: %s", service, e)
            status, reply = e.status, CipReply(b"")
        except (IndexError, struct.error):
            status, reply = objects.NOT_ENOUGH_DATA, CipReply(b"")
        except ValueError:
            status, reply = objects.INVALID_VALUE, CipReply(b"")
        cip = (bytes([service | 0x80, 0, status, len(extended)])
               + b"".join(struct.pack("<H", w) for w in extended) + reply.data)
        out = [(NULL_ADDRESS, b""), (UNCONNECTED_DATA, cip), *reply.items]
        return 0, struct.pack("<IHH", 0, 0, len(out)) + b"".join(
            struct.pack("<HH", kind, len(data)) + data for kind, data in out)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if peer else ""


def _cpf_items(body: bytes) -> tuple[bytes, dict[int, bytes]]:
    """The unconnected data item of a SendRRData common packet format, and its other
    items (not the address item) by type."""
    _, _, count = struct.unpack_from("<IHH", body)
    offset, message, items = 8, None, {}
    for _ in range(count):
        kind, length = struct.unpack_from("<HH", body, offset)
        offset += 4
        if kind == UNCONNECTED_DATA:
            message = body[offset:offset + length]
        elif kind != NULL_ADDRESS:
            items[kind] = body[offset:offset + length]
        offset += length
    if message is None:
        raise ValueError("no unconnected data item")
    return message, items


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
