"""The simulated X80 adapter's class-1 connections: its Connection Manager (the connections a
CPU's EIO scanner opens with Forward_Open, counters 1-8) and their cyclic UDP traffic.

`AdapterConnections` is the model, without any network: it decides each Forward_Open and
Forward_Close, keeps the counters, consumes O->T packets and times connections out.
`AdapterIo` is its side on the network: one UDP socket (an ephemeral port, given to the
scanner in the Forward_Open reply's O->T sockaddr item, so it never collides with the
ListIdentity listener on the EtherNet/IP port), a task per connection producing T->O packets
at the T->O RPI, and a watchdog task at the O->T RPI.

The watchdog counts the RPI periods this simulator's event loop really ran, not wall time:
a connection times out after `multiplier` consecutive periods without a packet (CIP's
inactivity timeout, multiplier x RPI). All simulators of a lab share one thread, and the
GIL with the tests; on a loaded 2-core machine (two such processes, each beside a busy one)
the largest gap between packets sent every 10 ms measured 60-220 ms, so a wall-clock x4
(40 ms) timeout fired in healthy labs, while no period-counting watchdog ever missed more
than 2 periods in a row. A starved process is not a lost network; a scanner that stops
sending is caught in 4 periods (about 40 ms at 10 ms)."""
from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from dataclasses import dataclass, field
from typing import Callable

from otpatch.modules.cip import connected as C
from otpatch.modules.cip import objects

LOG = logging.getLogger(__name__)

# The simulator's own assembly instances and sizes (a real drop's come from its EDS / the
# Control Expert configuration): configuration 151, outputs (O->T) 150, inputs (T->O) 100.
CONFIG_POINT, OUTPUT_POINT, INPUT_POINT = 151, 150, 100
DATA_BYTES = 32
O_T_SIZE = 2 + 4 + DATA_BYTES  # CIP sequence count, run/idle header, outputs
T_O_SIZE = 2 + DATA_BYTES  # CIP sequence count, inputs (modeless)
DEFAULT_IO_PORT = 2222  # CIP Vol. 2: where T->O goes when the request names no port
# Identity extended device status (CIP Vol. 1 Table 5-2.4)
FAULTED, NONE_ESTABLISHED, RUN_MODE, ALL_IDLE = 2, 3, 6, 7
OWNED, CONFIGURED = 0x0001, 0x0004  # Identity status bits 0 and 2


class Watchdog:
    """Expires after `periods` consecutive ticks with no feed."""

    def __init__(self, periods: int):
        self.periods, self.missed, self._fed = periods, 0, False

    def feed(self) -> None:
        self._fed = True

    def tick(self) -> bool:
        if self._fed:
            self.missed, self._fed = 0, False
            return False
        self.missed += 1
        return self.missed >= self.periods


async def every(period_s: float, step: Callable[[], bool]) -> None:
    """Call `step` every `period_s` seconds until it returns False; a late loop runs one
    step and carries on from now (no burst of missed steps)."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        due += period_s
        delay = due - loop.time()
        if delay < 0:
            due, delay = loop.time(), 0.0
        await asyncio.sleep(delay)
        if not step():
            return


@dataclass(eq=False)
class IoConnection:
    """One class-1 connection as the adapter holds it."""

    triad: tuple[int, int, int]
    o_t_id: int
    t_o_id: int
    o_t_rpi_us: int
    t_o_rpi_us: int
    consumer: tuple[str, int]  # where its T->O packets go
    watchdog: Watchdog
    run: bool | None = None  # the last O->T run/idle header; None before the first packet
    produced: int = 0
    consumed: int = 0
    owner: bool = True  # exclusive owner of the outputs
    live: bool = field(default=True)


class AdapterConnections:
    """The adapter's Connection Manager: at most one exclusive owner of its outputs."""

    def __init__(self) -> None:
        self.connections: dict[int, IoConnection] = {}
        self._ids = itertools.count(0x00A10001)
        self.reset()

    def reset(self) -> None:
        """Counters as after power-up with the live connections opened once; no fault."""
        self.counts = dict.fromkeys(objects.CM_COUNTERS, 0)
        self.counts["open_requests"] = len(self.connections)
        self.faulted = False

    # -- Forward_Open / Forward_Close ---------------------------------------------------------
    def open(self, data: bytes, peer_ip: str, t_o_sockaddr: bytes | None
             ) -> tuple[IoConnection, bytes]:
        """A Forward_Open: the connection and the success reply data, or CipError."""
        self.counts["open_requests"] += 1
        try:
            request = C.ForwardOpen.decode(data)
            consumer = _consumer(peer_ip, t_o_sockaddr)
        except ValueError as e:
            self.counts["open_format_rejects"] += 1
            raise C.CipError(objects.NOT_ENOUGH_DATA, reason=str(e)) from e
        refused = self._refusal(request)
        if refused:
            self.counts["open_other_rejects"] += 1
            raise request.refusal(refused)
        conn = IoConnection(request.triad, next(self._ids), request.t_o_id,
                            request.o_t_rpi_us, request.t_o_rpi_us, consumer,
                            Watchdog(C.timeout_factor(request.multiplier)))
        self.connections[conn.o_t_id] = conn
        return conn, request.reply(conn.o_t_id, conn.o_t_rpi_us, conn.t_o_rpi_us)

    def _refusal(self, r: C.ForwardOpen) -> int | None:
        """The extended status refusing the request, or None to accept it."""
        if r.trigger != C.CLASS1_CYCLIC:
            return C.TRANSPORT_NOT_SUPPORTED
        try:
            points = C.parse_assembly_path(r.path)
        except ValueError:
            return C.INVALID_PATH
        if points != (CONFIG_POINT, OUTPUT_POINT, INPUT_POINT):
            return C.INVALID_PATH
        if (r.o_t_params & 0x1FF, r.t_o_params & 0x1FF) != (O_T_SIZE, T_O_SIZE):
            return C.INVALID_SIZE
        if (r.o_t_params & 0x6000, r.t_o_params & 0x6000) != (C.POINT_TO_POINT,) * 2 \
                or min(r.o_t_rpi_us, r.t_o_rpi_us) <= 0:
            return C.INVALID_PARAMETER
        if any(c.triad == r.triad for c in self.connections.values()):
            return C.DUPLICATE_OPEN
        if any(c.owner for c in self.connections.values()):
            return C.OWNERSHIP_CONFLICT  # another scanner already owns the outputs
        return None

    def close(self, data: bytes) -> bytes:
        """A Forward_Close: the reply data, or CipError."""
        self.counts["close_requests"] += 1
        try:
            request = C.ForwardClose.decode(data)
        except ValueError as e:
            self.counts["close_format_requests"] += 1
            raise C.CipError(objects.NOT_ENOUGH_DATA, reason=str(e)) from e
        found = next((c for c in self.connections.values() if c.triad == request.triad), None)
        if found is None:
            self.counts["close_other_requests"] += 1
            raise request.refusal(C.CONNECTION_NOT_FOUND)
        self._drop(found)
        return request.reply()

    # -- the cyclic traffic ------------------------------------------------------------------
    def consume(self, packet: C.IoPacket) -> None:
        conn = self.connections.get(packet.connection_id)
        if conn is None:
            return  # a stale packet for a connection closed or timed out
        conn.watchdog.feed()
        conn.consumed += 1
        header = packet.run_idle()
        conn.run = bool(header is not None and header & C.RUN)
        if conn.run:
            self.faulted = False

    def watch(self, conn: IoConnection) -> bool:
        """One O->T period of `conn`'s watchdog; False once it is gone (timed out now)."""
        if not conn.live:
            return False
        if conn.watchdog.tick():
            LOG.debug("connection 0x%08X timed out", conn.o_t_id)
            self.counts["connection_timeouts"] += 1
            self.faulted = True
            self._drop(conn)
            return False
        return True

    def _drop(self, conn: IoConnection) -> None:
        conn.live = False
        self.connections.pop(conn.o_t_id, None)

    # -- what the device shows -----------------------------------------------------------------
    def counters(self) -> objects.ConnectionManagerCounters:
        return objects.ConnectionManagerCounters(
            **{k: v % objects.UINT_RANGE for k, v in self.counts.items()})

    def extended_status(self) -> int:
        """Identity extended device status (CIP Vol. 1 Table 5-2.4)."""
        conns = list(self.connections.values())
        if any(c.run for c in conns):
            return RUN_MODE
        if self.faulted:
            return FAULTED
        return ALL_IDLE if conns else NONE_ESTABLISHED

    def status_word(self) -> int:
        owned = OWNED if any(c.owner for c in self.connections.values()) else 0
        return owned | CONFIGURED | self.extended_status() << 4


def _consumer(peer_ip: str, sockaddr: bytes | None) -> tuple[str, int]:
    """Where T->O packets go: the request's T->O sockaddr item, else the peer on 2222."""
    if sockaddr is None:
        return peer_ip, DEFAULT_IO_PORT
    address, port = C.parse_sockaddr(sockaddr)
    return (peer_ip if address == "0.0.0.0" else address), port


class AdapterIo:
    """The adapter's UDP side: O->T packets in, T->O packets out, a watchdog per connection."""

    def __init__(self, model: AdapterConnections, bind: str):
        self.model, self.bind, self.port = model, bind, 0
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: Datagrams(self._received), local_addr=(self.bind, 0))
        self.port = self._transport.get_extra_info("sockname")[1]

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def sockaddr(self) -> tuple[int, bytes]:
        """The O->T sockaddr info item of a Forward_Open reply: where to send outputs."""
        return C.sockaddr_item(C.SOCKADDR_O_T, self.bind, self.port)

    def opened(self, conn: IoConnection) -> None:
        """Start the connection's production and watchdog (called inside the loop)."""
        for coro in (every(conn.t_o_rpi_us / 1e6, lambda: self._produce(conn)),
                     every(conn.o_t_rpi_us / 1e6, lambda: self.model.watch(conn))):
            task = asyncio.get_running_loop().create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _produce(self, conn: IoConnection) -> bool:
        if not conn.live or self._transport is None:
            return False
        conn.produced += 1
        data = bytes([conn.produced & 0xFF]) * DATA_BYTES
        self._transport.sendto(C.io_packet(conn.t_o_id, conn.produced, conn.produced, data),
                               conn.consumer)
        return True

    def _received(self, packet: bytes, addr: tuple) -> None:
        try:
            self.model.consume(C.IoPacket.decode(packet))
        except (ValueError, struct.error) as e:  # not a class-1 packet: dropped
            LOG.debug("dropped a UDP packet from %s: %s", addr, e)


class Datagrams(asyncio.DatagramProtocol):
    """Every datagram handed to `received(data, addr)`."""

    def __init__(self, received: Callable[[bytes, tuple], None]):
        self.received = received

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        LOG.debug("UDP error: %s", exc)  # e.g. ICMP port unreachable after a peer stopped
