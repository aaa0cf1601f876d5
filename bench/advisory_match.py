"""Benchmark: every CSAF advisory against a generated 10,000-asset inventory; timings."""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Usage: .venv/bin/python bench/advisory_match.py [ADVISORIES] [--assets 10000] [--runs 5]
#        [--cold-runs 1]
# ADVISORIES defaults to ../shared/data/csaf/advisories next to the repository; the generated
# inventory and the verdict cache live in a temporary folder, deleted afterwards. Loading is
# timed cold (an empty verdict cache: our schema check and the csaf package's tests run on
# every file) and warm (every verdict from the cache), as `otpatch advisories match` runs
# the first time and every time after.

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "data" / "csaf" / "advisories"

M580 = ["BMEP581020", "BMEP582020", "BMEP582040", "BMEP583020", "BMEP583040", "BMEP584020",
        "BMEP584040", "BMEP585040", "BMEP586040", "BMEH582040", "BMEH584040", "BMEH586040",
        "BMEP584040S", "BMEH586040S"]
M580_FW = ["v02.30", "v02.70", "SV2.80", "v02.90", "V3.0", "v03.10", "SV3.20", "v03.30",
           "SV4.01", "v04.02", "V4.1", "SV4.20", "v04.30", "SV4.21"]
MGUARD = ["FL MGUARD RS4000", "FL MGUARD RS2000", "FL MGUARD RS4004", "FL MGUARD GT/GT",
          "FL MGUARD SMART2", "FL MGUARD CENTERPORT", "TC MGUARD RS4000 4G VPN"]
MGUARD_FW = [f"{a}.{b}.{c}" for a, b, c in
             [(7, 6, 9), (8, 0, 0), (8, 1, 4), (8, 3, 1), (8, 4, 0), (8, 4, 2), (8, 5, 1),
              (8, 6, 0), (8, 8, 5), (10, 0, 2), (10, 3, 1), (10, 5, 0)]]
OTHERS = [("Siemens", "SIMATIC S7-1500", "6ES7515-2AM02-0AB0", "V2.9.4"),
          ("Rockwell Automation", "ControlLogix 5580", "1756-L83E", "33.011"),
          ("Schneider Electric", "Modicon M340", "BMXP342020", "SV3.40"),
          ("Schneider Electric", "Modicon X80 EIO drop adapter", "BMECRA31210", "v02.40"),
          ("Schneider Electric", "EcoStruxure Control Expert", "", "15.0 SP1")]


def generate(count: int, folder: Path, seed: int = 62443) -> Path:
    """A YAML inventory of `count` hosts: M580 CPUs, mGuards, and some other devices, one
    group per model (vendor and model as group variables keep the file under the 1 MiB
    an inventory may have)."""
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[str]] = {}
    for i in range(count):
        kind = rng.random()
        if kind < 0.55:
            vendor, model, part, firmware = ("Schneider Electric", "Modicon M580",
                                             rng.choice(M580), rng.choice(M580_FW))
        elif kind < 0.85:
            vendor, model, part, firmware = ("Phoenix Contact", rng.choice(MGUARD), "",
                                             rng.choice(MGUARD_FW))
        else:
            vendor, model, part, firmware = rng.choice(OTHERS)
        body = f"firmware: '{firmware}'" + (f", part_number: '{part}'" if part else "")
        groups.setdefault((vendor, model), []).append(f"        a{i:05d}: {{{body}}}")
    lines = ["all:", "  children:"]
    for n, ((vendor, model), hosts) in enumerate(sorted(groups.items())):
        lines += [f"    group_{n}:", "      vars:", f"        vendor: {vendor}",
                  f"        model: '{model}'", f"        zone: zone-{n}", "      hosts:"]
        lines += hosts
    path = folder / "inventory.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _cold() -> None:
    """Forget every compiled schema and cached name, so each run pays for them."""
    from otpatch.modules.advisories import identify, schema, vendors

    for cached in (schema.validator, schema.registry, vendors.vendor_keys, identify._words):
        cached.cache_clear()


def timed(func, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        _cold()
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("advisories", nargs="?", default=str(DEFAULT))
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=1,
                        help="cold loads, each with a new empty cache (about 12 s each)")
    args = parser.parse_args(argv)
    from otpatch.engine.inventory import load_inventory

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        inventory = load_inventory(generate(args.assets, Path(tmp)))
        print(f"inventory: {len(inventory.hosts)} assets, generated and loaded once in "
              f"{time.perf_counter() - start:.2f} s")
        measure(inventory, args.advisories, args.runs, args.cold_runs, Path(tmp))
    return 0


def measure(inventory, folder: str, runs: int, cold_runs: int, tmp: Path) -> None:
    """Load+validate cold and warm, and match, timed apart; then match again with no two
    hosts sharing."""
    from otpatch.modules.advisories import identify
    from otpatch.modules.advisories.match import match

    cold_time, loaded, checked = load_times(folder, cold_runs, tmp, warm=False)
    warm_time, warm, rechecked = load_times(folder, runs, tmp, warm=True)
    assert warm == loaded, "a cached verdict changed what was loaded"
    advisories = loaded.advisories
    match_time, found = timed(lambda: match(inventory, advisories), runs)
    identities = {identify.Asset.of(h).signature for h in inventory.hosts.values()}
    identify.Asset.signature = property(lambda self: (self.name,))  # no sharing between hosts
    alone_time, _ = timed(lambda: match(inventory, advisories), max(1, runs // 2))
    pairs = len(inventory.hosts) * len(advisories)
    print(f"advisories: {len(advisories)} loaded, {len(loaded.skipped)} skipped "
          f"({loaded.files} files, {folder}); {len(identities)} distinct asset identities")
    print(f"load+validate cold (empty verdict cache, median of {cold_runs}; schema compiled, "
          f"csaf tests on {checked} files per run): {cold_time:.3f} s")
    print(f"load+validate warm (every verdict cached, median of {runs}; {rechecked} files "
          f"validated): {warm_time:.3f} s")
    print(f"match, risk and due dates (median of {runs}): {match_time:.3f} s -> "
          f"{len(found)} matches; {pairs / match_time:,.0f} assets x advisories per second")
    print(f"match without sharing identical identities: {alone_time:.3f} s -> "
          f"{pairs / alone_time:,.0f} assets x advisories per second")
    print(f"total load+validate+match: cold {cold_time + match_time:.3f} s, warm "
          f"{warm_time + match_time:.3f} s (target: under 5 s, warm); the first cold run "
          f"includes importing the csaf package (about 0.5 s, once per process)")


def load_times(folder: str, runs: int, tmp: Path, warm: bool) -> tuple[float, object, int]:
    """The median load time over `runs`, the last result, and how many files the csaf
    package validated per run: each cold run with a new empty cache, the warm runs all with
    the cache the cold runs filled."""
    from otpatch.modules.advisories import conformance
    from otpatch.modules.advisories.load import load_advisories

    if warm:
        shutil.copytree(tmp / "cache" / "cold-0", tmp / "cache" / "warm")
    caches = iter(tmp / "cache" / ("warm" if warm else f"cold-{n}") / "v.sqlite"
                  for n in range(runs))
    before = conformance.TALLY.documents
    median, loaded = timed(lambda: load_advisories([folder], cache=next(caches)), runs)
    return median, loaded, (conformance.TALLY.documents - before) // max(1, runs)


if __name__ == "__main__":
    sys.exit(main())
