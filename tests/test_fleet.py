"""The fleet layer (issue 17, items 2-3): `otpatch fleet run` schedules sites with Ansible
(real ansible-runner, `ansible_connection: local` hosts), journals every site event in the
fleet journal, and `fleet status` / `fleet report` read it back. First with a stand-in
rollout whose task only reports (the fleet layer alone: batches as `serial` says, the stop
at a failure, the journal); bad fleet inventories are one line, exit 2."""
from __future__ import annotations

import json

import pytest

from conftest import FIXTURES, ROOT, otpatch_child, run_json

STAND_IN = str(FIXTURES / "fleet_layer" / "rollout-stand-in.yml")
SITE_CHECK = str(ROOT / "fleet" / "site-check.yml")


def fleet_inventory(tmp_path, sites: dict[str, dict], groups: dict[str, list[str]]) -> str:
    """A fleet inventory: each site an `ansible_connection: local` host, groups in order."""
    import sys

    import yaml  # PyYAML comes with ansible-core

    body = {"all": {"vars": {"ansible_connection": "local",
                             "ansible_python_interpreter": sys.executable},
                    "children": {g: {"hosts": {h: sites[h] for h in hosts}}
                                 for g, hosts in groups.items()}}}
    path = tmp_path / "fleet.yml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return str(path)


def stand_in_sites(tmp_path, n: int, failing: str | None = None) -> dict[str, dict]:
    return {f"site-{i}": {"otpatch_site": str(tmp_path / f"site-{i}.yml"),
                          "otpatch_home": str(tmp_path / f"home-{i}"),
                          "otpatch_fleet_mode": "execute",
                          **({"stand_in_state": "rolled_back"} if f"site-{i}" == failing
                             else {})}
            for i in range(1, n + 1)}


def report(home, *args):
    done = otpatch_child(home, "fleet", "report", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


GROUPS = {"canary": ["site-1"], "wave1": ["site-2", "site-3"],
          "wave2": ["site-4", "site-5", "site-6", "site-7"]}


def test_batches_follow_serial_and_every_site_event_is_journaled(home, tmp_path):
    inventory = fleet_inventory(tmp_path, stand_in_sites(tmp_path, 7), GROUPS)
    done = otpatch_child(home, "fleet", "run", inventory, SITE_CHECK, "--rollout", STAND_IN,
                         timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    got = report(home)
    assert got["status"] == "successful" and got["check"] is False
    # serial [1, 2, "25%", "100%"] over 7 sites: 1, then 2, then 25% of 7 (1), then the rest
    assert {s["site"]: s["batch"] for s in got["sites"]} == {
        "site-1": 1, "site-2": 2, "site-3": 2, "site-4": 3, "site-5": 4, "site-6": 4,
        "site-7": 4}
    assert got["playbook_sha256"].startswith("sha256:")
    verified = otpatch_child(home, "journal", "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    fleet = json.loads(verified.stdout)["fleet_journal"]
    assert fleet["ok"] is True and fleet["entries_checked"] >= 2 + 2 * 7  # start, end, tasks
    status = otpatch_child(home, "fleet", "status")
    assert status.returncode == 0 and got["fleet_run"] in status.stdout


def test_a_failure_at_a_site_stops_the_later_batches(home, tmp_path):
    inventory = fleet_inventory(tmp_path, stand_in_sites(tmp_path, 7, failing="site-2"),
                                GROUPS)
    done = otpatch_child(home, "fleet", "run", inventory, SITE_CHECK, "--rollout", STAND_IN,
                         timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    got = {s["site"]: s for s in report(home)["sites"]}
    assert got["site-2"]["failed"] and "rolled_back" in got["site-2"]["msg"]
    assert got["site-3"]["batch"] == 2 and not got["site-3"]["failed"]  # its batch finished
    for later in ("site-4", "site-5", "site-6", "site-7"):
        assert (got[later]["state"], got[later]["batch"]) == ("not reached", None), later
    text = otpatch_child(home, "fleet", "report").stdout
    assert "site-4           no batch not reached" in text


@pytest.mark.parametrize("change,fragment", [
    (lambda s: s["site-2"].pop("otpatch_home"), "site site-2: otpatch_home must be set"),
    (lambda s: s["site-3"].update(otpatch_fleet_mode="run"),
     "site site-3: otpatch_fleet_mode 'run': expected one of observe, execute"),
], ids=["no home", "bad fleet mode"])
def test_a_bad_fleet_inventory_is_one_line(home, tmp_path, change, fragment):
    sites = stand_in_sites(tmp_path, 3)
    change(sites)
    inventory = fleet_inventory(tmp_path, sites, {"canary": ["site-1"],
                                                  "wave1": ["site-2", "site-3"]})
    done = otpatch_child(home, "fleet", "run", inventory, SITE_CHECK, "--rollout", STAND_IN)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    (line,) = done.stderr.splitlines()
    assert fragment in line, line
    assert not (home / "fleet").exists()  # nothing journaled


def test_the_job_runs_through_ansible_runner_transmit_worker_process(home, tmp_path):
    """The stream AWX sends over receptor, without AWX: the fleet host transmits the job,
    `ansible-runner worker` (here a local process; at a plant, the execution node in its OT
    DMZ) runs it, and the events processed back here are journaled as a local run's are."""
    import sys
    from pathlib import Path

    worker = Path(sys.executable).parent / "ansible-runner"
    inventory = fleet_inventory(tmp_path, stand_in_sites(tmp_path, 3),
                                {"canary": ["site-1"], "wave1": ["site-2", "site-3"]})
    done = otpatch_child(home, "fleet", "run", inventory, SITE_CHECK, "--rollout", STAND_IN,
                         "--worker", f"{worker} worker", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    got = report(home)
    assert got["status"] == "successful"
    assert {s["site"]: s["batch"] for s in got["sites"]} == {"site-1": 1, "site-2": 2,
                                                              "site-3": 2}
    runs = sorted((home / "fleet" / "runs").iterdir())
    assert (runs[-1] / "job" / "project" / "rollout-stand-in.yml").is_file()  # what was sent
    assert any((runs[-1] / "processed").rglob("job_events"))  # what came back


def test_an_execute_rollout_names_its_operator(home, tmp_path):
    inventory = fleet_inventory(tmp_path, stand_in_sites(tmp_path, 1), {"canary": ["site-1"]})
    done = otpatch_child(home, "fleet", "run", inventory, SITE_CHECK, "--execute")
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    assert done.stderr.strip() == ("otpatch: fleet run --execute needs --operator NAME: each "
                                   "site checks its sign-offs against the person who runs "
                                   "the change")
    assert not (home / "fleet").exists()
