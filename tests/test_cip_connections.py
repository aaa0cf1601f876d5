"""cip.connections: the CPU's I/O connections to every X80 drop in run mode with no
connection timeout, read through public CIP only (Connection Manager counters, Identity
status): a 4-hour soak passes in seconds of a dry run, io_connection_loss after an update
fails it naming each drop, `since:` compares with a checkpoint (in a playbook run too), and
a drop without the counters is attested by a person."""
from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from otpatch.engine import runs
from otpatch.engine.display import PlainDisplay
from otpatch.engine.runner import PreparedStep, invoke
from otpatch.engine.simlab import start_lab
from otpatch.modules import registry
from otpatch.modules.cip import drophealth as D
from otpatch.modules.cip import objects
from otpatch.modules.cip.connections import Connections
from otpatch.modules.contract.errors import ModuleFailed
from otpatch.modules.m580.identity import IdentityStatus
from otpatch.modules.m580.sim import start_simulators
from tests.fixtures.cip.support import CounterlessAdapter, roll_back, scanned, update
from tests.fixtures.m580.support import (EXECUTE_TIME_SCALE, adapter_host, bound, context,
                                         cpu_host, with_operator)
from tests.fixtures.plain_peers import EnipRecorder

FIXTURES = Path(__file__).parent / "fixtures" / "cip"
DROPS = (scanned("lab-x80-1"), scanned("lab-x80-2"))
HEALTHY = {**dict.fromkeys(objects.CM_COUNTERS, 0), "open_requests": 1}


@pytest.fixture
def drops(tmp_path):
    """drops(hosts, faults, dry_run, cpu, firmware) -> (lab, a context whose `drops` target
    holds the adapters; with `cpu`, their scanner's CPU on `firmware`); every lab started
    is stopped when the test ends."""
    labs = []

    def start(hosts=DROPS, faults=(), dry_run=True, cpu=True, firmware="v03.20"):
        lab = start_simulators([cpu_host(firmware=firmware), *hosts] if cpu else list(hosts),
                               faults=faults, time_scale=None if dry_run else EXECUTE_TIME_SCALE)
        labs.append(lab)
        ctx = context({"drops": tuple(bound(lab, h) for h in hosts)}, tmp_path,
                      dry_run=dry_run)
        return lab, with_operator(ctx)

    yield start
    for lab in labs:
        lab.stop()


def step(ctx, **args):
    """As the engine's runner runs it: arguments checked first, errors made results."""
    problems = registry.arg_problems("cip.connections", args)
    assert not problems, problems
    return invoke(PreparedStep(step=None, module=Connections, args=args), ctx)


def test_a_four_hour_soak_passes_in_virtual_time(drops):
    _, ctx = drops()
    started = time.monotonic()
    result = step(ctx, target="drops", soak="4h")
    assert not result.failed, result.msg
    assert result.msg == ("2 adapter(s): no connection timeout in 4h simulated (Connection "
                          "Manager counters), I/O connection in run mode; RPI 10 ms as "
                          "configured (a public read does not show the RPI)")
    assert ctx.clock.elapsed() == 4 * 3600
    fact = result.facts["lab-x80-2"]
    assert fact["connection_manager"] == HEALTHY
    assert (fact["io_status"], fact["evidence"], fact["connection_timeouts_in_span"],
            fact["rpi_ms_configured"]) == ("run", "connection_manager", 0, 10)
    assert fact["identity_status"]["extended_status"] == "at least one I/O connection in run mode"
    assert time.monotonic() - started < 10


def test_io_connection_loss_after_an_update_fails_naming_each_adapter(drops):
    lab, ctx = drops(faults={"io_connection_loss"})
    update(lab)
    result = step(ctx, target="drops", soak="4h")
    assert result.failed
    for name in ("lab-x80-1", "lab-x80-2"):
        assert f"{name}: I/O status 'at least one faulted I/O connection'" in result.msg or \
            f"{name}: I/O status 'at least one I/O connection established, all in idle mode'" \
            in result.msg, result.msg
        assert result.facts[name]["connection_manager"]["connection_timeouts"] >= 1
    assert "connection timeout(s) in 4h simulated (Connection Timeouts " in result.msg


def test_since_a_checkpoint_counts_the_timeouts_after_it_and_a_rollback_heals(drops):
    """Counters recorded before the update (what a checkpoint keeps), the update, the
    check against them fails; after the rollback a fresh look passes. The CPU starts on
    v04.20: Restore Previous Version takes it back there from v04.30 (not across 4.20)."""
    lab, ctx = drops(hosts=DROPS[:1], faults={"io_connection_loss"}, firmware="v04.20")
    as_found = step(ctx, target="drops", observe="10s")
    assert not as_found.failed, as_found.msg
    ctx.namespace = {"checkpoints": {"as_found": {"drops": dict(as_found.facts)}}}
    update(lab)
    after = step(ctx, target="drops", since="as_found")
    assert after.failed
    assert "lab-x80-1: " in after.msg and " connection timeout(s) since checkpoint " \
        "as_found (Connection Timeouts 0 -> " in after.msg, after.msg
    roll_back(lab)
    healed = step(ctx, target="drops", observe="1m")
    assert not healed.failed, healed.msg


def test_since_an_unknown_checkpoint_says_what_is_recorded(drops):
    _, ctx = drops(hosts=DROPS[:1])
    ctx.namespace = {"checkpoints": {"lab_as_found": {}}}
    result = step(ctx, target="drops", since="as_found")
    assert result.failed
    assert result.msg == ("cip.connections: since: no checkpoint 'as_found' in this run "
                          "(recorded: lab_as_found)")
    result = step(ctx, target="drops", since="lab_as_found")
    assert result.msg == ("cip.connections: checkpoint lab_as_found holds no Connection "
                          "Manager reading of lab-x80-1 under target drops: run "
                          "cip.connections on drops before it")


def test_counters_that_went_back_cannot_judge_the_span(drops):
    _, ctx = drops(hosts=DROPS[:1])
    recorded = {**HEALTHY, "open_requests": 40_000}  # 1 now: 25,537 opens, or a restart
    ctx.namespace = {"checkpoints": {"as_found": {"drops": {"lab-x80-1": {
        "connection_manager": recorded, "read_at": "2030-06-01T22:00:00+00:00"}}}}}
    result = step(ctx, target="drops", since="as_found")
    assert result.failed
    assert result.msg == ("lab-x80-1: Connection Manager counters went back (open_requests "
                          "40000 -> 1): the adapter restarted or its counters wrapped; since "
                          "checkpoint as_found cannot be judged from them")


def test_a_drop_without_its_scanner_is_not_in_run_mode(drops):
    _, ctx = drops(hosts=(adapter_host("lab-x80-1"),), cpu=False)
    result = step(ctx, target="drops", observe="10s")
    assert result.failed
    assert result.msg == ("lab-x80-1: I/O status 'no I/O connections established', not 'at "
                          "least one I/O connection in run mode' (Identity status 0x0034)")


def test_execute_mode_observes_on_the_wall_clock(drops):
    _, ctx = drops(hosts=DROPS[:1], dry_run=False)
    started = time.monotonic()
    result = step(ctx, target="drops", observe=0.3)
    assert not result.failed, result.msg
    assert "no connection timeout in 300ms (Connection Manager" in result.msg
    assert time.monotonic() - started >= 0.3


@pytest.fixture
def counterless():
    adapter = CounterlessAdapter()
    yield adapter_host("lab-x80-1", enip=adapter.endpoint)
    adapter.stop()


@pytest.fixture
def cpppo_adapter(tmp_path):
    """cpppo's EtherNet/IP server as an X80 adapter: an Identity (status 100: configured,
    run mode); to a Connection Manager read it answers no CIP reply at all."""
    peer = EnipRecorder(tmp_path / "cpppo", "BMECRA31210", 12)
    yield adapter_host("lab-x80-1", enip=peer.endpoint)
    peer.stop()


@pytest.mark.parametrize("peer, why", [
    ("counterless", "Connection Timeouts: path destination unknown"),
    ("cpppo_adapter", "no CIP reply to Get_Attribute_Single of Connection Timeouts"),
])
def test_an_adapter_without_the_counters_is_attested(request, tmp_path, peer, why):
    host = request.getfixturevalue(peer)
    ctx = with_operator(context({"drops": (host,)}, tmp_path, dry_run=True))
    result = step(ctx, target="drops", soak="4h")
    assert not result.failed, result.msg
    fact = result.facts["lab-x80-1"]
    assert (fact["evidence"], fact["connection_manager"], fact["io_status"]) == (
        "attestation", None, "run")
    assert fact["connection_manager_unanswered"] == why
    assert fact["attestation"]["statement"] == (
        "lab-x80-1: Control Expert's diagnostics show no connection timeout for this drop "
        "over 4h simulated")
    assert (fact["attestation"]["role"], fact["attestation"]["simulated"]) == ("operator", True)
    assert result.msg.startswith("1 adapter(s): no connection timeout in 4h simulated "
                                 "(attested for lab-x80-1)"), result.msg


def test_without_a_person_at_a_terminal_the_attestation_waits(counterless, tmp_path):
    ctx = with_operator(context({"drops": (counterless,)}, tmp_path, dry_run=False))
    result = step(ctx, target="drops", observe=0.1, role="operator")
    assert result.awaiting and not result.failed, result.msg


def test_a_role_no_approver_holds_fails_the_attestation(counterless, tmp_path):
    ctx = with_operator(context({"drops": (counterless,)}, tmp_path, dry_run=True))
    result = step(ctx, target="drops", role="process_owner")
    assert result.failed and "process_owner" in result.msg, result.msg


def test_an_adapter_that_does_not_answer_is_unreachable(tmp_path):
    host = adapter_host("lab-x80-1", enip="127.0.0.1:9")
    result = step(context({"drops": (host,)}, tmp_path, dry_run=True), target="drops")
    assert result.unreachable
    assert "lab-x80-1: no EtherNet/IP answer at 127.0.0.1:9" in result.msg


def test_a_cpu_is_not_an_io_adapter(tmp_path):
    ctx = context({"drops": (cpu_host(),)}, tmp_path, dry_run=True)
    with pytest.raises(ModuleFailed, match="lab-plc-1 is not a remote I/O adapter"):
        Connections().run({"target": "drops"}, ctx)


def test_registered_sourced_and_soak_or_since_not_both():
    assert registry.get("cip.connections") is Connections
    assert registry.target_args("cip.connections") == ("target",)
    assert Connections.on_real_device() == "sourced" and Connections.sources
    assert not Connections.changes_device and Connections.changed_aspects() == ()
    assert registry.arg_problems("cip.connections",
                                 {"target": "drops", "soak": "4h", "since": "as_found"})


def _reading(timeouts: int | None, io: int = 0x0064, open_requests: int = 1):
    counters = None if timeouts is None else objects.ConnectionManagerCounters(
        open_requests=open_requests, connection_timeouts=timeouts)
    return D.DropReading("x", counters, IdentityStatus(io), "t")


@pytest.mark.parametrize("before, after, said", [
    ((0, 1), _reading(0), []),
    ((2, 1), _reading(5), ["x: 3 connection timeout(s) in 4h (Connection Timeouts 2 -> 5)"]),
    ((65534, 1), _reading(1), ["x: 3 connection timeout(s) in 4h (Connection Timeouts 65534 "
                               "-> 1)"]),
    ((0, 9), _reading(0, open_requests=3), ["x: Connection Manager counters went back "
                                            "(open_requests 9 -> 3): the adapter restarted or "
                                            "its counters wrapped; in 4h cannot be judged "
                                            "from them"]),
    ((0, 1), _reading(0, io=0x0074), ["x: I/O status 'at least one I/O connection "
                                      "established, all in idle mode', not 'at least one "
                                      "I/O connection in run mode' (Identity status "
                                      "0x0074)"]),
    (None, _reading(None), []),
], ids=["healthy", "rose", "wrapped-forward", "went-back", "idle", "no-counters"])
def test_what_two_readings_say(before, after, said):
    counters = None if before is None else objects.ConnectionManagerCounters(
        open_requests=before[1], connection_timeouts=before[0])
    assert D.problems(counters, after, "in 4h") == said


def _playbook_run(tmp_path: Path, faults: tuple[str, ...] = ()):
    out = io.StringIO()
    with start_lab(FIXTURES / "inventory.yml", faults, ephemeral=True,
                   out_dir=tmp_path / "lab") as lab:
        progress = runs.start(str(FIXTURES / "since-checkpoint.yml"), str(lab.inventory),
                              "dry_run", {}, tmp_path / "home", PlainDisplay(out))
    return progress, out.getvalue()


def test_since_a_checkpoint_in_a_playbook_run(tmp_path):
    progress, text = _playbook_run(tmp_path)
    assert progress.status.value == "completed", text
    recorded = progress.checkpoints["as_found"]["drops"]["lab-x80-1"]
    assert recorded["connection_manager"] == HEALTHY and recorded["evidence"] == \
        "connection_manager"
    after = progress.facts["drops"]["lab-x80-1"]
    assert (after["span"], after["connection_timeouts_in_span"]) == (
        "since checkpoint as_found", 0)
    assert after["connection_manager"]["close_requests"] == 1  # the update closed it cleanly


def test_io_connection_loss_in_a_playbook_run_rolls_back_and_the_rollback_heals(tmp_path):
    progress, text = _playbook_run(tmp_path, ("io_connection_loss",))
    assert progress.status.value == "rolled_back", text
    states = [v.state for v in progress.path]
    assert states[-3:] == ["soak", "restore", "rolled_back"], states
    assert "connection timeout(s) since checkpoint as_found" in text
    restore = text.split("state restore")[1]
    assert "FAILED" not in restore and "restored v04.30 -> v04.20" in restore, restore
