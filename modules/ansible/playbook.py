"""ansible.playbook: run an Ansible playbook through ansible-runner as one step."""
from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.durations import format_duration, parse_duration

from otpatch.modules.contract.values import thaw
from otpatch.modules.ansible.deadline import PlaybookStopper
from otpatch.modules.ansible.environment import (ansible_envvars, inventory_secret_names, scrubbed)
from otpatch.modules.ansible.events import EventLog
from otpatch.modules.ansible.outcome import PlaybookOutcome, host_recap
from otpatch.modules.contract import platform
from otpatch.modules.contract.module import Context, Module, ReadBack, Result
from otpatch.modules.schema_defs import DURATION

LOG = logging.getLogger(__name__)

# ansible-runner imports fcntl (ansible_runner/utils), and "Windows without WSL is not natively
# supported as a control node" (Ansible's installation guide, control node requirements)
NOT_ON_WINDOWS = ("not available on Windows: Ansible's control node runs on Linux or macOS; "
                  "run this step from a Linux otpatch host")


class AnsiblePlaybook(Module):
    name = "ansible.playbook"
    # The site's own playbook decides what reaches its devices: its interfaces are the
    # site's to stand behind, whatever the host.
    real_device = "site"
    sources = ("ansible-runner, the interface to Ansible this step drives, "
               "https://ansible.readthedocs.io/projects/runner/",)
    doc = (
        "Run an Ansible playbook as one step, through ansible-runner, against the run's own "
        "inventory file (hosts carry ansible_connection and the rest). `playbook` is a path; a "
        "relative one is resolved against the directory of the otpatch playbook, or the "
        "current directory when the run has none. ansible-playbook starts in the playbook's "
        "directory, so an ansible.cfg beside it applies. `limit` (a host pattern), `tags` and "
        "`extravars` go to ansible-playbook as --limit, --tags and -e; `timeout` stops a run "
        "that takes longer, with the tasks it is running. In a dry run the playbook runs in Ansible check mode (--check "
        "--diff): it reports what would change and changes nothing, unless `check: false`, "
        "which runs it for real against the dry run's simulators. In execute mode it runs for "
        "real unless `check: true`. Changed if any host reported a change; failed unless "
        "Ansible ends 'successful' with rc 0; a host Ansible cannot reach marks the step "
        "unreachable. Every runner event is journaled as a compact `ansible_event`; the "
        "runner's full artifacts stay in the run directory under "
        "ansible/NNN-<playbook>-<phase>/, readable by otpatch's user only (0600 files, 0700 "
        "folders). ansible-playbook gets otpatch's environment without its secrets: the "
        "variables the inventory names as password_env and any *_PASSWORD, *_TOKEN, *_KEY or "
        "*_SECRET are left out (so they are in no artifact either); hand a playbook a secret "
        "another way (a vault, a file). Nothing is printed to the terminal. Host key "
        "checking keeps Ansible's default (on) unless ANSIBLE_HOST_KEY_CHECKING is set in "
        "otpatch's environment. Not available on an otpatch host running Windows (Ansible's "
        "control node runs on Linux or macOS): there the step fails without starting."
    )
    read_back_doc = (
        "re-runs the playbook in Ansible check mode with the same arguments: no pending change "
        "on any host -> applied (the change is in effect; the stand-in result says changed "
        "false, since the check cannot tell which run made it); pending changes -> not "
        "applied, the step may run again; a failure or an unreachable host -> cannot tell, a "
        "person decides. It is only as good as the playbook's check-mode support: tasks that "
        "skip in check mode (command, shell) report nothing pending. A step that itself runs "
        "in check mode changes nothing and simply runs again."
    )
    changes_device = True  # an Ansible playbook may change anything
    verifies = {"device": ("verify",)}  # verify: check_mode re-runs it in check mode
    supports_dry_run = True
    args_schema = {
        "type": "object",
        "properties": {
            "playbook": {"type": "string", "minLength": 1,
                         "description": "the Ansible playbook file; relative to the otpatch "
                                        "playbook's directory"},
            "limit": {"type": "string", "minLength": 1,
                      "description": "an Ansible host pattern (--limit)"},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1},
                     "description": "run only tasks with these tags (--tags)"},
            "extravars": {"type": "object", "description": "extra variables (-e)"},
            "check": {"type": "boolean",
                      "description": "Ansible check mode; default: on in a dry run, off in "
                                     "execute mode"},
            "verify": {"const": "check_mode",
                       "description": "after a run that changed something, run the playbook "
                                      "again in check mode and fail if any change is still "
                                      "pending (Ansible's own read-back)"},
            "timeout": DURATION,
        },
        "required": ["playbook"],
        "additionalProperties": False,
    }

    def run(self, args: Mapping[str, Any], ctx: Context) -> Result:
        check = runs_in_check_mode(args, ctx.dry_run)
        result = play(args, ctx, check_mode=check, phase="check" if check else "run").result()
        if check or result.failed or not result.changed or not args.get("verify"):
            return result
        return _verified(result, play(args, ctx, check_mode=True, phase="verify"))

    def read_back(self, args: Mapping[str, Any], ctx: Context) -> ReadBack:
        if runs_in_check_mode(args, ctx.dry_run):
            return ReadBack(applied=False, result=Result(
                msg="read-back: a check-mode step changes nothing; it runs again"))
        outcome = play(args, ctx, check_mode=True, phase="read_back")
        facts = outcome.facts()
        if outcome.failed or outcome.unreachable:
            return ReadBack(applied=None, result=Result(
                failed=True, unreachable=outcome.unreachable, facts=facts,
                msg=f"read-back cannot tell: {outcome.line()}"))
        if outcome.changed:
            return ReadBack(applied=False, result=Result(
                facts=facts, msg=f"read-back: changes still pending: {outcome.line()}"))
        return ReadBack(applied=True, result=Result(
            facts=facts, msg=f"read-back: nothing pending, in effect: {outcome.line()}"))


def _verified(result: Result, check: PlaybookOutcome) -> Result:
    """The run's result, failed when the check-mode re-run still sees changes pending."""
    if check.failed or check.unreachable or check.changed:
        return Result(failed=True, changed=True, facts=result.facts,
                      msg=f"{result.msg}; verify (check mode): {check.line()}: not in effect")
    return Result(changed=True, facts=result.facts,
                  msg=f"{result.msg}; verified in check mode: nothing pending")


def runs_in_check_mode(args: Mapping[str, Any], dry_run: bool) -> bool:
    """Check mode in a dry run unless `check: false`; in execute mode only with `check: true`."""
    check = args.get("check")
    return check is not False if dry_run else check is True


def play(args: Mapping[str, Any], ctx: Context, *, check_mode: bool, phase: str) -> PlaybookOutcome:
    """One ansible-playbook run through ansible-runner; an outcome, never an exception for a
    missing playbook or inventory, or on Windows (where ansible_runner cannot be imported)."""
    if platform.on_windows():
        return PlaybookOutcome.not_started(str(args["playbook"]), check_mode, NOT_ON_WINDOWS)
    playbook = resolve_playbook(args["playbook"], getattr(ctx, "playbook_dir", None))
    if not playbook.is_file():
        return PlaybookOutcome.not_started(str(playbook), check_mode,
                                           f"playbook not found: {playbook}")
    # the engine's Inventory knows the file it was loaded from; ansible-runner needs that file
    inventory = getattr(ctx.inventory, "path", None)
    if inventory is None or not Path(inventory).is_file():
        return PlaybookOutcome.not_started(
            str(playbook), check_mode, f"the run's inventory file is not available: {inventory}")
    return run_ansible(args, ctx, playbook, Path(inventory), check_mode=check_mode, phase=phase)


def run_ansible(args: Mapping[str, Any], ctx: Context, playbook: Path, inventory: Path, *,
                check_mode: bool, phase: str) -> PlaybookOutcome:
    """ansible-runner in a fresh private data dir under the run's change store."""
    private_dir = fresh_dir(Path(ctx.run_dir) / "ansible", f"{playbook.stem}-{phase}")
    events = EventLog(ctx, phase)
    timeout = parse_duration(args["timeout"]) if args.get("timeout") is not None else None
    stopper = PlaybookStopper(timeout, lambda: events.pid)
    kwargs = runner_kwargs(args, playbook, inventory, private_dir, check_mode)
    LOG.debug("ansible-runner %s in %s", playbook, private_dir)
    try:
        runner = start_runner(kwargs, inventory_secret_names(ctx.inventory),
                              event_handler=events, cancel_callback=stopper)
    finally:
        make_private(private_dir)
    status, reason = runner.status, events.reason()
    if stopper.expired:
        status, reason = "timeout", f"timed out after {format_duration(timeout)}"
    return PlaybookOutcome(playbook=str(playbook), rc=runner.rc, status=status,
                           check_mode=check_mode, recap=host_recap(runner.stats),
                           reason=reason, warnings=tuple(events.warnings),
                           private_data_dir=str(private_dir))


def start_runner(kwargs: dict[str, Any], secret_names: set[str], *, event_handler: Any,
                 cancel_callback: PlaybookStopper) -> Any:
    """What ansible_runner.run does (RunnerConfig, prepare, Runner.run, as ansible-runner
    documents it), with the secrets taken out of the environment it has prepared: it seeds
    that from this process's whole environment and writes it to artifacts/*/command."""
    import ansible_runner  # here, not at import: `otpatch validate` must start fast

    config = ansible_runner.RunnerConfig(**kwargs)
    config.prepare()
    config.env = scrubbed(config.env, secret_names)
    runner = ansible_runner.Runner(config, event_handler=event_handler,
                                   cancel_callback=cancel_callback)
    try:
        runner.run()
    except BaseException:  # an interrupt: ansible-playbook would run on, with its tasks
        cancel_callback.terminate()
        raise
    return runner


def runner_kwargs(args: Mapping[str, Any], playbook: Path, inventory: Path, private_dir: Path,
                  check_mode: bool) -> dict[str, Any]:
    """The keyword arguments for ansible_runner.RunnerConfig; the extra variables and runner
    settings are written to the private data dir's env/ (0600), where ansible-runner reads
    them, so they are not on ansible-playbook's command line."""
    kwargs: dict[str, Any] = {
        "private_data_dir": str(private_dir),
        "project_dir": str(playbook.parent),  # ansible-playbook's working directory
        "playbook": str(playbook),
        "inventory": str(inventory),
        "envvars": ansible_envvars(private_dir),
        "quiet": True,  # otpatch has its own display
    }
    if check_mode:
        kwargs["cmdline"] = "--check --diff"
    if args.get("limit"):
        kwargs["limit"] = args["limit"]
    if args.get("tags"):
        kwargs["tags"] = ",".join(args["tags"])
    if args.get("extravars"):
        write_private(private_dir / "env" / "extravars", thaw(args["extravars"]))
    if args.get("timeout") is not None:
        # the stopper checks its deadline each time ansible-runner's read loop wakes up
        write_private(private_dir / "env" / "settings", {"pexpect_timeout": 1})
    return kwargs


def write_private(path: Path, value: Any) -> None:
    """`value` as JSON in a file only this user can read (ansible-runner's env/ layout)."""
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = platform.create_private(path, replace=True)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(value, out)


def make_private(root: Path) -> None:
    """Everything under root readable by this user only: folders 0700, files 0600 (ansible-
    runner creates some of its artifacts with the process umask)."""
    root.chmod(0o700)
    for folder, dirs, files in os.walk(root):
        for names, mode in ((dirs, 0o700), (files, 0o600)):
            for path in (Path(folder, name) for name in names):
                if not path.is_symlink():  # a link's target is not the run's to change
                    with contextlib.suppress(FileNotFoundError):  # gone since the walk
                        path.chmod(mode)


def resolve_playbook(playbook: str, playbook_dir: Any) -> Path:
    path = Path(playbook).expanduser()
    if not path.is_absolute():
        path = Path(playbook_dir or Path.cwd()) / path
    return path.absolute()


def fresh_dir(parent: Path, label: str) -> Path:
    """parent/NNN-label, new for this call (numbered in call order); private to the user, as
    it holds the extra variables."""
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    number = sum(1 for _ in parent.iterdir())
    while True:
        number += 1
        path = parent / f"{number:03d}-{label}"
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            continue
