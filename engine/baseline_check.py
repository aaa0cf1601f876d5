"""`otpatch baseline check`: read each device now and report where it drifted from its baseline.

Only read-only modules are used, through the module contract (engine/runner.py invoke): an
M580 CPU or X80 adapter through `m580.identity` (Modbus FC 43/14 and the CIP Identity
object, public reads: a real device is read as a simulator is); an mGuard through
`mguard.version`, which reads a simulator but on a real device is a guided step (a person
downloads the profile), so a real mGuard is listed as not read, never asked. A host of any
other kind is not read either, and says why. Nothing is sent to a device by any other path.

Services: `services.check` (one TCP connect per usual port, only where the site allows
active checks: modules/services/probe.py) on every host with an endpoint or address.

Drift is a value read now that differs from the baseline's (engine/baseline.py): the
firmware (`revision` / `firmware_version`), the serial (another unit in its place), and a
service that answers now and did not at the baseline's reading, or the other way round.
Every host's reading is journaled in the site record (engine/siterecord.py), one record per
check, signed like a run; a reading in line with the baseline is taken up by it, a drift is
not, unless the person checking accepts it with a reason (`--accept`), which is recorded."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

READERS = {"m580": "m580.identity", "x80": "m580.identity", "mguard": "mguard.version"}
READ = {"m580.identity": {"firmware": "revision", "serial": "serial"},
        "mguard.version": {"firmware": "firmware_version", "serial": "serial"}}
TARGET = "device"


@dataclass(frozen=True)
class HostCheck:
    """One host: what was read now, and how it compares with its baseline."""

    host: str
    status: str  # same | drift | accepted | not_read | unreachable | failed
    detail: str
    read: Mapping[str, str] = field(default_factory=dict)
    services: Mapping[str, Any] | None = None  # port -> {service, state, at}; None: not checked
    services_why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "status": self.status, "detail": self.detail,
                "read": dict(self.read),
                "services": dict(self.services) if self.services is not None else None,
                "services_why": self.services_why}


def check(home: Path, inventory: Any, *, accept: str | None = None,
          operator: str | None = None) -> tuple[list[HostCheck], str]:
    """Every inventory host, read (where a read-only module may) and compared, and the
    readings journaled as one site record: (the checks, the record id). With `accept` (a
    reason), drifts are recorded as accepted and the baseline takes them up."""
    from otpatch.engine import siterecord
    from otpatch.engine.baseline import baseline

    current = baseline(home, inventory)
    with tempfile.TemporaryDirectory(prefix="otpatch-baseline-") as scratch:
        checks = [_check_host(host, current, inventory, Path(scratch))
                  for _name, host in sorted(inventory.hosts.items())]
    if accept is not None:
        checks = [replace(c, status="accepted", detail=f"{c.detail} (drift accepted: {accept})")
                  if c.status == "drift" else c for c in checks]
    record = siterecord.append(home, [_reading(c, inventory) for c in checks],
                               inventory=inventory, operator=operator)
    return checks, record


def _reading(c: HostCheck, inventory: Any) -> Any:
    from otpatch.engine.siteevents import BaselineReading

    return BaselineReading(elapsed=0.0, host=c.host, status=c.status, detail=c.detail,
                           read=dict(c.read), inventory=str(inventory.path),
                           simulator=bool(inventory.hosts[c.host].simulator),
                           services=dict(c.services) if c.services is not None else None,
                           services_why=c.services_why or None)


def _check_host(host: Any, current: Any, inventory: Any, scratch: Path) -> HostCheck:
    """The identity check, then the services (compared with the baseline's last reading)."""
    identity = _check_identity(host, current.hosts.get(host.name, {}), inventory, scratch)
    services = _services(host, inventory, scratch)
    if services is None or not services["checked"]:
        why = services["why"] if services else "no module reads services here"
        return replace(identity, services_why=why)
    ports = services["ports"]
    moved = _services_moved(ports, current.services.get(host.name))
    status, detail = identity.status, identity.detail
    if moved:
        status, detail = "drift", "; ".join([detail] + moved)
    return replace(identity, status=status, detail=detail, services=ports,
                   services_why=services["why"])


def _services(host: Any, inventory: Any, scratch: Path) -> Mapping[str, Any] | None:
    from otpatch.modules import registry

    module = registry.get("services.check")
    result = _read(module, host, inventory, scratch, {"label": "baseline"})
    if result.failed:
        return {"checked": False, "why": f"services not read: {result.msg}"}
    return result.facts["services"]["baseline"][host.name]


def _services_moved(ports: Mapping[str, Any], base: Mapping[str, Any] | None) -> list[str]:
    """Each port open now and not at the baseline's reading, or the other way round."""
    if not base:
        return []
    was = base["ports"]
    out = []
    for port, now in sorted(ports.items(), key=lambda kv: int(kv[0])):
        before = (was.get(port) or {}).get("state")
        if before is None or before == "not_mapped" or now["state"] == "not_mapped":
            continue
        if (now["state"] == "open") != (before == "open"):
            out.append(f"TCP {port} ({now['service']}) {now['state'].replace('_', ' ')} now, "
                       f"{before.replace('_', ' ')} in the baseline (check {base['record']})")
    return out


def _check_identity(host: Any, base: Mapping[str, Any], inventory: Any, scratch: Path
                    ) -> HostCheck:
    from otpatch.modules import registry

    reader = READERS.get(host.device or "")
    if reader is None:
        return HostCheck(host.name, "not_read", f"no read-only module reads a "
                         f"{host.device or 'host of unknown kind (no otpatch_device)'}")
    module = registry.get(reader)
    if not host.simulator and module.real_device != "sourced":
        return HostCheck(host.name, "not_read", f"{reader} is a {module.real_device} step "
                         "on a real device (a person reads it); baseline check sends only "
                         "public reads")
    result = _read(module, host, inventory, scratch)
    if result.unreachable or result.failed:
        status = "unreachable" if result.unreachable else "failed"
        return HostCheck(host.name, status, result.msg)
    read = {k: str(result.facts.get(fact)) for k, fact in READ[reader].items()
            if result.facts.get(fact) not in (None, "")}
    return _compare(host.name, read, base)


def _read(module: Any, host: Any, inventory: Any, scratch: Path,
          extra: Mapping[str, Any] | None = None) -> Any:
    """The module's result for this one host, through the runner's contract."""
    from otpatch.engine.clock import WallClock
    from otpatch.engine.context import RunContext
    from otpatch.engine.runner import PreparedStep, invoke

    ctx = RunContext(mode="dry_run" if host.simulator else "execute", clock=WallClock(),
                     run_id="baseline-check", run_dir=scratch, inventory=inventory,
                     playbook_dir=scratch, targets=MappingProxyType({TARGET: (host,)}),
                     facts={}, module_name=module.name)
    return invoke(PreparedStep(None, module, {"target": TARGET, **(extra or {})}), ctx)


def _compare(name: str, read: Mapping[str, str], base: Mapping[str, Any]) -> HostCheck:
    moved = [f"{k} {read[k]} (baseline {base[k].value}, {base[k].provenance()})"
             for k in sorted(read) if k in base and _differs(k, read[k], base[k])]
    if moved:
        return HostCheck(name, "drift", "; ".join(moved), MappingProxyType(read))
    same = [f"{k} {v}" for k, v in sorted(read.items()) if _compared(k, base)]
    other = [f"{k} {v}" for k, v in sorted(read.items()) if not _compared(k, base)]
    said = f"reads {', '.join(same)}, as the baseline" if same else "reads"
    said += (f"; {', '.join(other)} not compared (the baseline has "
             f"{'only a typed label' if same else 'none'})" if other else "")
    return HostCheck(name, "same", said, MappingProxyType(read))


def _compared(name: str, base: Mapping[str, Any]) -> bool:
    return name in base and not (name == "serial" and base[name].source == "typed")


def _differs(name: str, now: str, base: Any) -> bool:
    """A firmware compares as a version (SV3.20, v03.20 and V3.2 are one: Schneider's two-
    digit minor); a serial only against one a device answered (an inventory's serial label
    and the CIP Identity serial number are two ways of naming a unit, not one value)."""
    from otpatch.modules.versions import try_version

    if name == "serial":
        return base.source != "typed" and now != base.value  # see _compared
    if name == "firmware":
        a, b = try_version(now, True), try_version(base.value, True)
        return (a != b) if a is not None and b is not None else now != base.value
    return now != base.value
