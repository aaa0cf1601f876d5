"""The fleet journal's typed events (engine/fleetjournal.py): what `otpatch fleet run` keeps
of a rollout across sites. Registered with the runs' events (engine/eventbase.py KINDS;
engine/events.py imports this module), so the journal code checks them on write and read.

A fleet run never acts on a device: each site's own otpatch does, in its own zone, and its
own journal is the record of what happened there. The fleet journal keeps which site ran
when (the Ansible batch), what Ansible reported of each task at each site, and the site's
run id and journal head at that moment, so a site's record can be found and checked."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from otpatch.engine.eventbase import Event


@dataclass(frozen=True)
class FleetRunStarted(Event):
    """A rollout begun: the fleet inventory, the site procedure and its pinned hash, the
    Ansible playbook that schedules it, check mode or not, and the sites by group."""

    kind: ClassVar[str] = "fleet_run_started"
    category: ClassVar[str] = "fleet"
    fleet_inventory: str
    playbook: str  # the otpatch procedure each site runs
    playbook_sha256: str
    rollout: str  # the Ansible playbook (fleet/rollout.yml)
    check: bool
    sites: list  # [{site, groups, fleet_mode}] in inventory order

    def outcome(self) -> str:
        return "intent"


@dataclass(frozen=True)
class FleetSiteEvent(Event):
    """One `runner_on_*` event of one site (ok, failed, skipped, unreachable): the task,
    the batch it ran in, and where the module said so, the site's run id, state and
    journal head."""

    kind: ClassVar[str] = "fleet_site_event"
    category: ClassVar[str] = "fleet"
    site: str
    event: str  # runner_on_ok | runner_on_failed | runner_on_skipped | runner_on_unreachable
    task: str
    batch: int  # 1-based: the serial batch the site ran in
    changed: bool
    failed: bool
    msg: str = ""
    site_run_id: str | None = None
    state: str | None = None  # the site_rollout state (completed, deferred, awaiting_signoff...)
    journal_head: dict | None = None  # {seq, hash} of the site's journal
    record: str | None = None  # the site run's record hash, where it produced one

    def outcome(self) -> str:
        return "failure" if self.failed else "success"


@dataclass(frozen=True)
class FleetRunEnded(Event):
    """The rollout's end as Ansible reported it: its status and rc, and per-site stats."""

    kind: ClassVar[str] = "fleet_run_ended"
    category: ClassVar[str] = "fleet"
    status: str  # successful | failed | canceled | timeout
    rc: int
    stats: dict  # ok / changed / failures / skipped / dark: {site: count}

    def outcome(self) -> str:
        return "success" if self.status == "successful" else "failure"
