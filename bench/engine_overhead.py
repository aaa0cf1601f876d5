"""Engine overhead: the same N-step no-op procedure as an otpatch dry run (durable journal
on) and as an Ansible playbook of N debug tasks through ansible-runner (local connection).

Ansible: N = 0 (cold start), 50 and 200; otpatch: N = 0, 500 and 3000 (its steps cost so
little that 150 of them vanish in a process start's noise). All alternate in one run,
several repetitions, medians. Prints cold start, marginal cost per step ((T(big) -
T(small)) / (big - small)) and their ratio. The no-op step is core.set_fact, which is
replayable (its result joins the next commit); the same figure for a no-op step that
commits its own result (core.wait 0s) follows, against one durable SQLite commit measured
in the same run. Then `otpatch validate` cold start and a 500-state playbook's validation.
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

SIZES = {"ansible": (0, 50, 200), "otpatch": (0, 500, 3000), "committing": (0, 500, 3000)}
PY = sys.executable
STEP = {"otpatch": "core.set_fact: {{step: {i}}}",
        "committing": "core.wait: {{duration: 0s, reason: 'step {i}'}}"}


def otpatch_playbook(n: int, kind: str = "otpatch") -> str:
    """One state of N steps, as the Ansible side is one play of N tasks."""
    steps = "".join(f"      - {STEP[kind].format(i=i)}\n" for i in range(n))
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
    commands = {}
    for kind in ("otpatch", "committing"):
        for n in SIZES[kind]:
            (work / f"{kind}-{n}.yml").write_text(otpatch_playbook(n, kind))
            commands[(kind, n)] = [PY, "-m", "otpatch.engine.cli", "run",
                                   str(work / f"{kind}-{n}.yml"), "--dry-run", "--json"]
    for n in SIZES["ansible"]:
        (work / f"ansible-{n}" / "project").mkdir(parents=True)
        (work / f"ansible-{n}" / "project" / "site.yml").write_text(ansible_playbook(n))
        commands[("ansible", n)] = [PY, "-c", ANSIBLE_RUN, str(work / f"ansible-{n}"),
                                    "site.yml"]
    for rep in range(reps):
        for key, cmd in commands.items():
            # a journal of its own per run: the check at a run's start reads the entries
            # since the newest signed checkpoint (all of them, unanchored, as here)
            home = {"OTPATCH_HOME": str(work / f"home-{key[0]}-{key[1]}-{rep}")}
            times.setdefault(key, []).append(timed(cmd, {**env, **home}))
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
    small, big = work / "otpatch-500.yml", work / "states-500.yml"
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
        for tool in ("otpatch", "ansible", "committing"):
            _, small, big = SIZES[tool]
            marginal[tool] = (med[(tool, big)] - med[(tool, small)]) / (big - small)
            print(f"  {tool:10} cold start (N=0) {med[(tool, 0)] * 1000:7.1f} ms   "
                  f"N={small} {med[(tool, small)] * 1000:7.1f} ms   N={big} "
                  f"{med[(tool, big)] * 1000:7.1f} ms   marginal "
                  f"{marginal[tool] * 1000:7.3f} ms/step")
        print(f"  ratio of marginal costs (ansible / otpatch): "
              f"{marginal['ansible'] / marginal['otpatch']:.1f}x (target >= 30x)")
        from otpatch.engine.journal import WAL_PAGES

        default, floor = commit_floor(work, 1000), commit_floor(work, WAL_PAGES)
        print(f"  one durable SQLite commit here (WAL, synchronous=FULL): {default * 1000:.3f} ms "
              f"with SQLite's default 1000-page WAL, {floor * 1000:.3f} ms with the journal's "
              f"{WAL_PAGES}")
        for tool, what in (("otpatch", "replayable no-op step (set_fact)"),
                           ("committing", "no-op step with its own commit (wait 0s)")):
            print(f"  {what}: {marginal[tool] / floor:.2f}x one commit "
                  f"(target <= 2x for the no-op step)")
        cold, big = validate_figures(reps, work)
        print(f"  otpatch validate cold start: {cold * 1000:.0f} ms (target < 400 ms)")
        print(f"  500-state playbook load + validate: {big * 1000:.0f} ms (target < 500 ms)")


if __name__ == "__main__":
    main()
