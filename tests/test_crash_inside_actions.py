"""Crash tests inside device actions: real child processes running the shipped procedures'
dry runs are SIGKILLed at random instants (mid-transfer, mid-reboot, mid-restore,
mid-install, mid-import, between steps), and about half of their resumes are killed again
while they wait on a moving device. Every trial must end as an uninterrupted run of the same
scenario ends (status, path of states, device state), with no device action done twice.

Where a kill lands: OTPATCH_FAULT_KILL_POLL=N (modules/polling.py) kills at the N-th wait
interval of the process, a simulated instant inside a module's wait loop; OTPATCH_FAULT_KILL
(engine/journal.py) kills at a commit, some of them the one that records a device step's
result (the action done, its result lost). Where it landed is read from the simulated
devices at that instant. One simulator lab per procedure, reset between trials; the seed
(OTPATCH_CRASH_SEED to choose another) and the figures are printed."""
from __future__ import annotations

import io
import os
import random
import socket
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from otpatch.engine import runs
from otpatch.engine.display import PlainDisplay
from otpatch.engine.journal import Journal
from otpatch.engine.record import FINAL
from otpatch.engine.simlab import start_lab
from otpatch.modules import polling, registry
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.device import SimulatedCpu
from otpatch.modules.mguard import atv
from otpatch.modules.mguard.simdevice import MguardDevice

from conftest import ROOT, otpatch_child, run_json

SEED = int(os.environ.get("OTPATCH_CRASH_SEED", "20261126"))
KILLS = 30  # at least this many SIGKILLs per procedure
MAX_TRIALS = 40  # bounds the loop whatever the draws
RESUME_KILLED = 0.5  # the share of first resumes killed too (at one of their first polls)
RESUME_POLLS = 30
COMMIT_KILLS = 0.3  # the share of first kills at a journal commit rather than inside a wait
INSIDE_ACTIONS = 0.7  # of the kills inside a wait, the share aimed at a device mid-action

PROCEDURES = {
    "m580": ("playbooks/m580-firmware-update.yml",
             [(), ("hash_mismatch",), ("transfer_abort",), ("reboot_hang",)]),
    "mguard": ("playbooks/mguard-firmware-update.yml",
               [(), ("syslog_gap",), ("syslog_gap", "profile_import_drops_rules")]),
}


@dataclass
class Reference:
    """An uninterrupted run of one scenario, and where its kills can be placed."""

    status: str
    path: list[str]
    devices: dict
    actions: dict
    polls: list[str]  # where each wait interval of the run stands (landed), in order
    commits: int
    result_commits: list[int]  # commits that record a device-changing step's result


@dataclass
class Figures:
    trials: int = 0
    kills: int = 0
    landed: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    waited_on_moving: int = 0  # resumes whose read-back found the device still moving
    double_actions: int = 0


# -- the devices ------------------------------------------------------------------------------

def device_state(lab) -> dict:
    """What an operator would check on every simulated CPU and firewall afterwards."""
    out = {}
    for name in lab.hosts:
        device = lab.device(name)
        if isinstance(device, SimulatedCpu):
            out[name] = {**device.registers(), "sha256": device.reported_sha256}
        elif isinstance(device, MguardDevice):
            with device.lock:
                out[name] = {"firmware": device.firmware, "phase": device.phase,
                             "profile": atv.dump(device.config),
                             "rules_active": device.rules_active(),
                             "restoring": device.restoring()}
    return out


def actions(lab) -> dict:
    """How often each device was asked to change: transfers, restores, installs, imports."""
    out = {}
    for name in lab.hosts:
        device = lab.device(name)
        if isinstance(device, SimulatedCpu):
            out[name] = {"transfers": device.transfers, "restores": device.restores}
        elif isinstance(device, MguardDevice):
            out[name] = {"installs": device.installs, "imports": device.imports}
    return out


def landed(lab) -> str:
    """Where a kill landed, read from the devices at that simulated instant."""
    for name in lab.hosts:
        device = lab.device(name)
        if isinstance(device, SimulatedCpu):
            device.timeline.settle()
            if device.state == R.CpuState.UPDATING:
                return ("mid-transfer" if device.transfer_state == R.TransferState.IN_PROGRESS
                        else "mid-restore")
            if device.state == R.CpuState.REBOOTING:
                return "mid-reboot"
        elif isinstance(device, MguardDevice):
            if device.phase == "installing":
                return "mid-install"
            if device.phase == "rebooting":
                return "mid-reboot"
            if device.restoring():
                return "mid-import"
    return "between steps"


# -- the runs ---------------------------------------------------------------------------------

def run_args(playbook: str, lab, params: dict) -> list[str]:
    extra = [a for k, v in params.items() for a in ("-e", f"{k}={v}")]
    return ["run", str(ROOT / playbook), "-i", str(lab.inventory), "--dry-run", "--json", *extra]


def reference(lab, playbook: str, faults: tuple, params: dict, home: Path) -> Reference:
    """The scenario run once, uninterrupted and in process, its polls and commits counted."""
    lab.reset(faults)
    ends: list[int] = []  # per commit: the seq of the newest entry it made durable
    flush = Journal.flush

    def counting_flush(journal: Journal) -> None:
        before = journal.commits
        flush(journal)
        if journal.commits != before:
            ends.append(journal.entries()[-1].seq)

    polls: list[str] = []  # the N-th entry: where OTPATCH_FAULT_KILL_POLL=N would land
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(polling, "_kill_if_asked", lambda: polls.append(landed(lab)))
        mp.setattr(Journal, "flush", counting_flush)
        progress = runs.start(str(ROOT / playbook), str(lab.inventory), "dry_run", params,
                              home, PlainDisplay(io.StringIO()))
    with Journal.open(home, create=False) as journal:
        entries = {e.seq: e for e in journal.entries(progress.run_id)}
    spans = zip([0, *ends[:-1]], ends)  # commit n made entries first+1 .. last durable
    result_commits = [n for n, (first, last) in enumerate(spans, 1)
                      if any(_device_result(entries.get(seq)) for seq in range(first + 1,
                                                                               last + 1))]
    return Reference(progress.status.value, [v.state for v in progress.path],
                     device_state(lab), actions(lab), polls, len(ends), result_commits)


def _device_result(entry) -> bool:
    return (entry is not None and entry.event_type == "step_result"
            and registry.get(entry.payload["module"]).changes_device)


def first_kill(rng: random.Random, ref: Reference) -> dict[str, str]:
    if rng.random() >= COMMIT_KILLS:  # inside a wait: mostly one on a device mid-action
        inside = [n for n, where in enumerate(ref.polls, 1) if where != "between steps"]
        pick = rng.choice(inside) if inside and rng.random() < INSIDE_ACTIONS else \
            rng.randint(1, len(ref.polls))
        return {polling.FAULT_KILL_POLL_ENV: str(pick)}
    if ref.result_commits and rng.random() < 0.6:  # the action done, its result lost
        return {"OTPATCH_FAULT_KILL": f"before:{rng.choice(ref.result_commits)}"}
    return {"OTPATCH_FAULT_KILL": f"{rng.choice(['before', 'after'])}:"
                                  f"{rng.randint(1, ref.commits)}"}


def only_run(home: Path) -> str | None:
    if not (home / "journal.sqlite").exists():
        return None
    with Journal.open(home, create=False) as journal:
        listed = journal.runs()
    return listed[0].run_id if listed else None


def trial(lab, playbook: str, params: dict, ref: Reference, rng: random.Random, home: Path,
          figures: Figures) -> None:
    """One run killed where `rng` says, resumed (that resume maybe killed too) until it
    ends; then compared with the uninterrupted run."""
    figures.trials += 1
    child = otpatch_child(home, *run_args(playbook, lab, params), **first_kill(rng, ref))
    killed_resume = False
    while child.returncode == -9:
        figures.kills += 1
        figures.landed[("resume " if killed_resume else "") + landed(lab)] += 1
        run_id = only_run(home)
        if run_id is None:  # killed before the run was recorded: nothing ran, start it again
            child = otpatch_child(home, *run_args(playbook, lab, params))
            continue
        if runs.view(run_id, home).status in FINAL:  # killed after its last commit
            break
        kill = {}
        if not killed_resume and rng.random() < RESUME_KILLED:
            kill = {polling.FAULT_KILL_POLL_ENV: str(rng.randint(1, RESUME_POLLS))}
            killed_resume = True
        child = otpatch_child(home, "resume", run_id, "--json", **kill)
    if child.returncode != -9:
        assert child.returncode in (0, 1), child.stderr
        run_json(child)
    run_id = only_run(home)
    progress = runs.view(run_id, home)
    got = (progress.status.value, [v.state for v in progress.path])
    figures.outcomes["as uninterrupted" if got == (ref.status, ref.path) else
                     f"{got[0]} (expected {ref.status})"] += 1
    assert got == (ref.status, ref.path), (progress.message, child.stderr[-2000:])
    assert device_state(lab) == ref.devices
    done = actions(lab)
    figures.double_actions += sum(max(0, n - ref.actions[host][what])
                                  for host, counts in done.items()
                                  for what, n in counts.items())
    assert done == ref.actions, "a device action done twice or left out"
    with Journal.open(home, create=False) as journal:
        assert journal.verify().ok
        figures.waited_on_moving += sum(1 for e in journal.entries(run_id)
                                        if e.event_type == "read_back"
                                        and e.payload.get("moving"))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("procedure", PROCEDURES)
def test_random_kills_inside_device_actions_end_as_uninterrupted_runs(tmp_path, capsys,
                                                                       procedure):
    playbook, scenarios = PROCEDURES[procedure]
    rng = random.Random(f"{SEED}:{procedure}")
    port = free_udp_port()
    params = ({"syslog_port": str(port), "syslog_bind": "127.0.0.1"}
              if procedure == "mguard" else {})
    per_scenario: dict[tuple, Figures] = {faults: Figures() for faults in scenarios}
    with start_lab(ROOT / "inventory" / "lab.yml", ephemeral=True, out_dir=tmp_path / "lab",
                   syslog_to=f"127.0.0.1:{port}") as lab:
        refs = {faults: reference(lab, playbook, faults, params, tmp_path / f"ref-{i}")
                for i, faults in enumerate(scenarios)}
        for n in range(MAX_TRIALS):
            if sum(f.kills for f in per_scenario.values()) >= KILLS:
                break
            faults = scenarios[n % len(scenarios)]
            lab.reset(faults)
            trial(lab, playbook, params, refs[faults], rng, tmp_path / f"trial-{n}",
                  per_scenario[faults])
    with capsys.disabled():
        print(f"\ncrash inside device actions, {procedure} (seed {SEED}):")
        for faults, f in per_scenario.items():
            ref = refs[faults]
            print(f"  faults {','.join(faults) or 'none'} -> {ref.status}: {f.trials} trials, "
                  f"{f.kills} kills, landed {dict(sorted(f.landed.items()))}; outcomes "
                  f"{dict(f.outcomes)}; read-backs that waited on a moving device "
                  f"{f.waited_on_moving}; double actions {f.double_actions}")
    total = sum(f.kills for f in per_scenario.values())
    assert total >= KILLS, f"only {total} kills in {MAX_TRIALS} trials"
    assert all(f.double_actions == 0 for f in per_scenario.values())


@pytest.mark.slow
def test_a_resume_killed_while_it_waits_on_a_moving_cpu_is_resumed_again(tmp_path):
    """Killed at 15 % of the lab transfer, the resume finds the CPU still updating and
    waits; killed too, ten polls into that wait; the next resume waits out the rest, reads
    the CPU back (the image's SHA-256 checked) and goes on: one transfer per CPU."""
    playbook = PROCEDURES["m580"][0]
    with start_lab(ROOT / "inventory" / "lab.yml", ephemeral=True,
                   out_dir=tmp_path / "lab") as lab:
        ref = reference(lab, playbook, (), {}, tmp_path / "ref")
        at = ref.polls.index("mid-transfer") + 15  # 15 x 5 s of the 8-minute transfer
        lab.reset(())
        home, cpu = tmp_path / "home", lab.device("lab-plc-1")
        first = otpatch_child(home, *run_args(playbook, lab, {}),
                              **{polling.FAULT_KILL_POLL_ENV: str(at)})
        assert first.returncode == -9 and landed(lab) == "mid-transfer"
        assert cpu.registers()[R.TRANSFER_PROGRESS] == 15
        run_id = only_run(home)
        again = otpatch_child(home, "resume", run_id, **{polling.FAULT_KILL_POLL_ENV: "10"})
        assert again.returncode == -9 and cpu.registers()[R.TRANSFER_PROGRESS] == 26
        done = run_json(otpatch_child(home, "resume", run_id, "--json"))
        assert (done["status"], [v["state"] for v in done["path"]]) == (ref.status, ref.path)
        assert actions(lab) == ref.actions and device_state(lab) == ref.devices
    with Journal.open(home, create=False) as journal:
        entries = journal.entries(run_id)
    (back,) = [e.payload for e in entries if e.event_type == "read_back"]
    assert (back["module"], back["state"], back["applied"]) == (
        "m580.firmware_transfer", "lab_transfer", True)
    assert back["moving"] == "lab-plc-1: UPDATING, transfer in_progress (26 %)"
    assert back["waited"] == 8 * 60 - 25 * 5  # what was left of the transfer
    assert "the device's SHA-256 matches" in back["result"]["msg"]
    (result,) = [e.payload for e in entries if e.event_type == "step_result"
                 and e.payload.get("reverified")]
    assert result["state"] == "lab_transfer" and not result["result"]["failed"]


@pytest.mark.slow
def test_a_firewall_back_with_another_certificate_halts_saying_what_it_saw(tmp_path):
    """Killed after the install started, before its result was recorded: the resume waits
    through the install and the reboot, then meets a certificate it does not trust. It
    cannot tell what the device runs without sending the password to it, so it halts (an
    uninterrupted run halts too, in lab_restore, its profile import refused the same way)."""
    playbook, port = PROCEDURES["mguard"][0], free_udp_port()
    params = {"syslog_port": str(port), "syslog_bind": "127.0.0.1"}
    faults = ("https_cert_changed",)
    with start_lab(ROOT / "inventory" / "lab.yml", ephemeral=True, out_dir=tmp_path / "lab",
                   syslog_to=f"127.0.0.1:{port}") as lab:
        ref = reference(lab, playbook, faults, params, tmp_path / "ref")
        assert ref.status == "halted" and ref.path[-1] == "lab_restore"
        lab.reset(faults)
        home = tmp_path / "home"
        killed = otpatch_child(home, *run_args(playbook, lab, params),
                               OTPATCH_FAULT_KILL=f"before:{ref.result_commits[0]}")
        assert killed.returncode == -9 and landed(lab) == "mid-install"
        done = run_json(otpatch_child(home, "resume", only_run(home), "--json"))
        assert actions(lab) == {**ref.actions, "lab-mguard-1": {"installs": 1, "imports": 0}}
        assert lab.device("lab-mguard-1").firmware == "8.9.3"
    assert done["status"] == "halted" and done["state"] == "lab_update"
    assert done["message"].startswith("cannot tell whether 'mguard.firmware_update' took "
                                      "effect after waiting 3m (cannot tell: lab-mguard-1: "
                                      "the HTTPS certificate of https://127.0.0.1:")
    assert "is not trusted" in done["message"] and "Nothing was sent" in done["message"]
