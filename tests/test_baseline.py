"""The baseline (engine/baseline.py): typed values until a run reads a device back verified;
then that run's as-left, with its provenance, and `advisories match` uses it and says so."""
from __future__ import annotations

import json

from conftest import ROOT, SHARED, otpatch_child, run_json

M580 = str(ROOT / "playbooks" / "m580-firmware-update.yml")
ICSA_23_201_01 = str(SHARED / "data" / "csaf" / "advisories" / "icsa-23-201-01.json")
ICSA_21_194_02 = str(SHARED / "data" / "csaf" / "advisories" / "icsa-21-194-02.json")


def _baseline(home, inventory) -> dict:
    done = otpatch_child(home, "baseline", "show", "-i", str(inventory), "--json")
    assert (done.returncode, done.stderr) == (0, "")
    return json.loads(done.stdout)["hosts"]


def _flagged(home, inventory, advisory: str = ICSA_23_201_01) -> dict:
    done = otpatch_child(home, "advisories", "match", "-i", str(inventory), advisory,
                         "--json")
    assert (done.returncode, done.stderr) == (0, "")
    return {m["host"]: m for m in json.loads(done.stdout)["matches"]}


def test_without_runs_the_baseline_is_what_the_inventory_types(home):
    hosts = _baseline(home, ROOT / "inventory" / "lab.yml")
    assert hosts["lab-plc-1"]["firmware"] == {
        "value": "v03.20", "source": "typed", "run_id": None, "ended": None, "mode": None,
        "simulator": False, "provenance": "typed in the inventory"}
    text = otpatch_child(home, "baseline", "show", "-i", str(ROOT / "inventory" / "lab.yml"))
    assert text.stdout.splitlines()[0].split() == ["HOST", "FIRMWARE", "FROM"]
    assert any(line.split()[:2] == ["lab-plc-1", "v03.20"] for line in text.stdout.splitlines())


def test_a_verified_run_updates_the_baseline_and_advisories_stop_flagging_it(home, lab):
    before = _flagged(home, lab.inventory)
    assert {"lab-plc-1", "staging-plc-1", "prod-plc-1"} <= set(before)  # v03.20 < SV4.10
    assert before["lab-plc-1"]["firmware_source"] == "typed"
    done = otpatch_child(home, "run", M580, "-i", str(lab.inventory), "--dry-run", "--stage",
                         "lab", "-e", "io_observe=1s", "--json", timeout=180)
    assert done.returncode == 0, done.stderr
    run_id = run_json(done)["run_id"]
    firmware = _baseline(home, lab.inventory)["lab-plc-1"]["firmware"]
    assert (firmware["value"], firmware["source"], firmware["run_id"]) == (
        "v04.30", "as_left", run_id)
    assert firmware["simulator"] and firmware["mode"] == "dry_run"
    assert f"verified as-left of run {run_id} (dry_run on a simulator" in firmware["provenance"]
    after = _flagged(home, lab.inventory)
    assert "lab-plc-1" not in after  # v04.30 is not below SV4.10
    assert {"staging-plc-1", "prod-plc-1"} <= set(after)  # not changed by the lab stage
    assert after["staging-plc-1"]["firmware_source"] == "typed"
    still = _flagged(home, lab.inventory, ICSA_21_194_02)["lab-plc-1"]  # all versions
    assert still["firmware"] == "v04.30" and still["firmware_source"].startswith(
        "firmware v04.30 from the baseline: verified as-left of run ")
    assert still["firmware_source"].endswith("the inventory types v03.20")
    assert still["reason"].startswith(still["firmware_source"])


def _check(home, inventory, *extra: str) -> tuple[int, dict]:
    """`baseline check --json`, its readings signed with this home's host key."""
    if not (home / "host.key").exists():
        home.mkdir(parents=True, exist_ok=True)
        made = otpatch_child(home, "keygen", "--host", "-o", str(home / "host.key"))
        assert made.returncode == 0, made.stderr
    done = otpatch_child(home, "baseline", "check", "-i", str(inventory), "--json", *extra,
                         timeout=120)
    assert done.stderr == "" and "Traceback" not in done.stdout
    return done.returncode, {h["host"]: h for h in json.loads(done.stdout)["hosts"]}


def test_a_firmware_changed_behind_otpatchs_back_is_drift(home, lab):
    """The simulated CPU's running firmware is set directly in the simulator, as a person
    at the engineering station would change it without a change record."""
    from otpatch.modules.m580.versions import FirmwareVersion

    code, hosts = _check(home, lab.inventory)
    assert code == 0, hosts
    assert hosts["lab-plc-1"]["status"] == "same"
    assert hosts["lab-plc-1"]["read"]["firmware"] == "v03.20"
    assert hosts["lab-mguard-1"]["status"] == "same"  # a simulator: mguard.version reads it
    lab.device("lab-plc-1").running = FirmwareVersion(4, 10)
    code, hosts = _check(home, lab.inventory)
    assert code == 1
    assert hosts["lab-plc-1"]["status"] == "drift"
    assert hosts["lab-plc-1"]["detail"].startswith(  # the first check's reading confirmed it
        "firmware v04.10 (baseline v03.20, read from the device on a simulator by baseline "
        "check r-")
    assert hosts["staging-plc-1"]["status"] == "same"
    text = otpatch_child(home, "baseline", "check", "-i", str(lab.inventory), timeout=120)
    assert text.returncode == 1 and "lab-plc-1" in text.stdout and " DRIFT " in text.stdout
    assert "1 of " in text.stdout.splitlines()[-1]
    # a drift is recorded, never taken up: the baseline still says v03.20 ...
    assert _baseline(home, lab.inventory)["lab-plc-1"]["firmware"]["value"] == "v03.20"
    # ... until the person checking accepts it, with the reason, in the signed record
    code, hosts = _check(home, lab.inventory, "--accept", "CR-1042: firmware fixed on site")
    assert code == 0 and hosts["lab-plc-1"]["status"] == "accepted"
    assert hosts["lab-plc-1"]["detail"].endswith("(drift accepted: CR-1042: firmware fixed "
                                                 "on site)")
    firmware = _baseline(home, lab.inventory)["lab-plc-1"]["firmware"]
    assert (firmware["value"], firmware["source"]) == ("v04.10", "device_read")
    code, hosts = _check(home, lab.inventory)
    assert code == 0 and hosts["lab-plc-1"]["status"] == "same"
    _site_record_signed(home, checks=5)


def _site_record_signed(home, checks: int) -> None:
    """Every check is one record of the site record, each ending in a checkpoint signed by
    the host key, and the whole file verifies."""
    from otpatch.engine import siterecord
    from otpatch.engine.anchor import trust_root

    found = siterecord.entries(home)
    records = {e.run_id for e in found if e.event_type == "baseline_reading"}
    signed = [e for e in found if e.event_type == "chain_checkpoint"]
    assert len(records) == checks and len(signed) == checks
    report = siterecord.verify(home)
    assert report.ok and trust_root(home / "host.key") is not None
    said = otpatch_child(home, "journal", "verify")
    assert said.returncode == 0, said.stderr
    assert f"site record ok: {len(found)} entries, hash chain intact; {checks} signed " \
           "checkpoint(s)" in said.stdout


REAL_PLANT = """all:
  hosts:
    plc-1: {otpatch_device: m580, vendor: Schneider Electric, model: Modicon M580,
            part_number: BMEP581020, firmware: v03.20, simulator: false,
            endpoints: {modbus: "127.0.0.1:PORT", enip: "127.0.0.1:PORT"}}
    fw-1: {otpatch_device: mguard, vendor: Phoenix Contact, model: FL MGUARD RS4000,
           firmware: 8.6.1, simulator: false, endpoints: {https: "127.0.0.1:PORT"}}
    ews-1: {otpatch_device: software, vendor: Schneider Electric,
            model: EcoStruxure Control Expert, firmware: "15.0"}
"""


def test_real_hosts_get_public_reads_only_and_others_say_why(home, tmp_path):
    """Real hosts (simulator: false) on a loopback port nothing listens on: the M580 is
    tried over its public reads and found unreachable; the mGuard is never asked (its
    version read is a guided step there); software is not a device to read."""
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inventory = tmp_path / "plant.yml"
    inventory.write_text(REAL_PLANT.replace("PORT", str(port)))
    code, hosts = _check(home, inventory)
    assert code == 0
    assert hosts["plc-1"]["status"] in ("unreachable", "failed"), hosts["plc-1"]
    assert hosts["fw-1"]["status"] == "not_read"
    assert "mguard.version is a guided step on a real device" in hosts["fw-1"]["detail"]
    assert hosts["ews-1"]["status"] == "not_read" and "software" in hosts["ews-1"]["detail"]


def _listener():
    """A plain TCP listener on a free loopback port: a service that answers."""
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    server.settimeout(0.2)
    return server


def _accepted(server) -> int:
    import socket

    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except (socket.timeout, TimeoutError):
            return count
        conn.close()
        count += 1


def test_a_service_turned_on_is_drift_and_production_is_never_probed(home, lab):
    """The lab CPU and the production CPU each get an `http` endpoint on a loopback port.
    Nothing listens on the lab one at the first check; then a listener starts there (a
    web server the change turned on). The production one has a listener all along, and
    must never be connected to: active checks are off by default in production."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        lab_port = s.getsockname()[1]
    prod = _listener()
    text = lab.inventory.read_text()
    for host, port in (("lab-plc-1", lab_port), ("prod-plc-1", prod.getsockname()[1])):
        at = text.index(f"{host}:")
        end = text.index("endpoints: {", at) + len("endpoints: {")
        text = text[:end] + f'http: "127.0.0.1:{port}", ' + text[end:]
    lab.inventory.write_text(text)
    try:
        code, hosts = _check(home, lab.inventory)
        assert code == 0, hosts
        assert hosts["lab-plc-1"]["services"]["80"] == {
            "service": "http", "state": "closed", "at": f"127.0.0.1:{lab_port}"}
        assert hosts["lab-plc-1"]["services"]["502"]["state"] == "open"
        assert hosts["lab-plc-1"]["services"]["21"]["state"] == "not_mapped"
        assert hosts["prod-plc-1"]["services"] is None
        assert "production host" in hosts["prod-plc-1"]["services_why"]
        web = socket.socket()
        web.bind(("127.0.0.1", lab_port))
        web.listen(4)
        try:
            code, hosts = _check(home, lab.inventory)
        finally:
            web.close()
        assert code == 1
        assert hosts["lab-plc-1"]["status"] == "drift"
        assert "TCP 80 (http) open now, closed in the baseline (check r-" in \
            hosts["lab-plc-1"]["detail"]
        assert hosts["staging-plc-1"]["status"] == "same"
        assert _accepted(prod) == 0  # the production host was never connected to
    finally:
        prod.close()


def test_post_change_findings_against_the_as_found_and_the_site_policy():
    """probe.findings: what the post-change check says, as data."""
    from otpatch.modules.services.probe import findings

    def ports(**states):
        return {p.lstrip("p"): {"service": {"p80": "http", "p502": "modbus",
                                            "p21": "ftp"}[p], "state": s}
                for p, s in states.items()}

    cases = [
        (ports(p80="open", p502="open"), ports(p80="closed", p502="open"), None,
         ["TCP 80 (http) open now, closed as found: the change turned a service on"]),
        (ports(p502="closed"), ports(p502="open"), None,
         ["TCP 502 (modbus) closed now, open as found: the change turned a service off"]),
        (ports(p21="open", p502="open"), None, [502],
         ["TCP 21 (ftp) open, not among the services the site policy allows (502)"]),
        (ports(p502="open"), ports(p502="open"), [502], []),
        (ports(p80="not_mapped"), ports(p80="closed"), None, []),
    ]
    for now, before, allowed, expected in cases:
        assert findings(now, before, allowed) == expected, (now, before, allowed)
