"""Fleet rollout at scale (issue 17): N simulated plants (default 200; one M580 CPU and one
mGuard simulator each, tests/fleet_sites.py) through `otpatch fleet run` and the shipped
fleet/rollout.yml (a canary, then waves, as its `serial` says), every site running the short
dry-run procedure fleet/site-check.yml (identity, version check). One run measures:

- the site's own dry run: `otpatch run fleet/site-check.yml -i SITE --dry-run` as a child
  process (a fresh OTPATCH_HOME each time) for a sample of sites, --repeat times each,
  median wall and CPU seconds (the child's; the simulators' in this process apart); the same
  dry runs --forks at a time (wall per site at the fleet's parallelism); and the same run
  in process through the API (engine/api.py run, warm: imports paid), which shows how much
  of a site's dry run is interpreter start and imports.
- the fleet run: `otpatch fleet run FLEET_INVENTORY fleet/site-check.yml` over all N sites
  as a child process with its own central OTPATCH_HOME and ANSIBLE_FORKS=--forks (Ansible
  reads it; engine/fleet.py passes this process's environment on to ansible-playbook), wall
  and CPU seconds of the whole process tree (ansible-playbook, its workers, every module
  process: all are waited for, so getrusage(RUSAGE_CHILDREN) holds them; the simulators'
  threads in this process apart, as they stand for the devices). It is done once (it is the
  expensive part); the site-only figures are medians. `otpatch fleet report --json` then
  must show N sites, each completed, in the batches `serial` gives for N; otherwise the
  bench fails (exit 1).

The peer is the site's own dry run as a child process, not the in-process API call: the
site_rollout module runs the API in a Python process of its own that Ansible starts for the
task, as a site's `otpatch run` does, so a process start and otpatch's imports belong to the
site's own cost either way. The fleet layer's cost is what comes on top: Ansible (its
controller, a worker fork and the module wrapper per task: a task running ansible's own
ping module over the same fleet costs about 0.5 CPU-s per site here, half of it the module
process), site_rollout's pin check and result, the post-task and set_stats, the event
journal, the run's fixed start. It is given three ways:

- CPU: (fleet CPU - N x site-only CPU) / N, the work the fleet adds per site whatever the
  forks or cores (checked against the 1 s target, as the serial figure is);
- wall at the fleet's parallelism: fleet wall / N - site-only wall per site --forks at a
  time, what each site adds to the rollout's elapsed time;
- serial equivalent: the canary's span in the fleet run (its first task's start to its last
  task's end, from ansible-runner's job events; it runs alone) - one site-only dry run, the
  latency the fleet adds to one site; the run's fixed start is printed apart.

--forks (default 8) reaches the fleet run as ANSIBLE_FORKS. Ansible's default is 5; the
last batch holds most sites, and their work is CPU-bound module processes, so on 2 cores
(here and in CI) a few forks per core keep both busy while some wait on the site journals'
fsyncs and the simulators: 50 sites took 173, 129 and 114 s with 2, 4 and 8 forks, and 16
were not clearly faster than 8 for twice the processes.

Timings are printed, not asserted: the targets (the fleet run under 5 minutes, under 1 s of
fleet overhead per site) are reported met or NOT met.
Run: .venv/bin/python bench/fleet.py [--sites 200] [--repeat 3] [--forks 8] [--keep]"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the simulated fleet the tests use

import yaml  # noqa: E402  (PyYAML comes with ansible-core)
from fleet_sites import PASSWORD_ENV, SITE_CHECK, Fleet, simulated_fleet  # noqa: E402

ROLLOUT = ROOT / "fleet" / "rollout.yml"
CLI = [sys.executable, "-m", "otpatch.engine.cli"]
TARGET_WALL_S = 300.0  # the whole fleet run
TARGET_OVERHEAD_S = 1.0  # the fleet layer's cost per site
SAMPLE_SITES = 5


@dataclass(frozen=True)
class Cost:
    """What one child process took: wall seconds, CPU seconds of its process tree, and this
    process's CPU seconds meanwhile (the simulators' threads: the bench itself only waits).
    The simulators stand for the plants' devices, so their CPU is neither side's cost: it
    is printed apart, not compared."""

    wall: float
    cpu: float
    lab: float


def child_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed_child(cmd: list[str], env: Mapping[str, str], log: Path) -> tuple[Cost, int]:
    """Run `cmd`, its output to `log`; its cost and exit code."""
    cpu0, own0, start = child_cpu(), time.process_time(), time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.run(cmd, env=dict(env), stdout=out,
                            stderr=subprocess.STDOUT).returncode
    wall, lab = time.perf_counter() - start, time.process_time() - own0
    return Cost(wall, child_cpu() - cpu0, lab), rc


def failed(what: str, log: Path) -> SystemExit:
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
    return SystemExit(f"FAILED: {what} (see {log}):\n{tail}")


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment (the simulated mGuards' password included) with its own home."""
    return {**os.environ, PASSWORD_ENV: os.environ.get(PASSWORD_ENV, "fleet-lab"),
            "OTPATCH_HOME": str(home), **extra}


# --- the fleet -------------------------------------------------------------------------

def site_names(n: int) -> list[str]:
    width = len(str(n))
    return [f"site-{i:0{width}d}" for i in range(1, n + 1)]


def wave_groups(names: list[str]) -> dict[str, list[str]]:
    """In inventory order: a canary, two sites, then the rest (serial does the batching)."""
    groups = {"canary": names[:1], "wave1": names[1:3], "wave2": names[3:]}
    return {g: hosts for g, hosts in groups.items() if hosts}


def rollout_serial(rollout: Path) -> list[Any]:
    play = yaml.safe_load(rollout.read_text())[0]
    serial = play.get("serial", [])
    return serial if isinstance(serial, list) else [serial]


def batch_sizes(serial: list[Any], n: int) -> list[int]:
    """The batches Ansible makes of n hosts (its playbook executor's serialized batches:
    a percentage is of all hosts, at least 1; the last entry repeats)."""
    def size(entry: Any) -> int:
        if isinstance(entry, str) and entry.endswith("%"):
            return int(int(entry[:-1]) / 100.0 * n) or 1
        return int(entry)

    sizes, left, i = [], n, 0
    entries = serial or [0]
    while left > 0:
        step = size(entries[i])
        step = left if step <= 0 else min(step, left)
        sizes.append(step)
        left -= step
        i = min(i + 1, len(entries) - 1)
    return sizes


def sample_of(names: list[str], k: int) -> list[str]:
    """k sites spread over the fleet."""
    k = min(k, len(names))
    return [names[round(i * (len(names) - 1) / max(k - 1, 1))] for i in range(k)]


# --- the site's own dry run ------------------------------------------------------------

def site_dry_run_cmd(inventory: Path) -> list[str]:
    return CLI + ["run", str(SITE_CHECK), "-i", str(inventory), "--dry-run"]


def site_only_cli(fleet: Fleet, sample: list[str], repeat: int, work: Path) -> list[Cost]:
    """The site's own dry run as a child process, one at a time, a fresh home each."""
    costs = []
    for rep in range(repeat):
        for name in sample:
            home, log = work / f"{name}-{rep}", work / f"{name}-{rep}.log"
            cost, rc = timed_child(site_dry_run_cmd(fleet.sites[name][0]), child_env(home),
                                   log)
            if rc != 0:
                raise failed(f"site-only dry run of {name}: exit {rc}", log)
            costs.append(cost)
    return costs


def site_only_parallel(fleet: Fleet, names: list[str], forks: int, work: Path) -> float:
    """Wall seconds per site of plain site dry runs, `forks` at a time (2 x forks sites)."""
    chosen = sample_of(names, min(len(names), 2 * forks))

    def one(name: str) -> int:
        home, log = work / f"par-{name}", work / f"par-{name}.log"
        return timed_child(site_dry_run_cmd(fleet.sites[name][0]), child_env(home), log)[1]

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=forks) as pool:
        codes = list(pool.map(one, chosen))
    wall = time.perf_counter() - start
    if any(codes):
        bad = chosen[next(i for i, rc in enumerate(codes) if rc)]
        raise failed(f"site-only dry run of {bad} ({forks} at a time)",
                     work / f"par-{bad}.log")
    return wall / len(chosen)


def site_only_api(fleet: Fleet, sample: list[str], repeat: int, work: Path) -> list[float]:
    """The same dry run in this process through the API, after one warm-up run."""
    import logging

    from otpatch.engine import api

    # the unanchored-journal warning (no host key, as at the fleet's sites): not a figure
    logging.getLogger("otpatch").setLevel(logging.ERROR)

    def once(name: str, home: Path) -> float:
        start = time.perf_counter()
        outcome = api.run(api.RunRequest(str(SITE_CHECK), str(fleet.sites[name][0]),
                                         mode="dry_run", home=home))
        took = time.perf_counter() - start
        if outcome.status.value != "completed":
            raise SystemExit(f"FAILED: in-process dry run of {name}: {outcome.status.value}: "
                             f"{outcome.message}")
        return took

    once(sample[0], work / "warm-up")
    return [once(name, work / f"{name}-{rep}") for rep in range(repeat) for name in sample]


# --- the fleet run ---------------------------------------------------------------------

def fleet_run(fleet: Fleet, central: Path, forks: int, rollout: Path | None,
              log: Path) -> tuple[Cost, int]:
    cmd = CLI + ["fleet", "run", str(fleet.inventory), str(SITE_CHECK)]
    if rollout is not None:
        cmd += ["--rollout", str(rollout)]
    return timed_child(cmd, child_env(central, ANSIBLE_FORKS=str(forks)), log)


def fleet_report(central: Path, log: Path) -> dict[str, Any]:
    done = subprocess.run(CLI + ["fleet", "report", "--json"], env=child_env(central),
                          capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise failed(f"otpatch fleet report --json: exit {done.returncode}", log)
    return json.loads(done.stdout)


def report_problems(report: Mapping[str, Any], names: list[str],
                    sizes: list[int]) -> list[str]:
    """What keeps the run from counting: a site missing or not completed, batches other
    than serial's."""
    sites = {s["site"]: s for s in report["sites"]}
    problems = [] if report["status"] == "successful" else \
        [f"fleet status {report['status']}"]
    if sorted(sites) != sorted(names):
        problems.append(f"{len(sites)} sites reported, {len(names)} in the fleet")
    problems += [f"{s['site']}: {s['state']}" + (f" ({s['msg']})" if s.get("msg") else "")
                 for s in sites.values() if s["state"] != "completed" or s["failed"]]
    counted = [sum(1 for s in sites.values() if s["batch"] == b)
               for b in range(1, len(sizes) + 1)]
    if counted != sizes or any(s["batch"] not in range(1, len(sizes) + 1)
                               for s in sites.values()):
        problems.append(f"batches of {counted}, serial gives {sizes}")
    return problems


def job_events(central: Path, run_id: str) -> list[dict[str, Any]]:
    """ansible-runner's host events of the run (engine/fleet.py's private data dir)."""
    found = []
    for path in (central / "fleet" / "runs" / run_id).glob("artifacts/*/job_events/*.json"):
        event = json.loads(path.read_text())
        data = event.get("event_data") or {}
        if str(event.get("event", "")).startswith("runner_on_") and data.get("start") \
                and data.get("end") and data.get("host"):
            found.append({"host": data["host"], "task": data.get("task", ""),
                          "start": datetime.fromisoformat(data["start"]).timestamp(),
                          "end": datetime.fromisoformat(data["end"]).timestamp()})
    return found


def spans(events: list[dict[str, Any]], report: Mapping[str, Any]) -> dict[str, Any]:
    """The canary's span, each batch's span, and each task's mean duration per site."""
    batch_of = {s["site"]: s["batch"] for s in report["sites"]}
    per_batch: dict[int, list[dict[str, Any]]] = {}
    per_task: dict[str, list[float]] = {}
    for e in sorted(events, key=lambda e: e["start"]):  # the tasks in playbook order
        per_batch.setdefault(batch_of.get(e["host"], 0), []).append(e)
        per_task.setdefault(e["task"], []).append(e["end"] - e["start"])
    batches = {b: max(e["end"] for e in es) - min(e["start"] for e in es)
               for b, es in sorted(per_batch.items())}
    canary = [e for e in events if e["host"] == report["sites"][0]["site"]]
    return {"canary": max(e["end"] for e in canary) - min(e["start"] for e in canary),
            "batches": batches,
            "tasks": {t: statistics.mean(d) for t, d in per_task.items()}}


# --- figures ---------------------------------------------------------------------------

def verdict(value: float, target: float) -> str:
    return "met" if value < target else "NOT met"


def print_figures(n: int, forks: int, sizes: list[int], cli: list[Cost], par: float,
                  api_s: list[float], fleet: Cost, load: float, found: Mapping[str, Any],
                  repeat: int, sample: int) -> None:
    site_wall = statistics.median(c.wall for c in cli)
    site_cpu = statistics.median(c.cpu for c in cli)
    api_wall = statistics.median(api_s)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else os.cpu_count()
    effective = min(forks, max(sizes))
    print(f"fleet rollout bench: {n} simulated sites (one M580 CPU, one mGuard each), "
          f"fleet/site-check.yml dry run, {cpus} CPUs here")
    print(f"  site's own dry run (the peer), median of {len(cli)} runs ({sample} sites x "
          f"{repeat}), child process `otpatch run --dry-run`:")
    print(f"    wall {site_wall:6.3f} s   CPU {site_cpu:6.3f} s   "
          f"({forks} at a time: {par:.3f} s wall per site)")
    print(f"    in process through the API (warm, imports paid): {api_wall:.3f} s wall; "
          f"process start and imports are the other {site_wall - api_wall:.3f} s: each "
          f"fleet module runs in a fresh process, so the peer is the child process")
    print(f"  fleet run, once: `otpatch fleet run` over {n} sites, ANSIBLE_FORKS={forks} "
          f"(at most {effective} sites at once), batches {sizes}, load average "
          f"{load:.1f} as it started:")
    print(f"    wall {fleet.wall:7.1f} s   CPU {fleet.cpu:7.1f} s   per site: wall "
          f"{fleet.wall / n:.3f} s, CPU {fleet.cpu / n:.3f} s   (the simulators, not "
          f"counted: {fleet.lab:.1f} s CPU meanwhile)")
    print(f"    fleet wall per site / site-only wall: {fleet.wall / n / site_wall:.2f}x "
          f"(CPU {fleet.cpu / n / site_cpu:.2f}x)")
    if found:
        batches = ", ".join(f"{b}: {s:.1f} s" for b, s in found["batches"].items())
        fixed = fleet.wall - sum(found["batches"].values())
        print(f"    batch spans {batches}; outside the batches (process and ansible start, "
              f"inventory, plays, journal close): {fixed:.1f} s")
        print("    mean task duration per site (wall, under the run's contention):")
        for task, took in found["tasks"].items():
            print(f"      {took:6.3f} s  {task}")
    cpu_over = (fleet.cpu - n * site_cpu) / n
    wall_over = fleet.wall / n - par
    print("  fleet overhead per site, above the site's own dry run:")
    print(f"    CPU            {cpu_over:6.3f} s  (fleet CPU - {n} x site-only CPU) / {n}: "
          f"the work the fleet layer adds per site, whatever the forks or cores")
    print(f"    wall, parallel {wall_over:6.3f} s  fleet wall / {n} - site-only wall per site "
          f"{forks} at a time: what each site adds to the rollout's elapsed time here")
    if found:
        serial_over = found["canary"] - site_wall
        print(f"    wall, serial   {serial_over:6.3f} s  the canary's span in the fleet run "
              f"({found['canary']:.3f} s, alone) - one site-only dry run: the latency the "
              "fleet adds to one site")
    print(f"  targets: fleet run {fleet.wall:.1f} s (< {TARGET_WALL_S:.0f} s): "
          f"{verdict(fleet.wall, TARGET_WALL_S)}; fleet overhead per site, CPU "
          f"{cpu_over:.3f} s (< {TARGET_OVERHEAD_S:.0f} s): "
          f"{verdict(cpu_over, TARGET_OVERHEAD_S)}"
          + (f"; serial {serial_over:.3f} s (< {TARGET_OVERHEAD_S:.0f} s): "
             f"{verdict(serial_over, TARGET_OVERHEAD_S)}" if found else ""))


def bench(args: argparse.Namespace, work: Path) -> None:
    names = site_names(args.sites)
    given = Path(args.rollout) if args.rollout else None
    sizes = batch_sizes(rollout_serial(given or ROLLOUT), len(names))
    start = time.perf_counter()
    with simulated_fleet(work / "fleet", names, wave_groups(names)) as fleet:
        lab_s = time.perf_counter() - start
        sample = sample_of(names, SAMPLE_SITES)
        (work / "site-only").mkdir()
        cli = site_only_cli(fleet, sample, args.repeat, work / "site-only")
        par = site_only_parallel(fleet, names, args.forks, work / "site-only")
        api_s = site_only_api(fleet, sample, args.repeat, work / "site-only")
        central, load = work / "central", os.getloadavg()[0]
        log = work / "fleet-run.log"
        run, rc = fleet_run(fleet, central, args.forks, given, log)
        if not (central / "fleet").is_dir():
            raise failed(f"otpatch fleet run: exit {rc}, no fleet journal", log)
        report = fleet_report(central, work / "fleet-report.json")
    problems = ([f"otpatch fleet run exit {rc} (see {log})"] if rc else []) \
        + report_problems(report, names, sizes)
    if problems:
        raise SystemExit(f"FAILED: fleet run {report['fleet_run']}: "
                         + "; ".join(problems[:10])
                         + (f"; and {len(problems) - 10} more" if len(problems) > 10 else ""))
    events = job_events(central, report["fleet_run"])
    found = spans(events, report) if events else {}
    print_figures(len(names), args.forks, sizes, cli, par, api_s, run, load, found,
                  args.repeat, len(sample))
    print(f"  all {len(names)} sites completed (fleet run {report['fleet_run']}); the bench "
          f"took {time.perf_counter() - start:.0f} s, {lab_s:.1f} s of it starting the "
          "simulators")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3,
                        help="site-only dry runs per sampled site (5 sites), for the median")
    parser.add_argument("--forks", type=int, default=8,
                        help="ANSIBLE_FORKS for the fleet run (and the parallel site-only runs)")
    parser.add_argument("--rollout", metavar="FILE",
                        help="another rollout playbook (otpatch fleet run --rollout)")
    parser.add_argument("--keep", action="store_true", help="keep the bench's folder")
    args = parser.parse_args()
    if args.sites < 1 or args.repeat < 1 or args.forks < 1:
        parser.error("--sites, --repeat and --forks must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="otpatch-bench-fleet-"))
    keep = args.keep
    try:
        bench(args, work)
    except SystemExit:
        keep = True  # a failed run's logs and journals, for whoever looks into it
        raise
    finally:
        if keep:
            print(f"  kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
