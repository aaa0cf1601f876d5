"""Trust nothing on a mark (issue 7): every module that speaks a simulator's own interface,
run against plain peers that are not otpatch simulators (pymodbus' own Modbus server,
cpppo's EtherNet/IP server behind a recording proxy, an HTTPS recorder with a real
self-signed certificate), with the host marked `simulator: true` and then `false`, in dry-run
and execute contexts. Each step fails with "not available on a real device: ..." and the
peers saw nothing but identity reads: no Modbus write (the registers unchanged), no CIP
request beyond the Identity object, no upload, no `action=`, no credentials. And against the
real simulators a step asks its question once, however often it polls."""
from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from otpatch.engine.runner import PreparedStep, invoke
from otpatch.modules import registry
from otpatch.modules.contract.module import Result
from otpatch.modules.m580 import simidentity
from otpatch.modules.m580.sim import start_simulators
from otpatch.modules.mguard.driver import MguardDriver
from otpatch.modules.simulator_only import REFUSAL
from tests.fixtures.m580.support import adapter_host, bound, context, cpu_host, firmware_image
from tests.fixtures.mguard.support import (FIXTURES, PASSWORD, Run, firmware_file,  # noqa: F401
                                           lab_password, make_lab, mguard_host)
from tests.fixtures.plain_peers import (FC43, MODBUS_WRITES, REGISTERS, EnipRecorder,
                                        HttpsRecorder, PlainModbus)

IDENTITY = 0x01  # the CIP Identity object: the only class a real device may be asked
GET_ATTRIBUTES_ALL = 0x01
MARKS = pytest.mark.parametrize("marked", [True, False], ids=["marked-sim", "marked-real"])
MODES = pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "execute"])


@pytest.fixture
def plain_modbus():
    server = PlainModbus()
    yield server
    server.stop()


@pytest.fixture
def enip_peer(tmp_path):
    """enip_peer(product_name, device_type) -> a cpppo EtherNet/IP server behind a recorder;
    each one is stopped when the test ends."""
    started = []

    def start(product_name: str = "BMEP581020", device_type: int = 14) -> EnipRecorder:
        peer = EnipRecorder(tmp_path / f"cpppo-{len(started)}", product_name, device_type)
        started.append(peer)
        return peer
    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def https_recorder(tmp_path):
    recorder = HttpsRecorder(tmp_path / "recorder")
    yield recorder
    recorder.stop()


def step(ctx, module: str, **args) -> Result:
    """A module run as the engine's runner runs it: arguments checked first, errors turned
    into a failed result."""
    problems = registry.arg_problems(module, args)
    assert not problems, problems
    return invoke(PreparedStep(step=None, module=registry.get(module), args=args), ctx)


def assert_refused(result: Result, host: str, module: str, marked: bool) -> None:
    assert result.failed and not result.changed, result.msg
    assert result.msg.startswith(f"{REFUSAL}{host}: {module} "), result.msg
    if marked:
        assert result.msg.endswith("nothing but the identity read was sent"), result.msg
    else:
        assert result.msg.endswith("`simulator: false`: nothing was sent"), result.msg


def assert_modbus_untouched(server: PlainModbus, marked: bool) -> None:
    received = list(server.received)  # before the test's own read below
    assert not MODBUS_WRITES & set(received), received
    assert received == ([FC43] if marked else []), received  # the identity read, or nothing
    assert server.registers() == REGISTERS


def assert_cip_identity_only(peer: EnipRecorder, asked: bool) -> None:
    requests = peer.cip_requests()
    assert requests == ([(GET_ATTRIBUTES_ALL, IDENTITY)] if asked else []), requests
    if not asked:
        assert peer.connections == 0


# -- M580: the register map and the simulator's CIP classes -----------------------------------

def _m580_args(name: str, tmp_path) -> dict:
    return {"m580.status": {"expect": {"state": "RUN", "run_led": "solid_green"}},
            "m580.set_mode": {"mode": "manual"},
            "m580.firmware_transfer": {"image": firmware_image(tmp_path), "version": "SV4.30",
                                       "port": "usb", "timeout": "20s", "interval": "1s"},
            "m580.restore_previous": {"version": "v03.20", "timeout": "20s",
                                      "interval": "1s"}}[name]


M580_SIMULATOR_ONLY = ("m580.status", "m580.set_mode")
M580_GUIDED = ("m580.firmware_transfer", "m580.restore_previous")  # a person's on a real host
M580_MODULES = pytest.mark.parametrize("module", M580_SIMULATOR_ONLY + M580_GUIDED)
# A host marked simulator that does not answer as one is refused by every module; a host
# marked real (`simulator: false`) only by the simulator's own steps: the guided ones ask a
# person there instead (tests/test_m580_rollback.py), having sent public reads only.
REFUSED = pytest.mark.parametrize("module, marked", [
    *((m, True) for m in M580_SIMULATOR_ONLY + M580_GUIDED),
    *((m, False) for m in M580_SIMULATOR_ONLY)],
    ids=lambda v: ("marked-sim" if v else "marked-real") if isinstance(v, bool) else v)


@REFUSED
@MODES
def test_m580_modules_refuse_a_plain_modbus_server(plain_modbus, enip_peer, tmp_path, module,
                                                   marked, dry_run):
    """Modbus answers FC 43 as Schneider, not as our simulator: refused after that one read;
    the EtherNet/IP endpoint (cpppo) is never even opened."""
    peer = enip_peer()
    host = cpu_host(simulator=marked, modbus=plain_modbus.endpoint, enip=peer.endpoint)
    ctx = context({"plc": (host,)}, tmp_path, dry_run=dry_run)
    result = step(ctx, module, target="plc", **_m580_args(module, tmp_path))
    assert_refused(result, "lab-plc-1", module, marked)
    assert "solid green" not in result.msg and not result.facts  # the words were not read
    assert "register map" in result.msg
    if marked:
        assert "answers FC 43 as 'Schneider Electric'" in result.msg
        assert "'M580 test bench': not an otpatch simulator" in result.msg
    assert_modbus_untouched(plain_modbus, marked)
    assert_cip_identity_only(peer, asked=False)
    assert ctx.clock.elapsed() < (1e-9 if dry_run else 1.0)  # refused at once, no wait


@M580_MODULES
def test_m580_modules_refuse_a_plain_enip_cpu_after_its_identity(enip_peer, tmp_path, module):
    """EtherNet/IP only: the CIP Identity is read, and nothing else: not the simulator's
    marker (class 0x64), not its loader (0x65)."""
    peer = enip_peer()
    ctx = context({"plc": (cpu_host(enip=peer.endpoint),)}, tmp_path, dry_run=False)
    result = step(ctx, module, target="plc", **_m580_args(module, tmp_path))
    assert_refused(result, "lab-plc-1", module, marked=True)
    assert "answers as Schneider Electric 'BMEP581020': not an otpatch simulator" in result.msg
    assert_cip_identity_only(peer, asked=True)


PUBLIC_READS = pytest.mark.parametrize("module, args, said", [
    ("m580.wait_run", {"timeout": "10s", "interval": "1s"},
     "lab-plc-1: back, I/O connection in run mode, no major fault, revision v03.20 after 0s"),
    ("m580.health", {"expect": {"io": "run", "major_fault": False, "firmware_update": False}},
     "lab-plc-1: CIP Identity status 0x0064: configured; at least one I/O connection in run "
     "mode; revision v03.20"),
], ids=["wait_run", "health"])


@PUBLIC_READS
@MARKS
@MODES
def test_m580_public_reads_work_on_plain_peers_sending_only_identity_reads(
        plain_modbus, enip_peer, tmp_path, module, args, said, marked, dry_run):
    """wait_run and health use public reads on every host: against pymodbus' server and
    cpppo (status word 100: configured, an I/O connection in run mode) they answer, having
    sent one FC 43 and one CIP Identity read, nothing of the simulator's."""
    peer = enip_peer()
    host = cpu_host(simulator=marked, modbus=plain_modbus.endpoint, enip=peer.endpoint)
    ctx = context({"plc": (host,)}, tmp_path, dry_run=dry_run)
    result = step(ctx, module, target="plc", **args)
    assert not result.failed and result.msg.startswith(said), result.msg
    facts = result.facts
    assert (facts["io"], facts["major_fault"], facts["revision"]) == ("run", False, "v03.20")
    assert facts["identity_status"]["hex"] == "0x0064"
    assert_modbus_untouched(plain_modbus, marked=True)  # the one FC 43 read, nothing else
    assert_cip_identity_only(peer, asked=True)


def test_a_modbus_server_that_only_names_itself_a_simulator_is_refused(tmp_path):
    """A product name ending "(otpatch simulator)" without the marker object is not one."""
    server = PlainModbus(product_name="BMEP581020 (otpatch simulator)")
    try:
        ctx = context({"plc": (cpu_host(modbus=server.endpoint),)}, tmp_path, dry_run=False)
        result = step(ctx, "m580.set_mode", target="plc", mode="manual")
        assert_refused(result, "lab-plc-1", "m580.set_mode", marked=True)
        assert_modbus_untouched(server, marked=True)
    finally:
        server.stop()


@pytest.mark.parametrize("module, args, marked", [
    ("m580.set_mode", {"mode": "manual"}, True),
    ("m580.set_mode", {"mode": "manual"}, False),
    ("m580.firmware_transfer", {"version": "SV4.30", "port": "usb"}, True),
    ("m580.restore_previous", {"version": "v03.20"}, True),
], ids=["set_mode-marked-sim", "set_mode-marked-real", "firmware_transfer-marked-sim",
        "restore_previous-marked-sim"])
def test_m580_read_backs_cannot_tell_on_a_plain_modbus_server(plain_modbus, tmp_path, module,
                                                              args, marked):
    """Resume after a crash: the read-back goes through the same check; a device that is
    not a simulator cannot tell, so a human decides."""
    host = cpu_host(simulator=marked, modbus=plain_modbus.endpoint)
    ctx = context({"plc": (host,)}, tmp_path, dry_run=False)
    if module == "m580.firmware_transfer":
        args = {**args, "image": firmware_image(tmp_path)}
    answer = registry.get(module)().read_back({"target": "plc", **args}, ctx)
    assert answer.applied is None
    assert_refused(answer.result, "lab-plc-1", module, marked)
    assert_modbus_untouched(plain_modbus, marked)


# cip.connections reads only public CIP (Connection Manager counters, Identity status) and
# asks no simulator check: a plain cpppo adapter is read, then attested where it answers no
# counters (tests/test_cip_connections.py).


# -- mGuard: the invented CGI actions, uploads and credentials --------------------------------

def _mguard_args(module: str, tmp_path) -> dict:
    return {"mguard.version": {},
            "mguard.export_profile": {"label": "as_found"},
            "mguard.import_profile": {"profile": str(FIXTURES / "plant-boundary.atv")},
            "mguard.firmware_update": {"image": firmware_file(tmp_path),
                                       "target_version": "10.5.0"},
            "mguard.wait_ready": {"timeout": "10s", "interval": "1s"},
            "mguard.check": {"expect": {"rules": 16}, "label": "after"}}[module]


MGUARD_MODULES = pytest.mark.parametrize("module", [
    "mguard.version", "mguard.export_profile", "mguard.import_profile",
    "mguard.firmware_update", "mguard.wait_ready", "mguard.check"])


def recorder_host(recorder: HttpsRecorder, marked: bool):
    """lab-mguard-1 as the inventory would give it, pointing at the recorder and trusting
    its certificate, with a password the driver can read."""
    return dataclasses.replace(mguard_host(tls_ca_file=str(recorder.ca_file)),
                               simulator=marked,
                               endpoints=MappingProxyType({"https": recorder.endpoint}))


def assert_https_identity_only(recorder: HttpsRecorder, marked: bool) -> None:
    seen = [(r["method"], r["path"]) for r in recorder.requests]
    assert seen == ([("GET", "/sim/identity")] if marked else []), seen
    assert all("authorization" not in r["headers"] and r["body"] == b""
               for r in recorder.requests)
    assert "action=" not in repr(seen)
    assert PASSWORD.encode() not in recorder.raw()
    if not marked:
        assert recorder.connections == 0  # not even a TLS handshake


# A host marked `simulator: false` gets the guided path now (tests/test_mguard_guided.py);
# a host marked a simulator that does not answer as one is still refused.
SIM_MARKED = pytest.mark.parametrize("marked", [True], ids=["marked-simulator"])


@MGUARD_MODULES
@SIM_MARKED
@MODES
def test_mguard_modules_refuse_a_plain_https_server(https_recorder, lab_password, tmp_path,
                                                    module, marked, dry_run):
    run = Run(tmp_path, recorder_host(https_recorder, marked), dry_run=dry_run)
    result = run.step(module, **_mguard_args(module, tmp_path))
    assert_refused(result, "lab-mguard-1", module, marked)
    assert "which no public source documents for a real mGuard" in result.msg
    if marked:
        assert "answers HTTPS but not as an otpatch simulator" in result.msg
    assert_https_identity_only(https_recorder, marked)
    assert run.events == [] and not (tmp_path / "run" / "mguard").exists()


@pytest.mark.parametrize("module", ["mguard.firmware_update", "mguard.import_profile"])
@SIM_MARKED
def test_mguard_read_backs_cannot_tell_on_a_plain_https_server(https_recorder, lab_password,
                                                               tmp_path, module, marked):
    run = Run(tmp_path, recorder_host(https_recorder, marked), dry_run=False)
    answer = run.read_back(module, **_mguard_args(module, tmp_path))
    assert answer.applied is None
    assert_refused(answer.result, "lab-mguard-1", module, marked)
    assert_https_identity_only(https_recorder, marked)


def test_an_mguard_target_with_one_plain_server_sends_nothing_to_the_simulator_either(
        make_lab, https_recorder, tmp_path):
    """Every host of a target is confirmed before any is sent a simulator call."""
    lab = make_lab()
    sim = lab.host()
    plain = dataclasses.replace(recorder_host(https_recorder, True), name="lab-mguard-2")
    run = Run(tmp_path, sim)
    run.ctx.targets["fw"] = (sim, plain)
    image = firmware_file(tmp_path)
    result = run.step("mguard.firmware_update", image=image, target_version="10.5.0")
    assert_refused(result, "lab-mguard-2", "mguard.firmware_update", marked=True)
    assert_https_identity_only(https_recorder, marked=True)
    assert lab.sim().device.firmware == "10.3.1" and lab.sim().device.phase == "ready"


# -- asked once per step, however often it polls ----------------------------------------------

def test_an_m580_step_asks_once_however_often_it_polls(monkeypatch, tmp_path):
    calls = []
    real_answer = simidentity.answer
    monkeypatch.setattr(simidentity, "answer", lambda drv: calls.append(1) or real_answer(drv))
    host = cpu_host()
    with start_simulators([host]) as lab:
        ctx = context({"plc": (bound(lab, host),)}, tmp_path, dry_run=True)
        transfer = step(ctx, "m580.firmware_transfer", target="plc",
                        image=firmware_image(tmp_path), version="SV4.30", port="usb")
        assert transfer.changed and not transfer.failed, transfer.msg
        assert len(calls) == 1  # some 100 progress polls over 8 simulated minutes
        waited = step(ctx, "m580.wait_run", target="plc")
        assert not waited.failed and waited.facts["waited_s"] >= 45, waited.msg
        assert len(calls) == 2  # one more for the new step's driver, not one per poll


def test_an_mguard_step_asks_once_however_often_it_polls(make_lab, monkeypatch, tmp_path):
    calls = []
    real_identity = MguardDriver.sim_identity
    monkeypatch.setattr(MguardDriver, "sim_identity",
                        lambda self: calls.append(1) or real_identity(self))
    run = Run(tmp_path, make_lab().host())
    update = run.step("mguard.firmware_update", image=firmware_file(tmp_path),
                      target_version="10.5.0")
    assert update.changed and not update.failed, update.msg
    assert len(calls) == 1
    ready = run.step("mguard.wait_ready", expect_version="10.5.0", interval="5s")
    assert not ready.failed and ready.facts["ready_after_s"] == 180, ready.msg
    assert len(calls) == 2  # 36 polls of a 180 s reboot, one question
