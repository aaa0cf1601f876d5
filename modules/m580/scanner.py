"""The simulated M580 CPU's EIO scanner: it owns its drops' class-1 I/O connections, as a real
CPU does (otpatch never opens one). For each drop it opens a Forward_Open over EtherNet/IP
(TCP) to the adapter simulator, sends O->T packets at the RPI over UDP (run/idle header: run
while the CPU is in RUN, idle in STOP), watches the adapter's T->O packets, and re-opens after
a connection is lost, the way a scanner retries.

Where the packets go on a one-address loopback lab: the scanner consumes T->O on one
ephemeral UDP port, named in each Forward_Open's T->O sockaddr item (0x8001); each adapter
names its own ephemeral O->T port in the reply's O->T sockaddr item (0x8000). A real network
uses UDP 2222 on each device's own address (cip/connected.py cites the items).

The CPU's state, as its model shows it: while it is not running an application (a firmware
being written, rebooting, halted) the scanner closes its connections with Forward_Close, a
clean close that counts no timeout, and opens them again once the CPU is back. Fault
`io_connection_loss` (on the CPU: every drop; on an adapter: that drop): while the CPU runs
a firmware other than the one it was configured with, the scanner stops sending to the drops
concerned; each adapter times out (Connection Timeouts +1), the scanner sees the T->O
traffic stop and re-opens, and the cycle repeats. Once the CPU runs its configured version
again (a rollback) the traffic resumes."""
from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from dataclasses import dataclass, field
from typing import Any

from otpatch.modules.cip import connected as C
from otpatch.modules.cip import objects
from otpatch.modules.m580 import iosim
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.enip_sim import HEADER, REGISTER_SESSION, SEND_RR_DATA

LOG = logging.getLogger(__name__)

IO_FAULT = "io_connection_loss"
MULTIPLIER = 0  # x4, CIP's usual connection timeout multiplier (see iosim.py's watchdog)
RETRY_S = 0.1  # wall seconds between a lost connection and the scanner's next Forward_Open
EXCHANGE_TIMEOUT_S = 1.0  # one explicit request and its reply
_EXPECTED = (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, C.CipError,
             ValueError, KeyError, struct.error)


class EnipClient:
    """Unconnected explicit messages over one TCP session (RegisterSession, SendRRData)."""

    def __init__(self, address: str, port: int):
        self.address, self.port, self.session = address, port, 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> "EnipClient":
        self._reader, self._writer = await asyncio.open_connection(self.address, self.port)
        _, data = await self._exchange(REGISTER_SESSION, struct.pack("<HH", 1, 0))
        return self

    async def request(self, service: int, class_code: int, data: bytes,
                      items: tuple[tuple[int, bytes], ...] = ()
                      ) -> tuple[int, tuple[int, ...], bytes, dict[int, bytes]]:
        """(general status, extended status words, reply data, reply CPF items by type)."""
        cip = bytes([service, 2, 0x20, class_code, 0x24, 1]) + data
        out = [(0x0000, b""), (0x00B2, cip), *items]
        body = struct.pack("<IHH", 0, 0, len(out)) + b"".join(
            struct.pack("<HH", kind, len(d)) + d for kind, d in out)
        _, reply = await self._exchange(SEND_RR_DATA, body)
        found: dict[int, bytes] = {}
        _, _, count = struct.unpack_from("<IHH", reply)
        offset = 8
        for _ in range(count):
            kind, length = struct.unpack_from("<HH", reply, offset)
            found[kind] = reply[offset + 4:offset + 4 + length]
            offset += 4 + length
        message = found.pop(0x00B2)
        status, words = message[2], message[3]
        extended = struct.unpack_from(f"<{words}H", message, 4)
        return status, extended, message[4 + 2 * words:], found

    async def _exchange(self, command: int, body: bytes) -> tuple[int, bytes]:
        self._writer.write(HEADER.pack(command, len(body), self.session, 0, bytes(8), 0) + body)
        await self._writer.drain()
        head = await self._reader.readexactly(HEADER.size)
        _, length, self.session, status, _, _ = HEADER.unpack(head)
        reply = await self._reader.readexactly(length)
        if status:
            raise OSError(f"EtherNet/IP encapsulation status 0x{status:04X}")
        return status, reply

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@dataclass(frozen=True)
class Drop:
    """A drop this scanner owns: the adapter host's name and its simulator."""

    name: str
    adapter: Any  # servers.AdapterSimulator: its EtherNet/IP port, its model's faults
    rpi_us: int


@dataclass(eq=False)
class DropLink:
    drop: Drop
    state: str = "closed"  # closed, opening, open, closing
    retry_at: float = 0.0
    client: EnipClient | None = None
    request: C.ForwardOpen | None = None
    o_t_id: int = 0
    target: tuple[str, int] = ("", 0)
    watchdog: iosim.Watchdog = field(default_factory=lambda: iosim.Watchdog(
        C.timeout_factor(MULTIPLIER)))
    sequence: int = 0


class EioScanner:
    """One CPU's EIO scanner over its drops; started and stopped inside the lab's loop."""

    def __init__(self, cpu: Any, drops: list[Drop], bind: str, faults: frozenset[str]):
        self.cpu, self.bind = cpu, bind
        self.links = [DropLink(d) for d in drops]
        self.reset(faults)
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task] = set()
        self._by_t_o: dict[int, DropLink] = {}
        self._ids = itertools.count(0x00C10001)
        self._serials = itertools.count(1)

    def reset(self, faults: frozenset[str]) -> None:
        self.faults = frozenset(faults) & {IO_FAULT}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: iosim.Datagrams(self._received), local_addr=(self.bind, 0))
        self.port = self._transport.get_extra_info("sockname")[1]
        for link in self.links:
            self._spawn(iosim.every(link.drop.rpi_us / 1e6, lambda link=link: self._step(link)))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for link in self.links:
            if link.client is not None:
                link.client.close()
        if self._transport is not None:
            self._transport.close()

    def drops_in_run_mode(self) -> bool:
        """Every drop's adapter shows an I/O connection in run mode (its model, in process)."""
        return all(link.drop.adapter.model.connections.extended_status() == iosim.RUN_MODE
                   for link in self.links)

    # -- each RPI ------------------------------------------------------------------------------
    def _step(self, link: DropLink) -> bool:
        mode, updated = self._cpu_view()
        now = asyncio.get_running_loop().time()
        if link.state == "open":
            if mode is None:
                link.state = "closing"
                self._spawn(self._close(link))
            elif link.watchdog.tick():  # the adapter stopped producing: it timed us out
                self._forget(link, now)
            elif not (updated and self._loses(link)):
                self._send(link, mode)
        elif link.state == "closed" and mode is not None and now >= link.retry_at:
            link.state = "opening"
            self._spawn(self._open(link))
        return True

    def _cpu_view(self) -> tuple[str | None, bool]:
        """("run" / "idle" / None when no application runs, whether the CPU runs another
        firmware than the one it was configured with), from its registers."""
        regs = self.cpu.registers()
        mode = {R.CpuState.RUN: "run", R.CpuState.STOP: "idle"}.get(regs[R.CPU_STATE])
        configured = self.cpu.config.version
        running = (regs[R.RUNNING_VERSION], regs[R.RUNNING_VERSION + 1])
        return mode, running != (configured.major, configured.minor)

    def _loses(self, link: DropLink) -> bool:
        return IO_FAULT in self.faults or IO_FAULT in link.drop.adapter.model.faults

    def _send(self, link: DropLink, mode: str) -> None:
        link.sequence += 1
        data = bytes([link.sequence & 0xFF]) * iosim.DATA_BYTES
        header = C.RUN if mode == "run" else 0
        self._transport.sendto(C.io_packet(link.o_t_id, link.sequence, link.sequence, data,
                                           header), link.target)

    def _received(self, packet: bytes, addr: tuple) -> None:
        try:
            link = self._by_t_o.get(C.IoPacket.decode(packet).connection_id)
        except (ValueError, struct.error):
            return
        if link is not None and link.state == "open":
            link.watchdog.feed()

    # -- opening and closing -------------------------------------------------------------------
    async def _open(self, link: DropLink) -> None:
        adapter = link.drop.adapter
        request = self._forward_open(link.drop.rpi_us)
        try:
            if link.client is None:
                link.client = await asyncio.wait_for(
                    EnipClient(adapter.bind, adapter.enip.port).open(), EXCHANGE_TIMEOUT_S)
            status, extended, data, items = await asyncio.wait_for(link.client.request(
                objects.FORWARD_OPEN, objects.CONNECTION_MANAGER, request.encode(),
                (C.sockaddr_item(C.SOCKADDR_T_O, self.bind, self.port),)), EXCHANGE_TIMEOUT_S)
            if status:
                raise C.CipError(status, extended)
            reply = C.OpenReply.decode(data)
            target = C.parse_sockaddr(items[C.SOCKADDR_O_T])
        except _EXPECTED as e:
            LOG.debug("%s: Forward_Open failed: %s", link.drop.name, e)
            self._forget(link, asyncio.get_running_loop().time(), drop_client=True)
            return
        link.request, link.o_t_id, link.target = request, reply.o_t_id, target
        link.watchdog = iosim.Watchdog(C.timeout_factor(MULTIPLIER))
        self._by_t_o[request.t_o_id] = link
        link.state = "open"

    def _forward_open(self, rpi_us: int) -> C.ForwardOpen:
        size = C.POINT_TO_POINT | C.SCHEDULED
        return C.ForwardOpen(
            o_t_id=0, t_o_id=next(self._ids), serial=next(self._serials) & 0xFFFF,
            vendor=objects.SCHNEIDER_VENDOR_ID, originator_serial=self.cpu.config.cip_serial,
            multiplier=MULTIPLIER, o_t_rpi_us=rpi_us, o_t_params=size | iosim.O_T_SIZE,
            t_o_rpi_us=rpi_us, t_o_params=size | iosim.T_O_SIZE,
            path=C.assembly_path(iosim.CONFIG_POINT, iosim.OUTPUT_POINT, iosim.INPUT_POINT))

    async def _close(self, link: DropLink) -> None:
        request = link.request
        try:
            if link.client is not None and request is not None:
                await asyncio.wait_for(link.client.request(
                    objects.FORWARD_CLOSE, objects.CONNECTION_MANAGER,
                    C.ForwardClose(*request.triad).encode()), EXCHANGE_TIMEOUT_S)
        except _EXPECTED as e:
            LOG.debug("%s: Forward_Close failed: %s", link.drop.name, e)
            self._forget(link, asyncio.get_running_loop().time(), drop_client=True)
            return
        self._forget(link, 0.0)

    def _forget(self, link: DropLink, now: float, drop_client: bool = False) -> None:
        """The connection is gone; the next Forward_Open after RETRY_S (or at once)."""
        if link.request is not None:
            self._by_t_o.pop(link.request.t_o_id, None)
        link.state, link.request, link.retry_at = "closed", None, now + RETRY_S if now else 0
        if drop_client and link.client is not None:
            link.client.close()
            link.client = None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
