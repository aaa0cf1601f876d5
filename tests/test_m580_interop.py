"""The M580 driver against independent implementations: cpppo's EtherNet/IP server and a
plain pymodbus server; the dry-run probe tells them from otpatch's simulators."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from pymodbus.pdu.device import ModbusDeviceIdentification
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from otpatch.engine.inventory import Host
from otpatch.modules.cip.objects import CipIdentity
from otpatch.modules.m580.probe import probe
from otpatch.modules.m580.driver import M580Driver, ModbusIdentity
from otpatch.modules.m580.identity import cross_check
from otpatch.modules.m580.modules import Identity
from otpatch.modules.m580.sim import start_simulators
from tests.fixtures.m580.support import ServerThread, bound, context, cpu_host

CPPPO_IDENTITY = """[Identity]
Vendor Number = 243
Device Type = 14
Product Code Number = 4161
Product Revision = 5123
Status Word = 100
Serial Number = 305419896
Product Name = BMEP581020
"""  # decimal only: revision 5123 = 0x1403 is major 3 (low byte), minor 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, "cpppo exited before listening"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"cpppo did not listen on {port} within {within} s")


@pytest.fixture(scope="module")
def cpppo(tmp_path_factory):
    config = tmp_path_factory.mktemp("cpppo") / "identity.cfg"
    config.write_text(CPPPO_IDENTITY)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cpppo.server.enip", "-c", str(config),
                             "-a", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        _wait_listening(port, proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture(scope="module")
def plain_modbus():
    """pymodbus' own server with a device identification: a Modbus device that is not ours."""
    thread = pymodbus_server("M580 test bench")
    yield f"127.0.0.1:{thread.port}"
    thread.stop()


def pymodbus_server(product_name: str) -> ServerThread:
    """pymodbus' own Modbus TCP server, identifying as a Schneider BMEP581020 at v03.21."""
    identity = ModbusDeviceIdentification(info_name={
        "VendorName": "Schneider Electric", "ProductCode": "BMEP581020",
        "MajorMinorRevision": "v03.21", "ProductName": product_name})

    async def factory():
        server = ModbusTcpServer(SimDevice(id=0, simdata=[SimData(
            1, count=10, values=0, datatype=DataType.REGISTERS)]), identity=identity,
            address=("127.0.0.1", 0))
        await server.serve_forever(background=True)
        return server, server.transport.sockets[0].getsockname()[1]

    return ServerThread(factory)


def test_driver_reads_cip_identity_from_cpppo(cpppo):
    ident = M580Driver(cpu_host(enip=cpppo)).cip_identity()
    assert ident.vendor == "Schneider Electric" and ident.device_type == 0x0E
    assert (ident.product_code, ident.revision_major, ident.revision_minor) == (4161, 3, 20)
    assert (ident.serial_hex, ident.product_name) == ("12345678", "BMEP581020")


def test_driver_reads_fc43_from_plain_pymodbus(plain_modbus):
    ident = M580Driver(cpu_host(modbus=plain_modbus)).modbus_identity()
    assert (ident.vendor, ident.product_code, ident.revision) == (
        "Schneider Electric", "BMEP581020", "v03.21")
    assert ident.product_name == "M580 test bench"


def test_identity_fails_naming_both_values_when_the_paths_disagree(cpppo, plain_modbus,
                                                                   tmp_path):
    host = cpu_host(modbus=plain_modbus, enip=cpppo)
    result = Identity().run({"target": "plc"}, context({"plc": (host,)}, tmp_path,
                                                       dry_run=False))
    assert result.failed
    assert "revision: Modbus FC 43 says 'v03.21', CIP Identity says 3.20" in result.msg


@pytest.mark.parametrize("modbus_vendor, modbus_rev, cip_vendor, cip_rev, expected", [
    ("Schneider Electric", "v03.20", 243, (3, 20), []),
    ("Schneider Electric", "SV3.2", 243, (3, 20), []),
    ("Pymodbus", "v03.20", 243, (3, 20), ["vendor: Modbus FC 43 says 'Pymodbus', CIP Identity "
                                         "says vendor id 243 (Schneider Electric)"]),
    ("Schneider Electric", "3.20", 1, (3, 20), [
        "vendor: Modbus FC 43 says 'Schneider Electric', CIP Identity says vendor id 1 "
        "(Rockwell Automation/Allen-Bradley)"]),
    ("Schneider Electric", "build 7", 243, (3, 20), [
        "revision: Modbus FC 43 says 'build 7', CIP Identity says 3.20"]),
], ids=["agree", "advisory-spelling", "vendor-name", "vendor-id", "revision-not-a-version"])
def test_cross_check(modbus_vendor, modbus_rev, cip_vendor, cip_rev, expected):
    modbus = ModbusIdentity(modbus_vendor, "BMEP581020", modbus_rev, "", "", {})
    cip = CipIdentity(cip_vendor, 0x0E, 1, *cip_rev, 0, 1, "BMEP581020")
    assert cross_check(modbus, cip) == expected


def test_probe_says_a_plain_pymodbus_server_is_not_a_simulator(plain_modbus):
    answers, detail = probe(cpu_host(modbus=plain_modbus))
    assert not answers
    assert "not an otpatch simulator" in detail and "M580 test bench" in detail


def test_probe_says_cpppo_is_not_a_simulator(cpppo):
    answers, detail = probe(cpu_host(enip=cpppo))
    assert not answers and "not an otpatch simulator" in detail


def test_probe_says_our_simulator_is_one():
    host = cpu_host()
    with start_simulators([host]) as lab:
        answers, detail = probe(bound(lab, host))
    assert answers, detail
    assert "Modbus" in detail and "EtherNet/IP" in detail


def test_probe_reports_nothing_answering_within_its_bound():
    port = _free_port()
    started = time.monotonic()
    answers, detail = probe(cpu_host(modbus=f"127.0.0.1:{port}", enip=f"127.0.0.1:{port}"))
    assert not answers
    assert f"no Modbus TCP answer at 127.0.0.1:{port}" in detail and "sim up" in detail
    assert time.monotonic() - started < 5


def test_probe_leaves_other_devices_alone():
    mguard = Host(name="lab-mguard-1", vendor="Phoenix Contact", model="FL MGUARD RS4000",
                  part_number="2700634", device="mguard",
                  endpoints={"https": "127.0.0.1:8443"})
    assert probe(mguard) is None


def test_dry_run_refuses_a_plain_modbus_server_posing_as_a_lab_plc(plain_modbus, tmp_path):
    """A typo in an inventory must not flash a production PLC: the inventory says
    `simulator: true`, but the device at that address does not answer as one."""
    from conftest import ROOT, otpatch_child

    inventory = tmp_path / "lab.yml"
    shipped = (ROOT / "inventory" / "lab.yml").read_text()
    assert "127.0.0.1:15022" in shipped  # prod-plc-1's Modbus endpoint
    inventory.write_text(shipped.replace("127.0.0.1:15022", plain_modbus))
    home = tmp_path / "home"
    done = otpatch_child(home, "run", str(ROOT / "playbooks" / "patch-readiness.yml"), "-i",
                         str(inventory), "--dry-run")
    assert done.returncode == 2
    assert "dry run refused: prod-plc-1 does not answer as a simulator" in done.stderr
    assert not (home / "journal.sqlite").exists()


def test_a_guided_wait_reads_paths_that_disagree_as_not_yet(cpppo, tmp_path):
    """Waiting for a CPU to read back a version (a guided update), FC 43/14 and the CIP
    Identity are two requests a moment apart: a pymodbus server whose revision turns from
    v03.21 to cpppo's 3.20 mid-wait (as a CPU's does when it comes up on new firmware) is
    "not yet", then found; a disagreement that lasts is the timeout's last word, and a
    resume's read-back looks again."""
    import threading

    from pymodbus.pdu.device import ModbusControlBlock

    from otpatch.modules.m580.guided import version_read_back, wait_until
    from otpatch.modules.m580.versions import FirmwareVersion

    # pymodbus keeps the served identity in a process-wide block (ModbusControlBlock, a
    # singleton every server in the process shares): it is set here, changed mid-wait, and
    # put back as it was for the module's other servers
    served = ModbusControlBlock().Identity
    before = dict(served.stat_data)
    thread = pymodbus_server("M580 coming up")
    try:
        host = cpu_host(modbus=f"127.0.0.1:{thread.port}", enip=cpppo, simulator=False)
        ctx, drv = context({"plc": (host,)}, tmp_path, dry_run=False), M580Driver(host)
        wanted = FirmwareVersion(3, 20)
        lasting, waited, last = wait_until(ctx, drv, lambda s: s.running == wanted, 0.3, 0.05)
        assert lasting is None and waited == pytest.approx(0.3)
        assert last == ("the identity paths disagreeing (revision: Modbus FC 43 says "
                        "'v03.21', CIP Identity says 3.20)")
        # a resume's read-back after a crash mid-change looks again, as for a silent CPU
        moving = version_read_back(drv, ctx, "plc", wanted, 5, 0.1)
        assert moving.moving and moving.applied is None and "paths disagree yet" in \
            moving.result.msg
        turn = threading.Timer(0.3, lambda: served.__setitem__(0x02, "v03.20"))  # revision
        turn.start()
        seen, waited, _ = wait_until(ctx, drv, lambda s: s.running == wanted, 10, 0.05)
        turn.join()
        assert seen is not None and seen.running == wanted and 0.25 <= waited < 10
    finally:
        thread.stop()
        served.stat_data.clear()
        served.stat_data.update(before)
