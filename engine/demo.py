"""`otpatch demo`: the simulators up, the shipped procedures dry-run end to end, the record."""
from __future__ import annotations

import sys
from pathlib import Path

from otpatch.engine.errors import EXIT_NOT_COMPLETED, EXIT_OK, InputError
from otpatch.engine.model import format_duration

INVENTORY = "inventory/lab.yml"
PROCEDURES = ["playbooks/m580-firmware-update.yml"]
NOT_YET = ("the mGuard procedure (mguard-firmware-update) and its simulator; the demo "
           "dry-runs it once they exist")


def project_root() -> Path:
    """Where playbooks/ and inventory/ are: the checkout the engine was installed from."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (Path.cwd(), here):
        if (candidate / "playbooks").is_dir() and (candidate / "inventory").is_dir():
            return candidate
    raise InputError("cannot find playbooks/ and inventory/: run the demo from the otpatch "
                     "checkout")


def run_demo(home: Path) -> int:
    """Start the lab's simulators on free ports, dry-run each procedure, summarise."""
    from otpatch.engine import display, runs
    from otpatch.engine.simlab import start_lab

    root = project_root()
    with start_lab(root / INVENTORY, ephemeral=True, out_dir=home / "demo") as lab:
        print(f"simulators up: {', '.join(lab.hosts)} (inventory {lab.inventory})")
        results = []
        for playbook in PROCEDURES:
            print(f"\n== dry run: {playbook}")
            progress = runs.start(str(root / playbook), str(lab.inventory), "dry_run", {},
                                  home, display.for_terminal(False))
            results.append(progress)
    print()
    for progress in results:
        print(summary(progress))
    print(f"\nrecord: {home / 'journal.sqlite'}, runs {', '.join(p.run_id for p in results)}"
          " (otpatch status RUN_ID; otpatch journal verify)")
    if NOT_YET:
        print(f"not implemented: {NOT_YET}", file=sys.stderr)
    done = all(p.status.value == "completed" for p in results)
    return EXIT_OK if done else EXIT_NOT_COMPLETED


def summary(progress) -> str:
    """The state path with simulated timings."""
    cfg = progress.config
    lines = [f"{cfg['playbook_name']} {cfg['playbook_version']}: {progress.status.value}, "
             f"{format_duration(progress.elapsed)} simulated"]
    for visit in progress.path:
        took = "" if visit.left_at is None else format_duration(visit.left_at - visit.entered_at)
        lines.append(f"  {visit.state:<22} {took}")
    return "\n".join(lines)
