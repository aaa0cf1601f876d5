"""cip.connections: implicit I/O to every X80 adapter at the RPI, no timeout across a soak;
a 4-hour soak passes in seconds of a dry run and fails naming the adapter that lost I/O."""
from __future__ import annotations

import time

import pytest

from otpatch.modules.contract.errors import ModuleFailed
from otpatch.modules import registry
from otpatch.modules.cip.connections import Connections
from otpatch.modules.m580.sim import start_simulators
from tests.fixtures.m580.support import (EXECUTE_TIME_SCALE, adapter_host, bound, context,
                                         cpu_host)

ADAPTERS = (adapter_host("lab-x80-1"), adapter_host("lab-x80-2"))


@pytest.fixture
def drops(tmp_path):
    """drops(hosts, faults, dry_run) -> a context whose `drops` target holds the simulated
    adapters; every lab started is stopped when the test ends."""
    labs = []

    def start(hosts=ADAPTERS, faults=(), dry_run=True):
        lab = start_simulators(hosts, faults=faults,
                               time_scale=None if dry_run else EXECUTE_TIME_SCALE)
        labs.append(lab)
        return context({"drops": tuple(bound(lab, h) for h in hosts)}, tmp_path,
                       dry_run=dry_run)

    yield start
    for lab in labs:
        lab.stop()


def test_four_hour_soak_passes_in_virtual_time(drops):
    ctx, started = drops(), time.monotonic()
    result = Connections().run({"target": "drops", "soak": "4h"}, ctx)
    assert not result.failed, result.msg
    assert result.msg == ("2 adapter(s) connected at RPI 10 ms, no connection timeout in 4h "
                          "simulated")
    assert ctx.clock.elapsed() == 4 * 3600
    assert result.facts["adapters"]["lab-x80-2"] == {"rpi_ms": 10, "connected": True,
                                                     "timeouts": 0, "timeouts_total": 0}
    assert time.monotonic() - started < 10


def test_io_connection_loss_fails_the_soak_naming_each_adapter(drops):
    ctx = drops(faults={"io_connection_loss"})
    result = Connections().run({"target": "drops", "soak": "4h"}, ctx)
    assert result.failed
    assert result.msg == ("after 7m simulated: lab-x80-1: 1 connection timeout(s); "
                          "lab-x80-2: 1 connection timeout(s)")
    assert result.facts["adapters"]["lab-x80-1"]["timeouts"] == 1


def test_wrong_rpi_fails_naming_the_adapter(drops):
    ctx = drops(hosts=(adapter_host("lab-x80-1"), adapter_host("lab-x80-9", rpi_ms=20)))
    result = Connections().run({"target": "drops"}, ctx)
    assert result.failed
    assert result.msg == ("after 0s simulated: lab-x80-9: RPI 20/20 ms (O->T/T->O), "
                          "expected 10 ms")


def test_rollback_check_in_execute_mode(drops):
    """The rollback verification: a short look on the wall clock at a fast simulator."""
    ctx = drops(hosts=ADAPTERS[:1], dry_run=False)
    result = Connections().run({"target": "drops", "soak": 0.3, "interval": 0.1}, ctx)
    assert not result.failed, result.msg
    assert "1 adapter(s) connected at RPI 10 ms" in result.msg and "simulated" not in result.msg


def test_an_adapter_that_does_not_answer_is_unreachable(tmp_path):
    host = adapter_host("lab-x80-1", enip="127.0.0.1:9")
    ctx = context({"drops": (host,)}, tmp_path, dry_run=True)
    with pytest.raises(Exception, match="lab-x80-1: no EtherNet/IP answer at 127.0.0.1:9"):
        Connections().run({"target": "drops"}, ctx)


def test_a_cpu_is_not_an_io_adapter(tmp_path):
    ctx = context({"drops": (cpu_host(),)}, tmp_path, dry_run=True)
    with pytest.raises(ModuleFailed, match="lab-plc-1 is not a remote I/O adapter"):
        Connections().run({"target": "drops"}, ctx)


def test_registered_with_its_target_argument():
    assert registry.get("cip.connections") is Connections
    assert registry.target_args("cip.connections") == ("target",)
