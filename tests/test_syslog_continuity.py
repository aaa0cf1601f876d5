"""syslog.continuity: real UDP datagrams from the mGuard simulator, before and after a change;
the window simulated in a dry run, real in an execute run."""
from __future__ import annotations

import socket
import time

import pytest

from tests.fixtures.mguard.support import (TIME_SCALE, Run, firmware_file,  # noqa: F401
                                           free_udp_port, lab_password, make_lab)


def listen(run: Run, port: int, **args):
    return run.step("syslog.continuity", port=port, bind="127.0.0.1", **args)


@pytest.fixture
def siem_port() -> int:
    return free_udp_port()


def test_the_simulators_messages_arrive_in_a_simulated_window(make_lab, tmp_path, siem_port):
    lab = make_lab(syslog_to=("127.0.0.1", siem_port))
    run = Run(tmp_path, lab.host())
    started = time.monotonic()
    result = listen(run, siem_port, window="60s", min_messages=3, label="before")
    assert time.monotonic() - started < 2  # a minute of simulated time
    assert not result.failed, result.msg
    seen = result.facts["syslog"]["before"]
    assert seen["count"] == 6 and seen["source"] == "127.0.0.1"  # one per 10 s
    assert "lab-mguard-1 firewall: ACCEPT PROTO=TCP" in seen["first"]["text"]
    assert seen["last"]["text"].startswith("<134>")
    assert result.msg == f"syslog from 127.0.0.1: 6 message(s) on udp/{siem_port} in 1m simulated"


def test_syslog_gap_after_the_update_fails_the_post_change_check(make_lab, tmp_path, siem_port):
    lab = make_lab(faults={"syslog_gap"}, syslog_to=("127.0.0.1", siem_port))
    run = Run(tmp_path, lab.host())
    assert not listen(run, siem_port, window="60s", min_messages=3, label="before").failed
    run.step("mguard.firmware_update", image=firmware_file(tmp_path), target_version="10.5.0")
    assert not run.step("mguard.wait_ready", expect_version="10.5.0").failed
    after = listen(run, siem_port, window="60s", min_messages=3, label="after")
    assert after.failed
    assert after.msg == (f"syslog from 127.0.0.1: 0 message(s) on udp/{siem_port} in 1m "
                         "simulated, expected at least 3")
    record = run.facts["fw"]["syslog"]
    assert record["before"]["count"] == 6 and record["after"]["count"] == 0


def test_without_the_fault_syslog_continues_after_the_update(make_lab, tmp_path, siem_port):
    lab = make_lab(syslog_to=("127.0.0.1", siem_port))
    run = Run(tmp_path, lab.host())
    run.step("mguard.firmware_update", image=firmware_file(tmp_path), target_version="10.5.0")
    run.step("mguard.wait_ready")
    assert not listen(run, siem_port, window="60s", min_messages=3, label="after").failed


def test_messages_from_another_address_do_not_count(make_lab, tmp_path, siem_port):
    lab = make_lab(syslog_to=("127.0.0.1", siem_port))
    run = Run(tmp_path, lab.host())
    result = listen(run, siem_port, window="30s", source="127.0.0.2")
    assert result.failed
    assert "0 message(s)" in result.msg and "from other addresses ['127.0.0.1']" in result.msg


def test_a_simulator_without_a_siem_sends_nothing(make_lab, tmp_path, siem_port):
    lab = make_lab()
    result = listen(Run(tmp_path, lab.host()), siem_port, window="30s")
    assert result.failed and result.facts["syslog"]["check"]["count"] == 0


def test_execute_mode_listens_in_real_time_to_a_time_scaled_simulator(make_lab, tmp_path,
                                                                       siem_port):
    lab = make_lab(syslog_to=("127.0.0.1", siem_port), time_scale=TIME_SCALE)
    run = Run(tmp_path, lab.host(), dry_run=False)
    started = time.monotonic()
    result = listen(run, siem_port, window=0.3, min_messages=3)
    assert 0.3 <= time.monotonic() - started < 2
    assert not result.failed, result.msg
    assert "in 300ms" in result.msg  # real time: not "simulated"


def test_a_port_in_use_is_said_plainly(make_lab, tmp_path):
    lab = make_lab()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        result = listen(Run(tmp_path, lab.host()), port, window="10s")
    assert result.failed
    assert result.msg == f"cannot listen on udp 127.0.0.1:{port}: already in use (is a syslog " \
                         "daemon listening there?)"


def test_defaults_are_the_production_syslog_port_on_every_address():
    from otpatch.modules.syslog.continuity import Continuity
    assert "514" in Continuity.doc and "0.0.0.0" in Continuity.doc
