"""The fleet rollout over real simulated sites (issue 17): each site an `ansible_connection:
local` host with its own otpatch inventory, OTPATCH_HOME and simulators (one M580 CPU, one
mGuard) on free loopback ports; `otpatch fleet run` with the shipped fleet/rollout.yml and
the otpatch.fleet collection, real ansible-runner, real site runs. Batches as `serial` says,
a failure at one site stops the later batches, a deferred site does not, an observing site
never runs, check mode touches no simulator (it runs with them stopped), and the fleet
journal verifies and names every site run."""
from __future__ import annotations

import json
import os

import pytest

from conftest import otpatch_child
from otpatch.engine.runview import entries_of
from fleet_sites import SITE_CHECK, simulated_fleet, window_now


FOUR = ["site-1", "site-2", "site-3", "site-4"]
GROUPS = {"canary": ["site-1"], "wave1": ["site-2", "site-3"], "wave2": ["site-4"]}


def fleet_run(home, fleet, *args, **env):
    return otpatch_child(home, "fleet", "run", str(fleet.inventory), str(SITE_CHECK), *args,
                         timeout=240, OTPATCH_LAB_MGUARD_PASSWORD=os.environ[
                             "OTPATCH_LAB_MGUARD_PASSWORD"], **env)


def report(home):
    done = otpatch_child(home, "fleet", "report", "--json")
    assert done.returncode == 0, done.stderr
    return {s["site"]: s for s in json.loads(done.stdout)["sites"]}


def site_runs(fleet, site):
    """The runs the site's own journal holds (`otpatch status --json` at the site)."""
    _, home = fleet.sites[site]
    if not (home / "journal.sqlite").exists():
        return []
    done = otpatch_child(home, "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["runs"]


def test_sites_run_in_serial_batches_and_the_fleet_journal_names_every_site_run(
        home, tmp_path):
    with simulated_fleet(tmp_path / "fleet", FOUR, GROUPS,
                         extra_vars={"site-3": {"otpatch_fleet_mode": "observe"}}) as fleet:
        done = fleet_run(home, fleet)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "batch 3" in done.stdout and "site-4: Run (or resume) the pinned procedure at the site: ok -> completed" in done.stdout
        got = report(home)
        # serial [1, 2, "25%", "100%"] over 4 sites: 1, 2, then 25% of 4 (1)
        assert {s: got[s]["batch"] for s in FOUR} == {"site-1": 1, "site-2": 2, "site-3": 2,
                                                      "site-4": 3}
        assert got["site-3"]["state"] == "observed" and site_runs(fleet, "site-3") == []
        for site in ("site-1", "site-2", "site-4"):
            (run,) = site_runs(fleet, site)
            assert (got[site]["state"], got[site]["site_run_id"]) == ("completed",
                                                                      run["run_id"]), site
            assert run["status"] == "completed" and run["mode"] == "dry_run"
            assert got[site]["record"] and got[site]["journal_head"]["seq"] > 0
            _, site_home = fleet.sites[site]
            verified = otpatch_child(site_home, "journal", "verify", "--json")
            assert verified.returncode == 0 and json.loads(verified.stdout)["ok"], site
    verified = otpatch_child(home, "journal", "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["fleet_journal"]["ok"] is True
    from otpatch.engine.fleetjournal import entries

    named = {e.payload.get("site_run_id") for e in entries(home)} - {None}
    assert named == {got[s]["site_run_id"] for s in ("site-1", "site-2", "site-4")}


def test_a_failing_site_stops_the_later_batches(home, tmp_path):
    """site-2's CPU runs v03.10, the procedure requires v03.20: its run fails there (not
    before it), site-3 in the same batch finishes, site-4 is never reached."""
    with simulated_fleet(tmp_path / "fleet", FOUR, GROUPS,
                         cpu_firmware={"site-2": "v03.10"}) as fleet:
        done = fleet_run(home, fleet)
        assert done.returncode == 1, done.stdout + done.stderr
        got = report(home)
        assert got["site-2"]["failed"] and got["site-2"]["state"] == "aborted", got["site-2"]
        (run,) = site_runs(fleet, "site-2")
        assert run["status"] == "aborted" and "v03.10" in run["message"]
        assert got["site-3"]["state"] == "completed" and got["site-3"]["batch"] == 2
        assert (got["site-4"]["state"], got["site-4"]["batch"]) == ("not reached", None)
        assert site_runs(fleet, "site-4") == []


def test_a_deferred_site_does_not_stop_the_rollout(home, tmp_path):
    """site-2's window opens tomorrow: it is deferred (not failed, no run started), and the
    later batches go on."""
    tomorrow = window_now(hours_before=-24, hours_after=28)
    with simulated_fleet(tmp_path / "fleet", FOUR, GROUPS,
                         windows={"site-2": tomorrow}) as fleet:
        done = fleet_run(home, fleet)
        assert done.returncode == 0, done.stdout + done.stderr
        got = report(home)
        assert (got["site-2"]["state"], got["site-2"]["failed"]) == ("deferred", False)
        assert "is not open at" in got["site-2"]["msg"] and site_runs(fleet, "site-2") == []
        assert all(got[s]["state"] == "completed" for s in ("site-1", "site-3", "site-4"))


def test_check_mode_plans_at_every_site_and_touches_no_simulator(home, tmp_path):
    """The simulators are stopped before the check run: had any site reached a device it
    would have failed. A dry run without them fails at the canary (so the check can fail)."""
    with simulated_fleet(tmp_path / "fleet", FOUR, GROUPS) as fleet:
        fleet.lab.stop()
        done = fleet_run(home, fleet, "--check")
        assert done.returncode == 0, done.stdout + done.stderr
        got = report(home)
        assert {got[s]["state"] for s in FOUR} == {"planned"}
        assert all(site_runs(fleet, s) == [] for s in FOUR)  # nothing journaled
        again = fleet_run(home, fleet)
        assert again.returncode == 1
        assert report(home)["site-1"]["failed"]


def test_execute_stops_for_the_sign_offs_and_resumes_the_site_run_once_signed(
        home, tmp_path, site_register):
    """An execute rollout: the canary's run waits at its sign-off gate, so the rollout stops
    there with the roles missing (site-2 is not reached); the approvers sign at the site,
    and the next fleet run resumes that same site run (not a new one); that resume is
    killed inside the site run, and the fleet run after it resumes the interrupted run to
    completion, then stops at site-2's gate."""
    sites = ["site-1", "site-2"]
    with simulated_fleet(tmp_path / "fleet", sites,
                         {"canary": ["site-1"], "wave1": ["site-2"]}) as fleet:
        for inventory, _ in fleet.sites.values():
            site_register.sign(inventory)
        done = fleet_run(home, fleet, "--execute", "--operator", "Chen Wei")
        assert done.returncode == 1, done.stdout + done.stderr
        got = report(home)
        assert (got["site-1"]["state"], got["site-1"]["failed"]) == ("awaiting_signoff", True)
        assert "process_owner, ot_security_officer" in got["site-1"]["msg"]
        assert got["site-2"]["state"] == "not reached"
        paused = got["site-1"]["site_run_id"]
        inventory, site_home = fleet.sites["site-1"]
        status = otpatch_child(site_home, "fleet", "site-status", "-i", str(inventory), "--json")
        (pending,) = json.loads(status.stdout)["pending_signoffs"]
        assert (pending["run_id"], pending["gate"], pending["missing_roles"]) == (
            paused, "identity", ["process_owner", "ot_security_officer"])
        for person, role in (("alice-chen", "process_owner"),
                             ("bernd-maier", "ot_security_officer")):
            signed = otpatch_child(site_home, "approve", paused, "--role", role, "--key",
                                   str(site_register.keys[person]), "--reason",
                                   "fleet identity check, change 4711")
            assert signed.returncode == 0, signed.stdout + signed.stderr
        # the resume is killed at its third journal commit: past the gate, between the
        # identity state's steps
        killed = fleet_run(home, fleet, "--execute", "--operator", "Chen Wei",
                           OTPATCH_FAULT_KILL=f"after:3@{site_home}")
        assert killed.returncode == 1, killed.stdout + killed.stderr
        assert report(home)["site-1"]["failed"] and report(home)["site-2"]["state"] == \
            "not reached"
        (cut,) = site_runs(fleet, "site-1")
        assert (cut["run_id"], cut["status"]) == (paused, "interrupted")
        kinds = [e.event_type for e in entries_of(site_home, paused)]
        assert kinds[-3:] == ["requirement", "transition", "step_result"], kinds  # 1 of 3 steps
        again = fleet_run(home, fleet, "--execute", "--operator", "Chen Wei")
        assert again.returncode == 1, again.stdout + again.stderr
        got = report(home)
        assert (got["site-1"]["state"], got["site-1"]["site_run_id"]) == ("completed", paused)
        assert [r["run_id"] for r in site_runs(fleet, "site-1")] == [paused]
        assert got["site-2"]["state"] == "awaiting_signoff"


def test_a_site_host_with_only_the_cli_runs_through_otpatch_json(home, tmp_path):
    """site-2's module runs under a Python without otpatch (the machine's own python3): it
    reaches the site's otpatch through its CLI (`otpatch fleet site-status|site-rollout
    --json`, the `cli` option), with the same result as site-1's, which imports it."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    bare = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else shutil.which("python3")
    assert bare and subprocess.run([bare, "-c", "import otpatch"],
                                   capture_output=True).returncode != 0, \
        f"{bare} imports otpatch: it cannot stand for a site host without the API"
    cli = str(Path(sys.executable).parent / "otpatch")
    with simulated_fleet(tmp_path / "fleet", ["site-1", "site-2"],
                         {"canary": ["site-1"], "wave1": ["site-2"]},
                         extra_vars={"site-2": {"ansible_python_interpreter": bare,
                                                "otpatch_cli": cli}}) as fleet:
        done = fleet_run(home, fleet)
        assert done.returncode == 0, done.stdout + done.stderr
        got = report(home)
        for site in ("site-1", "site-2"):
            (run,) = site_runs(fleet, site)
            assert (got[site]["state"], got[site]["site_run_id"]) == ("completed",
                                                                      run["run_id"]), site
            assert got[site]["journal_head"]["seq"] == got["site-1"]["journal_head"]["seq"]
            # site_status on its own, ad hoc, through the API (site-1) and the CLI (site-2)
            status = site_status_adhoc(home, fleet, site)
            assert status["journal"]["head"] == got[site]["journal_head"], site
            assert status["journal"]["verified"] is True and status["resumable"] == []
            read = status["firmware"][f"{site}-plc"]
            assert (read["firmware"], read["source"], read["run_id"], read["simulator"]) == (
                "v03.20", "as_left", run["run_id"], True), site


def site_status_adhoc(home, fleet, site):
    """`ansible SITE -m otpatch.fleet.site_status` over the fleet inventory: the module's
    result, as ad-hoc output prints it (`SITE | SUCCESS => {...}`)."""
    import subprocess
    import sys
    from pathlib import Path

    from conftest import ROOT, child_env

    env = child_env(home, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "ansible" / "collections"),
                    ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(home / "ansible-tmp"),
                    PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    done = subprocess.run(["ansible", site, "-i", str(fleet.inventory), "-m",
                           "otpatch.fleet.site_status", "-a",
                           "inventory={{ otpatch_site }} home={{ otpatch_home }} "
                           "cli={{ otpatch_cli | default(omit) }}"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    said, _, result = done.stdout.partition(" => ")
    assert said.strip() == f"{site} | SUCCESS", done.stdout
    return json.loads(result)


def test_a_site_whose_device_misses_the_target_version_stops_the_rollout(home, tmp_path):
    """The post-task: the fleet's target versions (otpatch_target_versions) against the
    firmware the site read; site-1's CPU is not at v03.30, so the canary fails after its
    run completed and site-2 is not reached."""
    with simulated_fleet(tmp_path / "fleet", ["site-1", "site-2"],
                         {"canary": ["site-1"], "wave1": ["site-2"]},
                         extra_vars={s: {"otpatch_target_versions": {f"{s}-plc": "v03.30"}}
                                     for s in ("site-1", "site-2")}) as fleet:
        done = fleet_run(home, fleet)
        assert done.returncode == 1, done.stdout + done.stderr
        got = report(home)
        assert got["site-1"]["failed"] and "reads v03.20, the target is v03.30" in \
            got["site-1"]["msg"], got["site-1"]
        assert got["site-2"]["state"] == "not reached"


def site_rollout(fleet, site, *args):
    inventory, site_home = fleet.sites[site]
    done = otpatch_child(site_home, "fleet", "site-rollout", str(SITE_CHECK), "-i",
                         str(inventory), "--json", *args,
                         OTPATCH_LAB_MGUARD_PASSWORD=os.environ["OTPATCH_LAB_MGUARD_PASSWORD"])
    return done.returncode, json.loads(done.stdout)


def test_the_site_side_defers_refuses_and_observes_before_any_run(tmp_path):
    """What site_rollout returns, from the site's CLI (`otpatch fleet site-rollout --json`):
    a window with 1 minute left is too short for the 2-minute state's worst case
    (deferred), a playbook the fleet pinned otherwise is refused, an observing site starts
    nothing; none of them journals a run. Then the same site runs."""
    short = window_now(hours_before=1, hours_after=1 / 60)
    with simulated_fleet(tmp_path / "fleet", ["site-1"], {"canary": ["site-1"]},
                         windows={"site-1": short}) as fleet:
        rc, got = site_rollout(fleet, "site-1")
        assert (rc, got["state"], got["failed"]) == (0, "deferred", False), got
        assert "left, the path from identity needs" in got["msg"]
        rc, got = site_rollout(fleet, "site-1", "--playbook-sha256", "sha256:" + "0" * 64)
        assert (rc, got["state"]) == (1, "refused") and "the fleet pinned sha256:000" in \
            got["msg"]
        rc, got = site_rollout(fleet, "site-1", "--fleet-mode", "observe")
        assert (rc, got["state"], got.get("run_id")) == (0, "observed", None)
        # what it observed: site_status's facts (no journal yet, its window open)
        assert (got["journal"]["head"], got["journal_head"]) == (None, None)
        assert got["windows"]["production"]["open"] is True and got["resumable"] == []
        assert site_runs(fleet, "site-1") == []
    with simulated_fleet(tmp_path / "again", ["site-1"], {"canary": ["site-1"]}) as fleet:
        rc, got = site_rollout(fleet, "site-1")
        (run,) = site_runs(fleet, "site-1")
        assert (rc, got["state"], got["run_id"]) == (0, "completed", run["run_id"])
        assert {d["host"]: d["outcome"] for d in got["devices"]} == {
            "site-1-plc": "not_changed", "site-1-mguard": "not_changed"}
