"""`otpatch fleet run`: roll a site procedure out over many plants with Ansible, each site's
own otpatch the authority.

Ansible decides which site runs when (the shipped fleet/rollout.yml: a canary, then waves,
`serial: [1, 2, "25%", "100%"]`, `max_fail_percentage: 0`, stopping at the first failure);
the otpatch.fleet collection's `site_rollout` runs the procedure AT the site, through the
site's own otpatch, in its own zone (IEC 62443-3-2: nothing central reaches into a plant's
control zone). This module only starts ansible-runner (ansible_runner.Runner, as
ansible-runner documents it) and journals what it reports: every `runner_on_*` event, with
the batch it belongs to and the site's run id and journal head, in the fleet journal
(engine/fleetjournal.py). It never talks to a device.

Check mode (`--check`) is Ansible's: site_rollout then plans only (otpatch `plan`), so no
device, simulator included, is touched anywhere."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from otpatch.modules.contract.errors import InputError, clip

ROOT = Path(__file__).resolve().parents[1]  # the repository (engine/ is mapped from it)
COLLECTIONS = ROOT / "ansible" / "collections"  # ansible_collections/otpatch/fleet
ROLLOUT = ROOT / "fleet" / "rollout.yml"
FLEET_MODES = ("observe", "execute")
SITE_VARS = ("otpatch_site", "otpatch_home")  # required host vars of every site


@dataclass(frozen=True)
class Site:
    """One plant: an Ansible host whose otpatch runs the procedure there."""

    name: str
    groups: tuple[str, ...]
    fleet_mode: str  # observe | execute
    inventory: str  # the site's otpatch inventory (otpatch_site)
    home: str  # the site's OTPATCH_HOME


@dataclass
class SiteProgress:
    """What the fleet knows of one site so far (the newest event wins)."""

    site: str
    batch: int = 0
    state: str = "not reached"
    failed: bool = False
    changed: bool = False
    site_run_id: str | None = None
    journal_head: Mapping[str, Any] | None = None
    record: str | None = None
    msg: str = ""


@dataclass
class FleetOutcome:
    run_id: str
    status: str  # ansible-runner's: successful | failed | canceled | timeout
    rc: int
    sites: dict[str, SiteProgress] = field(default_factory=dict)
    private_data_dir: str = ""


def load_sites(fleet_inventory: str) -> list[Site]:
    """The fleet inventory's sites in inventory order, as Ansible reads the file
    (ansible-inventory --list); InputError naming the site for a missing or bad variable."""
    import json
    import shutil
    import subprocess

    if not Path(fleet_inventory).is_file():
        raise InputError(f"{clip(fleet_inventory)}: no such fleet inventory")
    beside = Path(sys.executable).parent / "ansible-inventory"
    tool = str(beside) if beside.exists() else shutil.which("ansible-inventory")
    if tool is None:
        raise InputError("ansible-inventory not found: fleet runs need ansible-core")
    done = subprocess.run([tool, "--list", "-i", str(Path(fleet_inventory).resolve())],
                          capture_output=True, text=True, env={**os.environ, **_envvars()},
                          timeout=120)
    err = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    try:
        listed = json.loads(done.stdout or "{}") if done.returncode == 0 else {}
    except ValueError:
        listed = {}
    hostvars = (listed.get("_meta") or {}).get("hostvars") or {}
    if not hostvars:
        raise InputError(f"{clip(fleet_inventory)}: no site (Ansible host) in it"
                         + (f": {clip(err)}" if err else ""))
    groups = {name: body.get("hosts") or [] for name, body in listed.items()
              if name not in ("_meta", "all", "ungrouped") and isinstance(body, dict)}
    return [_site(fleet_inventory, name, hostvars[name], tuple(
                g for g, hosts in groups.items() if name in hosts))
            for name in _inventory_order(listed, hostvars)]


def _inventory_order(listed: Mapping[str, Any], hostvars: Mapping[str, Any]) -> list[str]:
    """The hosts in the order the file gives them (groups depth first, as `order:
    inventory` runs them); ansible-inventory's hostvars are sorted by name."""
    seen: dict[str, None] = {}

    def walk(group: str) -> None:
        body = listed.get(group) if isinstance(listed.get(group), dict) else {}
        for host in body.get("hosts") or ():
            seen.setdefault(host, None)
        for child in body.get("children") or ():
            walk(child)

    walk("all")
    return [h for h in seen if h in hostvars] + [h for h in hostvars if h not in seen]


def _site(file: str, name: str, hv: Mapping[str, Any], groups: tuple[str, ...]) -> Site:
    for var in SITE_VARS:
        if not isinstance(hv.get(var), str) or not hv[var]:
            raise InputError(f"{clip(file)}: site {name}: {var} must be set (the site's "
                             + ("otpatch inventory" if var == "otpatch_site" else
                                "OTPATCH_HOME") + ")")
    mode = hv.get("otpatch_fleet_mode", "observe")
    if mode not in FLEET_MODES:
        raise InputError(f"{clip(file)}: site {name}: otpatch_fleet_mode {clip(repr(mode))}: "
                         f"expected one of {', '.join(FLEET_MODES)}")
    return Site(name, groups, mode, hv["otpatch_site"], hv["otpatch_home"])


def run_fleet(fleet_inventory: str, playbook: str, *, home: Path, check: bool,
              mode: str = "dry_run", params: Mapping[str, str] | None = None,
              operator: str | None = None, rollout: str | None = None,
              worker: list[str] | None = None,
              on_event: Callable[[Any, SiteProgress], None] | None = None) -> FleetOutcome:
    """Run the rollout playbook over the fleet inventory for the site procedure `playbook`
    (its hash pinned here, asserted at each site) and journal every site event. With
    `worker` (a command, e.g. ["ansible-runner", "worker"], or one that reaches an
    execution node), the job goes there as ansible-runner's transmit stream and its events
    come back through `process`: the stream AWX sends over receptor."""
    from otpatch.engine.fleetevents import FleetRunEnded, FleetRunStarted
    from otpatch.engine.fleetjournal import FleetRecorder, folder
    from otpatch.engine.loader import load_playbook

    rollout_file = Path(rollout or ROLLOUT)
    if not rollout_file.is_file():
        raise InputError(f"{clip(str(rollout_file))}: no such rollout playbook")
    if rollout is None and not (COLLECTIONS / "ansible_collections" / "otpatch" /
                                "fleet").is_dir():
        raise InputError(f"the otpatch.fleet collection is not at {COLLECTIONS}: fleet runs "
                         "need otpatch installed from its repository (pip install -e)")
    sites = load_sites(fleet_inventory)
    pinned = load_playbook(playbook).content_hash
    with FleetRecorder(home, operator) as rec:
        rec.add(FleetRunStarted(
            elapsed=0.0, fleet_inventory=str(fleet_inventory), playbook=str(playbook),
            playbook_sha256=pinned, rollout=str(rollout_file), check=check,
            sites=[{"site": s.name, "groups": list(s.groups), "fleet_mode": s.fleet_mode}
                   for s in sites]))
        private = folder(home) / "runs" / rec.run_id
        private.mkdir(parents=True, mode=0o700)
        handler = EventJournal(rec, on_event)
        extravars = {"otpatch_playbook": str(Path(playbook).resolve()),
                     "otpatch_playbook_sha256": pinned, "otpatch_mode": mode,
                     "otpatch_params": dict(params or {})}
        if operator:
            extravars["otpatch_operator"] = operator
        if worker:
            runner = _through_worker(worker, private, rollout_file, Path(fleet_inventory),
                                     check, extravars, handler)
        else:
            runner = _run(private, rollout_file, Path(fleet_inventory), check, extravars,
                          handler)
        stats = handler.stats
        rec.add(FleetRunEnded(elapsed=0.0, status=str(runner.status), rc=int(runner.rc or 0),
                              stats=stats))
        return FleetOutcome(rec.run_id, str(runner.status), int(runner.rc or 0),
                            handler.sites, str(private))


def _run(private: Path, rollout: Path, inventory: Path, check: bool,
         extravars: dict[str, Any], handler: "EventJournal") -> Any:
    import ansible_runner  # here, not at import: the CLI must start fast

    kwargs: dict[str, Any] = {
        "private_data_dir": str(private), "project_dir": str(rollout.resolve().parent),
        "playbook": str(rollout.resolve()), "inventory": str(inventory.resolve()),
        "envvars": _envvars(private), "extravars": extravars, "quiet": True}
    if check:
        kwargs["cmdline"] = "--check"
    config = ansible_runner.RunnerConfig(**kwargs)
    config.prepare()
    runner = ansible_runner.Runner(config, event_handler=handler)
    runner.run()
    return runner


def _through_worker(worker: list[str], private: Path, rollout: Path, inventory: Path,
                    check: bool, extravars: dict[str, Any], handler: "EventJournal") -> Any:
    """ansible-runner's streaming pipeline (ansible-runner docs, "Remote job execution"):
    `transmit` packs the job (a private data dir holding the rollout and the fleet
    inventory) onto the worker's stdin, the worker runs it wherever it is, and `process`
    reads its stdout back into events and artifacts here."""
    import shutil
    import subprocess
    import threading

    import ansible_runner

    job = private / "job"
    (job / "project").mkdir(parents=True)
    (job / "inventory").mkdir()
    shutil.copy(rollout, job / "project" / rollout.name)
    shutil.copy(inventory, job / "inventory" / "fleet.yml")
    kwargs: dict[str, Any] = {"private_data_dir": str(job), "playbook": rollout.name,
                              "inventory": str(job / "inventory" / "fleet.yml"),
                              "envvars": _envvars(), "extravars": extravars, "quiet": True}
    if check:
        kwargs["cmdline"] = "--check"
    try:
        proc = subprocess.Popen(worker, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    except OSError as e:
        raise InputError(f"--worker {clip(' '.join(worker))}: cannot start: {e}") from None

    def transmit() -> None:
        try:
            ansible_runner.run(streamer="transmit", _output=proc.stdin, **kwargs)
        finally:
            proc.stdin.close()

    sender = threading.Thread(target=transmit, daemon=True)
    sender.start()
    processed = ansible_runner.run(streamer="process", _input=proc.stdout, quiet=True,
                                   private_data_dir=str(private / "processed"),
                                   event_handler=handler)
    sender.join()
    proc.wait()
    return processed


def _envvars(private: Path | None = None) -> dict[str, str]:
    """What ansible-playbook gets beyond this process's environment: the shipped collection
    first on the collections path, no colour, Ansible from beside this Python."""
    given = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "")
    env = {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "False",
           "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(p for p in (str(COLLECTIONS), given)
                                                       if p)}
    if private is not None:
        env["ANSIBLE_LOCAL_TEMP"] = str(private / "tmp")
    bin_dir = Path(sys.executable).parent
    if (bin_dir / "ansible-playbook").exists():
        env["PATH"] = os.pathsep.join(p for p in (str(bin_dir), os.environ.get("PATH", ""))
                                      if p)
    if "utf8" not in (os.environ.get("LC_ALL") or os.environ.get("LANG") or "").lower() \
            .replace("-", ""):
        env["LC_ALL"] = "C.UTF-8"
    return env


class EventJournal:
    """ansible-runner's event_handler: each `runner_on_*` event journaled as it arrives
    (FleetSiteEvent), the serial batch counted from `playbook_on_play_start` (Ansible starts
    the play again for each batch), the site's progress kept for the display and report."""

    def __init__(self, recorder: Any, on_event: Callable[[Any, SiteProgress], None] | None):
        self.recorder, self.on_event = recorder, on_event
        self.batch = 0
        self.sites: dict[str, SiteProgress] = {}
        self.stats: dict[str, Any] = {}  # playbook_on_stats: ok / changed / failures ...

    def __call__(self, event: Mapping[str, Any]) -> bool:
        kind = str(event.get("event") or "")
        if kind == "playbook_on_play_start":
            self.batch += 1
        elif kind == "playbook_on_stats":
            data = event.get("event_data") or {}
            self.stats = {k: dict(data[k]) for k in ("ok", "changed", "failures", "dark",
                                                     "skipped", "rescued", "ignored")
                          if isinstance(data.get(k), dict)}
        elif kind.startswith("runner_on_") and kind not in ("runner_on_start",):
            self._site_event(kind, event.get("event_data") or {})
        return True  # ansible-runner keeps the event in its artifacts too

    def _site_event(self, kind: str, data: Mapping[str, Any]) -> None:
        from otpatch.engine.fleetevents import FleetSiteEvent

        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        site = str(data.get("host") or "")
        failed = kind in ("runner_on_failed", "runner_on_unreachable") and \
            not data.get("ignore_errors")
        head = res.get("journal_head") if isinstance(res.get("journal_head"), dict) else None
        event = FleetSiteEvent(
            elapsed=0.0, site=site, event=kind, task=str(data.get("task") or ""),
            batch=self.batch, changed=bool(res.get("changed")), failed=failed,
            msg=clip(_said(res), 500), site_run_id=_text(res.get("run_id")),
            state=_text(res.get("state")), journal_head=head, record=_text(res.get("record")))
        self.recorder.add(event)
        progress = self.sites.setdefault(site, SiteProgress(site))
        progress.batch = self.batch
        if event.site_run_id or event.state or failed:
            progress.state = event.state or ("failed" if failed else progress.state)
            progress.site_run_id = event.site_run_id or progress.site_run_id
            progress.journal_head = head or progress.journal_head
            progress.record = event.record or progress.record
            progress.changed = progress.changed or event.changed
        progress.failed = progress.failed or failed
        progress.msg = event.msg or progress.msg
        if self.on_event:
            self.on_event(event, progress)


def _said(res: Mapping[str, Any]) -> str:
    """The task's message; for a loop, its failed items' own ("One or more items failed"
    alone names none)."""
    items = res.get("results") if isinstance(res.get("results"), list) else []
    failed = [str(i.get("msg")) for i in items if isinstance(i, dict) and i.get("failed")
              and i.get("msg")]
    return "; ".join(failed) if failed else str(res.get("msg") or "")


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value) else None
