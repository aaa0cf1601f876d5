"""The simulators' class-1 I/O connections, over the network: the CPU's EIO scanner opens a
Forward_Open to each of its drops and exchanges UDP packets at the RPI; each adapter keeps
its Connection Manager counters (read here by pycomm3 and cpppo, independent clients) and
shows its connections in its Identity status. io_connection_loss after an update times the
drops out; a rollback heals them; a healthy lab never counts a timeout."""
from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from cpppo.server.enip.get_attribute import proxy_simple

from otpatch.modules.cip import connected as C
from otpatch.modules.cip import objects
from otpatch.modules.m580 import iosim
from otpatch.modules.m580.scanner import EnipClient
from otpatch.modules.m580.sim import start_simulators
from tests.fixtures.cip.support import (FAULTED, NONE_ESTABLISHED, RUN_MODE, begin_update,
                                        counters, extended_status, finish, roll_back,
                                        scanned, update, wait_until)
from tests.fixtures.m580.support import adapter_host, cpu_host

ZERO = dict.fromkeys(objects.CM_COUNTERS, 0)


@pytest.fixture
def lab():
    """lab(hosts, faults) -> a running lab, stopped when the test ends."""
    labs = []

    def start(hosts=(cpu_host(), scanned()), faults=()):
        labs.append(start_simulators(list(hosts), faults=faults))
        return labs[-1]
    yield start
    for running in labs:
        running.stop()


def _enip(lab, host: str) -> tuple[str, int]:
    address, port = lab.endpoints(host)["enip"].split(":")
    return address, int(port)


def _forward_open(serial: int = 7, path: bytes | None = None, o_t_size: int = iosim.O_T_SIZE
                  ) -> C.ForwardOpen:
    params = C.POINT_TO_POINT | C.SCHEDULED
    return C.ForwardOpen(0, 0x5151, serial, 1, 0x1234, 0, 10_000, params | o_t_size, 10_000,
                         params | iosim.T_O_SIZE, path if path is not None else
                         C.assembly_path(iosim.CONFIG_POINT, iosim.OUTPUT_POINT,
                                         iosim.INPUT_POINT))


def _ask(lab, host: str, service: int, data: bytes, items=()):
    """One Connection Manager request by a client of the test's own; (status, extended,
    data, items)."""
    async def ask():
        client = await EnipClient(*_enip(lab, host)).open()
        try:
            return await client.request(service, objects.CONNECTION_MANAGER, data, items)
        finally:
            client.close()
    return asyncio.run(ask())


def test_a_healthy_lab_counts_one_open_and_no_timeout(lab):
    running = lab()
    assert counters(running, "lab-x80-1") == {**ZERO, "open_requests": 1}
    assert extended_status(running, "lab-x80-1") == RUN_MODE
    time.sleep(0.5)  # 50 RPIs of traffic each way
    assert counters(running, "lab-x80-1") == {**ZERO, "open_requests": 1}


def test_cpppo_reads_the_same_counters(lab):
    running = lab()
    address, port = _enip(running, "lab-x80-1")
    via = proxy_simple(address, port=port, timeout=2.0)
    try:
        with via:
            values = list(via.read([("@6/1/1", "UINT"), ("@6/1/8", "UINT")]))
    finally:
        via.close_gateway()
    assert values == [[1], [0]]


def test_the_counters_refuse_other_attributes_and_services(lab):
    running = lab()
    status, _, _, _ = _ask(running, "lab-x80-1", objects.GET_ATTRIBUTE_SINGLE, b"")
    assert status == objects.ATTRIBUTE_NOT_SUPPORTED  # no attribute in the path
    status, _, _, _ = _ask(running, "lab-x80-1", objects.SET_ATTRIBUTE_SINGLE, b"")
    assert status == objects.NOT_SUPPORTED


def test_a_second_originator_is_refused_an_ownership_conflict(lab):
    """The CPU owns the drop: anyone else's Forward_Open is refused and counted."""
    running = lab()
    status, extended, _, _ = _ask(running, "lab-x80-1", objects.FORWARD_OPEN,
                                  _forward_open().encode())
    assert (status, extended) == (C.CONNECTION_FAILURE, (C.OWNERSHIP_CONFLICT,))
    assert counters(running, "lab-x80-1") == {**ZERO, "open_requests": 2,
                                              "open_other_rejects": 1}
    assert extended_status(running, "lab-x80-1") == RUN_MODE  # the CPU's connection holds


@pytest.mark.parametrize("data, counted", [
    (b"\x00" * 5, "open_format_rejects"),
    (_forward_open(path=bytes([0x20, 0x04, 0x24, 1])).encode(), "open_other_rejects"),
    (_forward_open(o_t_size=8).encode(), "open_other_rejects"),
], ids=["too-short", "not-an-assembly-path", "wrong-size"])
def test_a_bad_forward_open_is_refused_and_counted(lab, data, counted):
    running = lab([adapter_host()])
    status, _, _, _ = _ask(running, "lab-x80-1", objects.FORWARD_OPEN, data)
    assert status != objects.SUCCESS
    assert counters(running, "lab-x80-1") == {**ZERO, "open_requests": 1, counted: 1}


def test_a_connection_without_packets_times_out_and_is_counted(lab):
    """An adapter with no scanner: a test's own Forward_Open, a few O->T packets, then
    silence; T->O packets arrive at the port the request named."""
    running = lab([adapter_host()])
    assert extended_status(running, "lab-x80-1") == NONE_ESTABLISHED
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inputs:
        inputs.bind(("127.0.0.1", 0))
        inputs.settimeout(2.0)
        request = _forward_open()
        status, _, data, items = _ask(
            running, "lab-x80-1", objects.FORWARD_OPEN, request.encode(),
            (C.sockaddr_item(C.SOCKADDR_T_O, "127.0.0.1", inputs.getsockname()[1]),))
        assert status == objects.SUCCESS
        reply, target = C.OpenReply.decode(data), C.parse_sockaddr(items[C.SOCKADDR_O_T])
        assert target[1] != _enip(running, "lab-x80-1")[1]  # not the ListIdentity port
        for n in range(5):
            inputs.sendto(C.io_packet(reply.o_t_id, n, n, bytes(iosim.DATA_BYTES), C.RUN),
                          target)
        assert C.IoPacket.decode(inputs.recv(512)).connection_id == request.t_o_id
        assert wait_until(lambda: extended_status(running, "lab-x80-1") == RUN_MODE)
        assert wait_until(lambda: counters(running, "lab-x80-1")["connection_timeouts"] == 1)
    assert extended_status(running, "lab-x80-1") == FAULTED
    status, extended, _, _ = _ask(running, "lab-x80-1", objects.FORWARD_CLOSE,
                                  C.ForwardClose(*request.triad).encode())
    assert (status, extended) == (C.CONNECTION_FAILURE, (C.CONNECTION_NOT_FOUND,))
    assert counters(running, "lab-x80-1") == {**ZERO, "open_requests": 1, "close_requests": 1,
                                              "close_other_requests": 1,
                                              "connection_timeouts": 1}


def test_forward_close_closes_without_a_timeout(lab):
    running = lab([adapter_host()])
    request = _forward_open()
    assert _ask(running, "lab-x80-1", objects.FORWARD_OPEN, request.encode())[0] == 0
    assert _ask(running, "lab-x80-1", objects.FORWARD_CLOSE,
                C.ForwardClose(*request.triad).encode())[0] == 0
    time.sleep(0.2)
    assert counters(running, "lab-x80-1") == {**ZERO, "open_requests": 1, "close_requests": 1}
    assert extended_status(running, "lab-x80-1") == NONE_ESTABLISHED


def test_an_update_closes_the_connections_cleanly_and_opens_them_again(lab):
    running = lab()
    begin_update(running)  # the CPU writes the image: its scanner closes
    assert wait_until(lambda: counters(running, "lab-x80-1")["close_requests"] == 1)
    assert extended_status(running, "lab-x80-1") == NONE_ESTABLISHED
    finish(running, "lab-plc-1", 10 * 60)
    assert wait_until(lambda: extended_status(running, "lab-x80-1") == RUN_MODE)
    assert counters(running, "lab-x80-1") == {**ZERO, "open_requests": 2, "close_requests": 1}


@pytest.mark.parametrize("scope", ["cpu", "adapter"])
def test_io_connection_loss_after_an_update_times_out_until_a_rollback(lab, scope):
    """The fault on the CPU (every drop) or on one adapter (that drop): after the update the
    drop concerned times out again and again; the rollback heals it. The CPU is configured
    on v04.20, so Restore Previous Version takes it back there from v04.30 (from v03.20 the
    CPU refuses it: FAQ000272937)."""
    running = lab((cpu_host(firmware="v04.20"), scanned("lab-x80-1"), scanned("lab-x80-2")))
    lost = ["lab-x80-1", "lab-x80-2"] if scope == "cpu" else ["lab-x80-2"]
    running.reset(["io_connection_loss"], only=["lab-plc-1"] if scope == "cpu" else lost)
    update(running)
    for host in lost:
        assert wait_until(lambda: counters(running, host)["connection_timeouts"] >= 2), host
        assert extended_status(running, host) != RUN_MODE
    if scope == "adapter":
        assert counters(running, "lab-x80-1")["connection_timeouts"] == 0
    roll_back(running)
    for host in lost:
        assert wait_until(lambda: extended_status(running, host) == RUN_MODE), host
    healed = {h: counters(running, h)["connection_timeouts"] for h in lost}
    time.sleep(0.5)
    assert {h: counters(running, h)["connection_timeouts"] for h in lost} == healed


def test_a_reset_lab_is_back_in_run_mode_with_fresh_counters(lab):
    running = lab(faults={"io_connection_loss"})
    update(running)
    assert wait_until(lambda: counters(running, "lab-x80-1")["connection_timeouts"] >= 1)
    running.reset()
    assert extended_status(running, "lab-x80-1") == RUN_MODE
    assert counters(running, "lab-x80-1")["connection_timeouts"] == 0


def test_no_timeout_while_a_busy_thread_holds_the_gil(lab):
    """The simulators share one thread and the GIL with the test: a busy test thread slows
    them down, and a starved loop is not a lost network (iosim.py's watchdog)."""
    running = lab()
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            sum(i * i for i in range(2000))
    busy = [threading.Thread(target=spin) for _ in range(2)]
    for t in busy:
        t.start()
    time.sleep(1.5)
    stop.set()
    for t in busy:
        t.join()
    assert counters(running, "lab-x80-1")["connection_timeouts"] == 0
    assert extended_status(running, "lab-x80-1") == RUN_MODE
