"""Engine overhead: the same N-step no-op procedure as an otpatch dry run (durable journal
on) and as an Ansible playbook of N debug tasks through ansible-runner (local connection).

N = 0 (cold start), 50 and 200, alternating in one run, several repetitions, medians.
Prints cold start, marginal cost per step ((T(200) - T(50)) / 150) and their ratio; then
`otpatch validate` cold start and a 500-state playbook's validation time.
Run: .venv/bin/python bench/engine_overhead.py [--reps 5]"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (0, 50, 200)
PY = sys.executable


def otpatch_playbook(n: int) -> str:
    """One state of N steps, as the Ansible side is one play of N tasks."""
    steps = "".join(f"      - core.set_fact: {{step: {i}}}\n" for i in range(n))
    return ("apiVersion: otpatch/v1\nkind: Playbook\n"
            f"metadata: {{name: noop-{n}, version: 1.0.0}}\ninitial: noop\nstates:\n"
            "  noop:\n" + (f"    do:\n{steps}" if n else "") + "    next: completed\n")


def chain_playbook(n: int) -> str:
    """N states of one step each: the 500-state validation figure."""
    lines = ["apiVersion: otpatch/v1", "kind: Playbook",
             f"metadata: {{name: chain-{n}, version: 1.0.0}}", "initial: s0", "states:"]
    for i in range(n):
        nxt = f"s{i + 1}" if i + 1 < n else "completed"
        lines += [f"  s{i}:", "    do:", f"      - core.set_fact: {{step: {i}}}",
                  f"    next: {nxt}"]
    return "\n".join(lines + [""])


def ansible_playbook(n: int) -> str:
    tasks = "".join(f"    - ansible.builtin.debug: {{msg: 'step {i}'}}\n" for i in range(n))
    return ("- hosts: localhost\n  gather_facts: false\n  connection: local\n  tasks:"
            + ("\n" + tasks if n else " []\n"))


ANSIBLE_RUN = """
import sys, ansible_runner
r = ansible_runner.run(private_data_dir=sys.argv[1], playbook=sys.argv[2], quiet=True,
                       inventory="localhost ansible_connection=local",
                       envvars={"ANSIBLE_LOCAL_TEMP": sys.argv[1] + "/tmp"})
sys.exit(0 if r.status == "successful" else 1)
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stdout}\n{done.stderr}")
    return took


def measure(reps: int, work: Path) -> dict[tuple[str, int], list[float]]:
    # ansible-runner finds ansible-playbook on PATH: put this Python's bin folder first.
    path = f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "OTPATCH_HOME": str(work / "home"), "LC_ALL": "C.UTF-8",
           "PATH": path, "ANSIBLE_HOME": str(work / "ansible-home")}
    times: dict[tuple[str, int], list[float]] = {}
    for n in SIZES:
        (work / f"noop-{n}.yml").write_text(otpatch_playbook(n))
        (work / f"ansible-{n}" / "project").mkdir(parents=True)
        (work / f"ansible-{n}" / "project" / "site.yml").write_text(ansible_playbook(n))
    for _ in range(reps):
        for n in SIZES:
            cmd = [PY, "-m", "otpatch.engine.cli", "run", str(work / f"noop-{n}.yml"),
                   "--dry-run", "--json"]
            times.setdefault(("otpatch", n), []).append(timed(cmd, env))
            cmd = [PY, "-c", ANSIBLE_RUN, str(work / f"ansible-{n}"), "site.yml"]
            times.setdefault(("ansible", n), []).append(timed(cmd, env))
    return times


def commit_floor(work: Path, wal_pages: int, n: int = 400) -> float:
    """Median seconds of one durable SQLite commit (WAL, synchronous=FULL) on this disk:
    the floor under any journaled step; wal_pages is the WAL auto-checkpoint size."""
    import sqlite3

    conn = sqlite3.connect(work / f"floor-{wal_pages}.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA wal_autocheckpoint={wal_pages}")
    conn.execute("CREATE TABLE t (x TEXT)")
    times = []
    for i in range(n):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?)", ("x" * 300,))
        conn.execute("COMMIT")
        times.append(time.perf_counter() - start)
    conn.close()
    return statistics.median(times)


def validate_figures(reps: int, work: Path) -> tuple[float, float]:
    small, big = work / "noop-50.yml", work / "states-500.yml"
    big.write_text(chain_playbook(500))
    env = dict(os.environ)
    cold = [timed([PY, "-m", "otpatch.engine.cli", "validate", str(small)], env)
            for _ in range(reps)]
    script = ("import time,sys; from otpatch.engine.loader import load_playbook; "
              "t=time.perf_counter(); load_playbook(sys.argv[1]); "
              "print(time.perf_counter()-t)")
    inner = [float(subprocess.run([PY, "-c", script, str(big)], capture_output=True,
                                  text=True, check=True).stdout) for _ in range(reps)]
    return statistics.median(cold), statistics.median(inner)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    reps = parser.parse_args().reps
    with tempfile.TemporaryDirectory(prefix="otpatch-bench-") as tmp:
        work = Path(tmp)
        times = measure(reps, work)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"engine overhead, medians of {reps} alternating runs (wall, whole process):")
        marginal = {}
        for tool in ("otpatch", "ansible"):
            marginal[tool] = (med[(tool, 200)] - med[(tool, 50)]) / 150
            print(f"  {tool:8} cold start (N=0) {med[(tool, 0)] * 1000:8.1f} ms   "
                  f"N=50 {med[(tool, 50)] * 1000:8.1f} ms   N=200 {med[(tool, 200)] * 1000:8.1f}"
                  f" ms   marginal {marginal[tool] * 1000:7.3f} ms/step")
        print(f"  ratio of marginal costs (ansible / otpatch): "
              f"{marginal['ansible'] / marginal['otpatch']:.1f}x (target >= 30x)")
        from otpatch.engine.journal import WAL_PAGES

        default, floor = commit_floor(work, 1000), commit_floor(work, WAL_PAGES)
        print(f"  one durable SQLite commit here (WAL, synchronous=FULL): {default * 1000:.3f} ms "
              f"with SQLite's default 1000-page WAL, {floor * 1000:.3f} ms with the journal's "
              f"{WAL_PAGES}; otpatch per step above the latter: "
              f"{(marginal['otpatch'] - floor) * 1000:.3f} ms")
        cold, big = validate_figures(reps, work)
        print(f"  otpatch validate cold start: {cold * 1000:.0f} ms (target < 400 ms)")
        print(f"  500-state playbook load + validate: {big * 1000:.0f} ms (target < 500 ms)")


if __name__ == "__main__":
    main()
