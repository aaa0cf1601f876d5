"""The baseline: what each inventory device runs now, and where each value came from.

A value is typed (the inventory's `firmware:`, `serial_number:` ...), read back and verified
by a run that ended (its as-left, engine/report/devices.py, which only a verified device
outcome yields), or read from the device by `baseline check` and found in line with the
baseline (a reading that drifted is recorded, never adopted: a change needs its record).
The newest of these wins over older ones and over the typed value. Beside the values: the
services that answered the newest check (where the site allows active checks) and the
configuration backups stored for the host (engine/backupstore.py), each by SHA-256.

The baseline is derived, every time, from records that are journaled and signed: the runs'
journal (hash-chained, checkpoints signed; a damaged journal refuses, as `report` does), the
site record (engine/siterecord.py: the checks' readings and the backups) and the inventory.
So it cannot say more than those records do, and it has no store of its own to keep in step.

A run on a simulator is a rehearsal: its readings are the simulator's, and the provenance
says so (`on a simulator`). `advisories match` takes each device's firmware from here
(modules/advisories/cli.py) and says where it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

# baseline value -> the inventory field that types it
TYPED = {"firmware": "firmware", "serial": "serial", "part_number": "part_number",
         "model": "model", "vendor": "vendor",  # Host.serial is `serial_number` in the file
         "product_version": "product_version"}  # a host variable (modules/m580/hardware.py)
ADOPTED = ("same", "accepted")  # readings of `baseline check` the baseline takes up
VERIFIED = ("changed_and_verified", "restored_and_verified", "left_changed", "not_changed")


@dataclass(frozen=True)
class Value:
    """One baseline value and its provenance."""

    value: str
    source: str  # typed | as_left | device_read
    run_id: str = ""  # the run (as_left) or the site record (device_read) it comes from
    ended: str = ""  # when the run ended or the device was read (ISO 8601)
    mode: str = ""  # the run's mode (execute | dry_run); "" for a device read
    simulator: bool = False

    def provenance(self) -> str:
        if self.source == "typed":
            return "typed in the inventory"
        where = " on a simulator" if self.simulator else ""
        ended = self.ended[:19] + "Z" if len(self.ended) >= 19 else self.ended
        if self.source == "device_read":
            return f"read from the device{where} by baseline check {self.run_id} ({ended})"
        return f"verified as-left of run {self.run_id} ({self.mode}{where}, ended {ended})"

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "run_id": self.run_id or None,
                "ended": self.ended or None, "mode": self.mode or None,
                "simulator": self.simulator, "provenance": self.provenance()}


@dataclass(frozen=True)
class Baseline:
    """Per inventory host, per value (TYPED's keys), the value and where it came from."""

    hosts: Mapping[str, Mapping[str, Value]]
    # host -> the newest checked services reading {checked, why, ports, record, at}
    services: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({}))
    # host -> artifact -> the newest stored backup {sha256, size, record, at, provenance}
    backups: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({}))

    def value(self, host: str, name: str) -> Value | None:
        return self.hosts.get(host, {}).get(name)

    def to_json(self) -> dict[str, Any]:
        return {host: {k: v.to_json() for k, v in sorted(values.items())}
                for host, values in sorted(self.hosts.items())}

    def to_json_full(self) -> dict[str, Any]:
        """Per host: its values, its services and its backups."""
        return {host: {"values": {k: v.to_json() for k, v in sorted(values.items())},
                       "services": dict(self.services.get(host) or {}) or None,
                       "backups": dict(self.backups.get(host) or {})}
                for host, values in sorted(self.hosts.items())}


def baseline(home: Path, inventory: Any) -> Baseline:
    """The baseline of the inventory's hosts from the journal and the site record at `home`
    (none yet: the typed values). JournalError for a damaged journal or site record."""
    values = {name: _typed(host) for name, host in inventory.hosts.items()}
    found: list[tuple[str, str, dict[str, Value]]] = []  # (when, host, values)
    for device, run in _verified_devices(home):
        found.append((_instant(str(run.get("ended_at") or "")), device["host"],
                      _as_left(device, run)))
    services: dict[str, dict[str, Any]] = {}
    backups: dict[str, dict[str, Any]] = {}
    for entry in _site_entries(home, inventory):
        _fold_site(entry, found, services, backups)
    for _when, host, read in sorted(found, key=lambda f: f[0]):
        if host in values:
            values[host].update(read)
    return Baseline(MappingProxyType({h: MappingProxyType(v) for h, v in values.items()}),
                    MappingProxyType(services), MappingProxyType(backups))


def _instant(text: str) -> str:
    """An ISO 8601 time as a sortable UTC text (the journal writes UTC with an offset)."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).astimezone(
        timezone.utc).isoformat()


def _site_entries(home: Path, inventory: Any) -> list[Any]:
    from otpatch.engine import siterecord

    return siterecord.entries(home, ("baseline_reading", "backup_stored"),
                              inventory=inventory, doing="baseline")


def _fold_site(entry: Any, found: list, services: dict, backups: dict) -> None:
    """A check's reading (in line with the baseline: its values; checked: its services) or
    a stored backup, folded in."""
    p = entry.payload
    host, at = p["host"], _instant(entry.ts)
    if entry.event_type == "backup_stored":
        backups.setdefault(host, {})[p["artifact"]] = {
            "sha256": p["sha256"], "size": p["size"], "record": entry.run_id, "at": entry.ts,
            "provenance": p["provenance"]}
        return
    if p["status"] not in ADOPTED:  # a drift stays drift until it is accepted or undone
        return
    if p.get("services") is not None:
        services[host] = {"ports": p["services"], "record": entry.run_id, "at": entry.ts,
                          "why": p.get("services_why")}
    found.append((at, host, {k: Value(str(v), "device_read", entry.run_id, entry.ts, "",
                                          bool(p.get("simulator")))
                                 for k, v in p["read"].items() if k in TYPED and v}))


def _typed(host: Any) -> dict[str, Value]:
    out = {}
    for name, field in TYPED.items():
        typed = str(getattr(host, field, "") or (host.vars or {}).get(field) or "")
        if typed:
            out[name] = Value(typed, "typed")
    return out


def _as_left(device: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Value]:
    ended = str(run.get("ended_at") or "")
    return {name: Value(str(reading["value"]), "as_left", run["run_id"], ended,
                        str(run.get("mode") or ""), bool(device.get("simulator")))
            for name, reading in device["as_left"].items()
            if name in TYPED and reading.get("value") not in (None, "")}


def _verified_devices(home: Path) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(device, run) for every verified device of every ended run, oldest run first: the
    journal opened once, checked once, each run folded to its devices only."""
    from otpatch.engine.evidence_store import record_entry
    from otpatch.engine.journal import Journal
    from otpatch.engine.journalfile import FILENAME
    from otpatch.engine.report.build import ended_devices

    if not (home / FILENAME).is_file():
        return []
    out = []
    with Journal.open(home, read_only=True) as journal:
        journal.require_intact(None, "baseline")
        for summary in journal.runs():
            entries = journal.entries(summary.run_id)
            record = record_entry(entries)
            if record is None:  # not ended: its readings may not be its last
                continue
            devices, run = ended_devices(summary.run_id,
                                         [e for e in entries if e.seq <= record.seq])
            out += [(d, run) for d in devices if d["verified"] and d["outcome"] in VERIFIED]
    return out


def firmware_sources(home: Path, inventory: Any) -> dict[str, tuple[str, str]]:
    """host -> (firmware, why) for each host whose firmware the baseline takes from a run
    rather than from the inventory: what `advisories match` uses, and says."""
    out = {}
    for host, values in baseline(home, inventory).hosts.items():
        found = values.get("firmware")
        if found and found.source != "typed":
            typed = str(inventory.hosts[host].firmware or "") or "none"
            out[host] = (found.value, f"firmware {found.value} from the baseline: "
                                      f"{found.provenance()}; the inventory types {typed}")
    return out
