"""Several processes on one OTPATCH_HOME at once: no journal write transaction spans a step,
so a run waiting inside a long step never locks out another run, `status` or `verify`."""
from __future__ import annotations

import subprocess
import sys
import time

from conftest import ROOT, child_env, otpatch_child, run_json

LONG_WAIT = """\
apiVersion: otpatch/v1
kind: Playbook
metadata: {name: long-wait, version: 1.0.0}
initial: settle
states:
  settle:
    do:
      - core.wait: {duration: 6s, reason: a long step on the wall clock}
    next: completed
"""
SHORT = """\
apiVersion: otpatch/v1
kind: Playbook
metadata: {name: short, version: 1.0.0}
initial: note
states:
  note:
    do: [{core.set_fact: {noted: true}}]
    next: completed
"""


def start_child(home, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "otpatch.engine.cli", *args], cwd=ROOT,
                            env=child_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)


def wait_until_inside_the_step(home, deadline: float) -> str:
    """The long run's id, once the journal shows it in `settle` (its step running)."""
    while time.monotonic() < deadline:
        done = otpatch_child(home, "status", "--json", timeout=10)
        runs = run_json(done)["runs"] if done.returncode == 0 and done.stdout.strip() else []
        if runs and runs[0]["state"] == "settle":
            return runs[0]["run_id"]
        time.sleep(0.1)
    raise AssertionError("the long run never entered its step")


def test_runs_status_and_verify_go_on_while_another_run_waits_in_a_long_step(home, tmp_path):
    long_pb, short_pb = tmp_path / "long.yml", tmp_path / "short.yml"
    long_pb.write_text(LONG_WAIT)
    short_pb.write_text(SHORT)
    waiting = start_child(home, "run", str(long_pb), "--execute", "--json")
    try:
        long_id = wait_until_inside_the_step(home, time.monotonic() + 5)
        began = time.monotonic()
        other = otpatch_child(home, "run", str(short_pb), "--execute", "--json", timeout=20)
        status = otpatch_child(home, "status", long_id, timeout=20)
        verify = otpatch_child(home, "journal", "verify", timeout=20)
        took = time.monotonic() - began
        assert waiting.poll() is None, "the long run ended before the others were tried"
    finally:
        out, err = waiting.communicate(timeout=30)
    assert run_json(other)["status"] == "completed", other.stderr
    assert status.returncode == 0 and "running" in status.stdout, status.stderr
    assert verify.returncode == 0, verify.stderr
    assert took < 5, f"blocked for {took:.1f} s by the waiting run"
    assert waiting.returncode == 0, err
    doc = run_json(subprocess.CompletedProcess([], 0, out, err))
    assert doc["status"] == "completed"
    assert otpatch_child(home, "journal", "verify").returncode == 0


def test_two_runs_inside_long_steps_at_once_both_complete_on_one_chain(home, tmp_path):
    long_pb = tmp_path / "long.yml"
    long_pb.write_text(LONG_WAIT.replace("6s", "2s"))
    first = start_child(home, "run", str(long_pb), "--execute", "--json")
    second = start_child(home, "run", str(long_pb), "--execute", "--json")
    results = [p.communicate(timeout=30) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], [r[1] for r in results]
    listed = run_json(otpatch_child(home, "status", "--json"))["runs"]
    assert sorted(r["status"] for r in listed) == ["completed", "completed"]
    verify = otpatch_child(home, "journal", "verify")
    assert verify.returncode == 0, verify.stderr
