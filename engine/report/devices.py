"""Each device's honest outcome, from a run's step events alone: what it was found at, what
it was left at, and whether later steps checked what each change touched.

A device is changed when a device-changing step was started on it (its intent is in the
journal). Each intent records the aspects it changes (firmware, mode, configuration; device:
anything) and each step result the aspects it verified (the modules declare both); an
aspect stays unchecked until a later successful step verifies it. Only successful read-only
steps count as readings: as found is the first reading of each value before the first
change, as left the last reading not made stale by a later change of what it shows
(STALE_AFTER). The outcome:

- changed_and_verified: the run completed and every changed aspect was checked;
- restored_and_verified: the run did not complete, every changed aspect was checked, and
  every value compared reads as found;
- left_changed: checked, but a value compared reads other than as found after a run that
  did not complete (a restored profile on a firewall whose firmware stayed new), value by
  value;
- not_changed: no change was started on it;
- unknown: a change whose result is not recorded, a read-back that could not tell, or an
  aspect no later step checked (journals written before aspects were recorded: no reading
  after the last change).

Which facts mean what is the table READINGS (the names the M580, mGuard and CIP modules
answer with)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from otpatch.engine import events as E

# reading -> fact paths that carry it, first match wins ("*": any key at that level)
READINGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "firmware": (("running_version",), ("revision",), ("firmware_version",),
                 ("checks", "*", "observed", "firmware_version")),
    "vendor": (("vendor",),),
    "model": (("model",),),
    "part_number": (("product_code",), ("part_number",)),
    "serial": (("serial",),),
    "cpu_state": (("state",),),
    "run_led": (("run_led",),),
    "profile_sha256": (("profile", "sha256"),),
    "rules": (("checks", "*", "observed", "rules_active"), ("profile", "rules", "total")),
    "rules_by_table": (("profile", "rules"),),
    "rules_digest": (("checks", "*", "observed", "rules_digest"), ("profile", "rules_digest")),
    "tunnels_up": (("checks", "*", "observed", "tunnels_up"),),
    "vlans": (("checks", "*", "observed", "vlans"),),
    "io_status": (("io_status",),),  # cip.connections: the adapter's identity status
    "rpi_ms_configured": (("rpi_ms_configured",),),  # as configured: no public read shows the RPI
    "io_timeouts": (("connection_manager", "connection_timeouts"),),
}
IDENTITY = ("vendor", "model", "part_number", "serial")
ANY = "device"  # a change of anything on the device (modules/contract/module.py ANY_ASPECT)
# reading -> the changes after which an earlier reading of it no longer says how it is left
STALE_AFTER = {"firmware": ("firmware",), "cpu_state": ("firmware", "mode"),
               "run_led": ("firmware", "mode"),
               **{k: ("configuration", "firmware") for k in (
                   "profile_sha256", "rules", "rules_by_table", "rules_digest", "tunnels_up",
                   "vlans")},
               **{k: ("firmware", "configuration") for k in (
                   "io_status", "rpi_ms_configured", "io_timeouts")}}
# values compared between as found and as left, and how a difference is said
# (not the profile file's hash: a firmware update rewrites its #version line, so the file
# differs while every rule means the same; the rules digest says what the rules do)
COMPARED = {"firmware": "firmware", "rules_digest": "the firewall rule set",
            "rules": "rule count",
            # another unit in its place (the M580's spare CPU): its serial is not the one found
            "serial": "serial"}
OUTCOME_WORDS = {"changed_and_verified": "changed and verified",
                 "restored_and_verified": "restored and verified",
                 "left_changed": "left changed", "not_changed": "not changed",
                 "unknown": "unknown"}


@dataclass
class Reading:
    value: Any
    state: str
    step: str

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "state": self.state, "step": self.step}


@dataclass
class Trail:
    """What the run did to one device, in journal order."""

    host: str
    targets: list[str] = field(default_factory=list)
    found: dict[str, Reading] = field(default_factory=dict)
    left: dict[str, Reading] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)  # "state step" of each change started
    reads_after_change: int = 0
    reads: int = 0
    pending: str | None = None  # a change whose result is not recorded
    undecided: str | None = None  # a read-back that could not tell
    last_failure: str | None = None  # the change, or a read after it, that failed
    # aspect changed (firmware, mode, configuration, device) -> the change not yet checked
    # by a later step that verifies it; None: the journal predates aspects (then a read
    # after the last change is what verifies it)
    unchecked: dict[str, str] | None = None


def hosts_of(facts: Mapping[str, Any], hosts: list[str]) -> dict[str, Mapping[str, Any]]:
    """A step's facts per host: keyed by host where the module nests them (cip adapters),
    else all of them for a target of one host."""
    if hosts and set(facts) & set(hosts):  # keyed by host at the top (cip.connections)
        return {h: facts[h] for h in hosts if isinstance(facts.get(h), Mapping)}
    for value in facts.values():
        if isinstance(value, Mapping) and hosts and set(value) & set(hosts):
            return {h: value[h] for h in hosts if isinstance(value.get(h), Mapping)}
    return {hosts[0]: facts} if len(hosts) == 1 else {}


def readings(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The READINGS found in one host's facts from one step."""
    out = {}
    for name, paths in READINGS.items():
        for path in paths:
            found = _at(facts, path)
            if found is not None:
                out[name] = found
                break
    return out


def _at(value: Any, path: tuple[str, ...]) -> Any:
    if not path:
        return value
    if not isinstance(value, Mapping):
        return None
    if path[0] == "*":
        for key in sorted(value):
            found = _at(value[key], path[1:])
            if found is not None:
                return found
        return None
    return _at(value.get(path[0]), path[1:])


class Trails:
    """Folds a run's events into one Trail per targeted host."""

    def __init__(self, targets: Mapping[str, list[str]]):
        self.targets = {t: list(h) for t, h in targets.items()}
        self.trails: dict[str, Trail] = {}
        for target, hosts in sorted(self.targets.items()):
            for host in hosts:
                self.trail(host).targets.append(target)
        self.intents: dict[tuple[str, int], E.StepIntent] = {}

    def trail(self, host: str) -> Trail:
        return self.trails.setdefault(host, Trail(host))

    def hosts(self, target: Any) -> list[str]:
        return self.targets.get(target, []) if isinstance(target, str) else []

    def intent(self, event: E.StepIntent) -> None:
        if not event.changes_device:
            return
        self.intents[(event.state, event.index)] = event
        where = f"{event.state} {event.step}"
        for host in self.hosts(event.args.get("target")):
            trail = self.trail(host)
            trail.changes.append(where)
            trail.pending, trail.reads_after_change, trail.last_failure = where, 0, None
            aspects = event.changes
            if aspects is not None:
                trail.unchecked = {**(trail.unchecked or {}), **{a: where for a in aspects}}
            # as left: only what was read after a change of what the reading shows
            trail.left = {k: r for k, r in trail.left.items()
                          if aspects is not None and ANY not in aspects
                          and not set(STALE_AFTER.get(k, ())) & set(aspects)}

    def result(self, event: E.StepResult) -> None:
        intent = self.intents.pop((event.state, event.index), None)
        hosts = self.hosts(event.facts_scope)
        if intent is not None:
            hosts = sorted(set(hosts) | set(self.hosts(intent.args.get("target"))))
            for host in hosts:
                self.trail(host).pending = None
        failed = event.result.failed
        for host in hosts:
            trail = self.trail(host)
            if failed and trail.changes:
                trail.last_failure = ("it failed" if intent is not None else
                                      f"{event.state} {event.step} failed") + \
                    f": {event.result.msg}"
            elif not failed and trail.unchecked and event.verifies:
                for aspect in event.verifies:
                    trail.unchecked.pop(aspect, None)
        if intent is not None or failed:
            return
        for host, facts in hosts_of(event.result.facts or {}, hosts).items():
            self._read(self.trail(host), readings(facts), event)

    def _read(self, trail: Trail, values: dict[str, Any], event: E.StepResult) -> None:
        if not values:  # facts kept under the target that read nothing of the device
            return
        trail.reads += 1
        where = (event.state, event.step)
        if trail.changes:
            trail.reads_after_change += 1
        for name, value in values.items():
            reading = Reading(value, *where)
            if not trail.changes:
                trail.found.setdefault(name, reading)
            trail.left[name] = reading

    def read_back(self, event: E.ReadBackDone) -> None:
        intent = self.intents.get((event.state, event.index))
        hosts = self.hosts(intent.args.get("target")) if intent else []
        for host in hosts:
            trail = self.trail(host)
            if event.applied is None:
                trail.undecided = f"{event.state} {event.module}: the read-back could not tell"
            else:
                trail.pending = None
        if intent is not None and event.applied is not None:
            self.intents.pop((event.state, event.index), None)


def trails_of(events: Iterable[Any], targets: Mapping[str, list[str]]) -> dict[str, Trail]:
    folded = Trails(targets)
    for event in events:
        if isinstance(event, E.StepIntent):
            folded.intent(event)
        elif isinstance(event, E.StepResult):
            folded.result(event)
        elif isinstance(event, E.ReadBackDone):
            folded.read_back(event)
    return folded.trails


def outcome(trail: Trail, completed: bool) -> tuple[str, bool, str]:
    """(outcome, verified, statement) of one device; the statement names the host and
    the outcome first: `lab-mguard-1: left changed: remains at firmware 10.5.0 ...`."""
    result, verified, detail = _judged(trail, completed)
    return result, verified, f"{trail.host}: {OUTCOME_WORDS[result]}: {detail}"


def _judged(trail: Trail, completed: bool) -> tuple[str, bool, str]:
    if not trail.changes:
        seen = _values(trail.left)
        return "not_changed", trail.reads > 0, f"read {seen}" if seen else \
            "not read by this run"
    if trail.pending or trail.undecided:
        why = trail.undecided or f"{trail.pending} started, its result is not recorded"
        return "unknown", False, f"{why}; read the device before trusting it"
    if trail.unchecked:
        aspect, where = next(iter(sorted(trail.unchecked.items())))
        why = trail.last_failure or "no later step checked it"
        return "unknown", False, f"its {aspect} change ({where}) was not verified: {why}"
    if trail.unchecked is None and not trail.reads_after_change:
        why = trail.last_failure or "nothing read it after"
        return "unknown", False, f"its last change ({trail.changes[-1]}) was not " \
                                 f"verified: {why}"
    differ = [k for k in COMPARED if k in trail.found and k in trail.left
              and trail.found[k].value != trail.left[k].value]
    same = [k for k in COMPARED if k in trail.found and k in trail.left and k not in differ
            and k != "serial"]  # the same unit is no restored value
    if completed:
        moved = "; ".join(f"{COMPARED[k]} {_short(trail.found[k].value)} -> "
                          f"{_short(trail.left[k].value)}" for k in differ)
        return "changed_and_verified", True, moved or "reads as found after the change"
    kept = ", ".join(_said(k, trail.left[k].value) for k in same)
    if not differ:
        return "restored_and_verified", True, f"{kept}, as found" if kept else \
            "read after the restore"
    unit = [f"another unit in its place, serial {_short(trail.left[k].value)} (as found "
            f"{_short(trail.found[k].value)})" for k in differ if k == "serial"]
    remains = "; ".join(f"{COMPARED[k]} {_short(trail.left[k].value)} (as found "
                        f"{_short(trail.found[k].value)})" for k in differ if k != "serial")
    said = "; ".join(unit + ([f"remains at {remains}"] if remains else []))
    return "left_changed", True, said + (f"; restored: {kept}, as found" if kept else "")


def _said(name: str, value: Any) -> str:
    """A value read back as found, in words."""
    if name == "rules":
        return f"{value} firewall rules"
    if name in ("rules_digest", "profile_sha256"):
        return COMPARED[name]
    return f"{COMPARED[name]} {_short(value)}"


def _values(readings_: Mapping[str, Reading]) -> str:
    """What was read of an unchanged device, in words."""
    value = {k: r.value for k, r in readings_.items()}
    shown = []
    if "firmware" in value:
        shown.append(f"firmware {value['firmware']}")
    if "cpu_state" in value:
        shown.append(f"CPU {value['cpu_state']}")
    if "rules" in value:
        shown.append(f"{value['rules']} firewall rules")
    if "io_status" in value:
        rpi = f" (RPI {value['rpi_ms_configured']:g} ms as configured)" if isinstance(
            value.get("rpi_ms_configured"), (int, float)) else ""
        shown.append(f"I/O {value['io_status']}" + rpi
                     + (f", {value['io_timeouts']} connection timeouts counted"
                        if "io_timeouts" in value else ""))
    return ", ".join(shown)


def _short(value: Any) -> str:
    text = str(value)
    if text.startswith("sha256:") and len(text) > 19:
        return text[:19] + "…"
    return text if len(text) <= 24 else text[:12] + "…"


def device_document(trail: Trail, run_id: str, asset: Mapping[str, Any] | None,
                    completed: bool) -> dict[str, Any]:
    """One device of the report (schemas/report.schema.json #/$defs/device)."""
    asset = asset or {}
    result, verified, statement = outcome(trail, completed)
    seen = {**{k: r for k, r in trail.found.items()}, **trail.left}
    identity = {k: (seen[k].value if k in seen else asset.get(k) or None) for k in IDENTITY}
    return {"host": trail.host, "run_id": run_id, "targets": sorted(trail.targets),
            "stage": asset.get("stage"), "simulator": asset.get("simulator"),
            "identity": identity,
            "as_found": {k: r.to_json() for k, r in sorted(trail.found.items())},
            "as_left": {k: r.to_json() for k, r in sorted(trail.left.items())},
            "changed": bool(trail.changes), "verified": verified, "outcome": result,
            "statement": statement}
