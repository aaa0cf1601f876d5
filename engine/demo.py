"""`otpatch demo`: the shipped procedures dry-run end to end against the simulator lab."""
from __future__ import annotations

import sys
from pathlib import Path

from otpatch.engine.errors import EXIT_NOT_COMPLETED, EXIT_OK, InputError
from otpatch.engine.model import format_duration

# Each: (playbook, inventory), relative to the project's top level.
PROCEDURES = [("playbooks/patch-readiness.yml", "inventory/lab.yml")]
NOT_YET = ("the M580 and mGuard firmware procedures (m580-firmware-update, "
           "mguard-firmware-update) and the device simulators they run against")


def project_root() -> Path:
    """Where playbooks/ and inventory/ are: the checkout the engine was installed from."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (Path.cwd(), here):
        if (candidate / "playbooks").is_dir() and (candidate / "inventory").is_dir():
            return candidate
    raise InputError("cannot find playbooks/ and inventory/: run the demo from the otpatch "
                     "checkout")


def run_demo(home: Path) -> int:
    from otpatch.engine import display, runs

    root = project_root()
    results = []
    for playbook, inventory in PROCEDURES:
        print(f"== dry run: {playbook} against {inventory}")
        progress = runs.start(str(root / playbook), str(root / inventory), "dry_run", {},
                              home, display.for_terminal(False))
        results.append(progress)
        print(summary(progress))
    print(f"record: {home / 'journal.sqlite'}; runs "
          f"{', '.join(p.run_id for p in results)} (otpatch status RUN_ID, "
          "otpatch journal verify)")
    print(f"not implemented: {NOT_YET}; the demo dry-runs them once they exist",
          file=sys.stderr)
    done = all(p.status.value == "completed" for p in results)
    return EXIT_OK if done else EXIT_NOT_COMPLETED


def summary(progress) -> str:
    cfg = progress.config
    lines = [f"{cfg['playbook_name']} {cfg['playbook_version']}: {progress.status.value}, "
             f"{format_duration(progress.elapsed)} simulated"]
    for visit in progress.path:
        took = "" if visit.left_at is None else format_duration(visit.left_at - visit.entered_at)
        lines.append(f"  {visit.state:<24} {took}")
    return "\n".join(lines)
