"""`otpatch demo`: the simulators up, the shipped procedures dry-run end to end, the record."""
from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

from otpatch.modules.contract.errors import EXIT_NOT_COMPLETED, EXIT_OK, InputError
from otpatch.modules.contract.durations import format_duration

INVENTORY = "inventory/lab.yml"
PROCEDURES = ["playbooks/m580-firmware-update.yml", "playbooks/mguard-firmware-update.yml"]
PASSWORD_ENV = "OTPATCH_LAB_MGUARD_PASSWORD"
# Rollback rehearsals: a simulator fault each, the rollback edge taken and verified.
REHEARSALS = [("playbooks/m580-firmware-update.yml", "reboot_hang"),
              ("playbooks/mguard-firmware-update.yml", "syslog_gap")]


def project_root() -> Path:
    """Where playbooks/ and inventory/ are: the checkout the engine was installed from."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (Path.cwd(), here):
        if (candidate / "playbooks").is_dir() and (candidate / "inventory").is_dir():
            return candidate
    raise InputError("cannot find playbooks/ and inventory/: run the demo from the otpatch "
                     "checkout")


def run_demo(home: Path, host_key: Path | None = None) -> int:
    """Start the lab's simulators on free ports, dry-run each procedure, then rehearse a
    rollback of each with a simulator fault; summarise with simulated timings. `host_key`
    signs the journal's head (the CLI's $OTPATCH_HOST_KEY or <home>/host.key)."""
    root = project_root()
    os.environ.setdefault(PASSWORD_ENV, secrets.token_urlsafe(12))  # the lab mGuards' password
    host_key = host_key or _demo_host_key(home)
    runs_done = [_dry_run(root, home, host_key, playbook, ()) for playbook in PROCEDURES]
    rehearsed = [_dry_run(root, home, host_key, playbook, (fault,))
                 for playbook, fault in REHEARSALS]
    print()
    for progress in runs_done + rehearsed:
        print(summary(progress))
        for line in changed_devices(home, progress):
            print(line)
    ids = ", ".join(p.run_id for p in runs_done + rehearsed)
    print(f"\nrecord: {home / 'journal.sqlite'}, runs {ids} (otpatch status RUN_ID; "
          "otpatch journal verify)")
    written = write_record(home, [p.run_id for p in runs_done + rehearsed])
    print(f"change-control record (HTML, one file to print): {written}\n"
          "  a rehearsal, not evidence: every device in it is a simulator; "
          "otpatch report RUN_ID --format md|json gives one run")
    done = all(p.status.value == "completed" for p in runs_done) and \
        all(p.status.value == "rolled_back" for p in rehearsed)
    return EXIT_OK if done else EXIT_NOT_COMPLETED


def _dry_run(root: Path, home: Path, host_key: Path | None, playbook: str,
             faults: tuple[str, ...]):
    """One dry run against a fresh lab (simulators on free ports, with these faults)."""
    from otpatch.engine import api, display
    from otpatch.engine.simlab import start_lab

    syslog = f"127.0.0.1:{free_udp_port()}"  # the SIEM receiver the firewalls log to
    params = {"syslog_port": syslog.rpartition(":")[2], "syslog_bind": "127.0.0.1"}
    with start_lab(root / INVENTORY, faults, ephemeral=True, out_dir=home / "demo",
                   syslog_to=syslog) as lab:
        what = f"rollback rehearsal, simulator fault {faults[0]}" if faults else "dry run"
        print(f"\n== {what}: {playbook} (simulators: {len(lab.hosts)} on 127.0.0.1)")
        request = api.RunRequest(root / playbook, lab.inventory,
                                 _declared(root / playbook, params), mode="dry_run",
                                 home=home, host_key=host_key)
        return api.run(request, observer=display.for_terminal(False)).progress


def changed_devices(home: Path, progress) -> list[str]:
    """What the run left each device it changed in (engine/report/devices.py)."""
    from otpatch.engine.runview import device_outcomes, entries_of

    rows = device_outcomes(progress, entries_of(home, progress.run_id))
    return [f"  -> {r['statement']}" for r in rows if r["outcome"] != "not_changed"]


def _demo_host_key(home: Path) -> Path:
    """The key this host signs its journal's checkpoints with: the demo makes one in its
    home when there is none, so its records are anchored and can be exported."""
    from otpatch.engine import keys

    path = home / keys.HOST_KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        keys.generate(path)
        print(f"demo: made this host's journal key {path} (otpatch keygen --host)")
    return path


def write_record(home: Path, run_ids: list[str]) -> Path:
    """The demo's runs as one HTML change-control record, written atomically."""
    from otpatch.engine.report import build, source
    from otpatch.engine.report.render import render
    from otpatch.modules.contract.files import write_atomic

    doc = build.build([source.load_run(home, run_id) for run_id in run_ids])
    path = home / "demo-record.html"
    write_atomic(path, render(doc, "html").encode("utf-8"), "demo record")
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _declared(playbook: Path, params: dict[str, str]) -> dict[str, str]:
    """The demo's params that this playbook declares."""
    from otpatch.engine.loader import load_playbook

    return {k: v for k, v in params.items() if k in load_playbook(playbook).params}


def summary(progress) -> str:
    """The state path with simulated timings."""
    cfg = progress.config
    lines = [f"{cfg.playbook_name} {cfg.playbook_version}: {progress.status.value}, "
             f"{format_duration(progress.elapsed)} simulated"
             + (f" ({progress.message})" if progress.message else "")]
    for visit in progress.path:
        took = "" if visit.left_at is None else format_duration(visit.left_at - visit.entered_at)
        lines.append(f"  {visit.state:<22} {took}")
    return "\n".join(lines)
