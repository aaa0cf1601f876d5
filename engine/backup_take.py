"""`otpatch backup`: take each device's configuration backup into the backup store.

An mGuard's configuration profile is read by `mguard.export_profile`, an M580 CPU's
application by `m580.application_backup`, through the module contract (engine/runner.py
invoke, in a scratch change store, as engine/baseline_check.py reads a device), so the module
first checks the device answers as a simulator before it uses a simulator's interface. On a
real device (`simulator: false`) both are guided steps: no public source documents an mGuard
export call, and a real CPU's application travels only through EcoStruxure Control Expert
(UMAS, no public API; the vendor-tool plug point modules/m580/transport.py
VendorToolTransport has no site transport plugged in). So a real host is skipped, with the
reason, and nothing is sent; the file a person exported in the web UI or the vendor tool is
registered with `--from FILE` (hand_in), checked, hashed and stored with who handed it in."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from otpatch.engine import backupstore
from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.errors import InputError, clip
from otpatch.modules.contract.files import read_regular

TARGET, LABEL = "device", "backup"


@dataclass(frozen=True)
class Artifact:
    """One kind of backup: what device holds it, which module reads it, and how a person
    exports it from a real device."""

    name: str
    device: str
    module: str
    facts: str  # where the module's facts hold the saved file: <facts>.<label>
    by_hand: str


ARTIFACTS = {a.name: a for a in (
    Artifact("mguard_profile", "mguard", "mguard.export_profile", "profiles",
             "in its web UI (Management >> Configuration Profiles) a person saves the "
             "running configuration to a profile and downloads it (.atv)"),
    Artifact("m580_application", "m580", "m580.application_backup", "application",
             "in EcoStruxure Control Expert a person uploads the application from the CPU "
             "and saves its archive (File > Save Archive, .STA): UMAS has no public API and "
             "no vendor-tool transport is plugged in (modules/m580/transport.py "
             "VendorToolTransport)"))}
BY_DEVICE = {a.device: a for a in ARTIFACTS.values()}


@dataclass(frozen=True)
class Taken:
    """What `backup` did for one host: stored | skipped | failed | unreachable."""

    host: str
    status: str
    detail: str
    artifact: str = ""
    sha256: str = ""
    size: int = 0
    new_object: bool = False
    provenance: Mapping[str, Any] = field(default_factory=dict)
    summary: Mapping[str, Any] = field(default_factory=dict)


def take(home: Path, inventory: Any, names: list[str]) -> list[Taken]:
    """Each named host (none named: every inventory host), backed up where a module may
    read it; the others skipped and why. InputError for a name the inventory lacks."""
    hosts = [_host(inventory, n) for n in names] if names else \
        [h for _, h in sorted(inventory.hosts.items())]
    with tempfile.TemporaryDirectory(prefix="otpatch-backup-") as scratch:
        return [_take_host(home, host, inventory, Path(scratch)) for host in hosts]


def _take_host(home: Path, host: Any, inventory: Any, scratch: Path) -> Taken:
    artifact = BY_DEVICE.get(host.device or "")
    if artifact is None:
        kind = host.device or "host of unknown kind (no otpatch_device)"
        return Taken(host.name, "skipped", f"no configuration backup otpatch takes from a "
                                           f"{kind} (mGuards: profile; M580 CPUs: application)")
    if not host.simulator:
        return Taken(host.name, "skipped", f"a real device: {artifact.module} is a guided "
                     f"step there ({artifact.by_hand}); nothing sent. Register the file: "
                     f"otpatch backup -i INVENTORY --host {host.name} --from FILE --operator "
                     "NAME", artifact.name)
    result = _read(artifact, host, inventory, scratch)
    if result.unreachable or result.failed:
        return Taken(host.name, "unreachable" if result.unreachable else "failed",
                     result.msg, artifact.name)
    saved = ((result.facts.get(artifact.facts) or {}).get(LABEL)) or {}
    try:
        data = read_regular(str(saved.get("path", "")), backupstore.MAX_BYTES, "backup")
    except InputError as e:
        return Taken(host.name, "failed", f"{artifact.module}: {e}", artifact.name)
    if sha256_hex(data) != saved.get("sha256"):
        return Taken(host.name, "failed", f"{artifact.module} recorded SHA-256 "
                     f"{saved.get('sha256')}, its file hashes otherwise: not stored",
                     artifact.name)
    sha, new = backupstore.put(home, data)
    said = f"read by {artifact.module} from simulator {host.name}"
    return Taken(host.name, "stored", said, artifact.name, sha, len(data), new,
                 {"how": "module_read", "said": said, "module": artifact.module,
                  "device": "simulator", "message": result.msg},
                 _summary(artifact.name, saved))


def _read(artifact: Artifact, host: Any, inventory: Any, scratch: Path) -> Any:
    """The module's result for this one host, through the runner's contract."""
    return _invoke(artifact.module, {"target": TARGET, "label": LABEL}, {TARGET: (host,)},
                   inventory, scratch / host.name)


def _invoke(name: str, args: dict[str, Any], targets: dict[str, tuple], inventory: Any,
            scratch: Path) -> Any:
    """One module step outside a run (a scratch change store), through engine/runner.py
    invoke: the module contract (arguments, dry-run, reachability) enforced as in a run."""
    from otpatch.engine.clock import WallClock
    from otpatch.engine.context import RunContext
    from otpatch.engine.runner import PreparedStep, invoke
    from otpatch.modules import registry

    module = registry.get(name)
    ctx = RunContext(mode="dry_run", clock=WallClock(), run_id="backup", run_dir=scratch,
                     inventory=inventory, playbook_dir=scratch,
                     targets=MappingProxyType(targets), facts={}, module_name=module.name)
    return invoke(PreparedStep(None, module, args), ctx)


def hand_in(home: Path, inventory: Any, name: str, source: str, artifact_name: str | None,
            expected: str | None, operator: str | None) -> Taken:
    """A file a person exported from the device (web UI, vendor tool): read, checked to be
    this host's kind of backup (and the SHA-256 they noted, if given), stored. InputError
    (nothing stored) for a bad path, a hash that differs, a file of the wrong kind."""
    host = _host(inventory, name)
    artifact = _artifact_of(host, artifact_name)
    if not operator:
        raise InputError(f"--from {clip(source)}: say who exported it: --operator NAME")
    path = Path(source).expanduser().absolute()
    data = read_regular(path, backupstore.MAX_BYTES, "--from")
    actual = sha256_hex(data)
    if expected is not None and actual != backupstore.plain(expected):
        raise InputError(f"--from {clip(str(path))}: its SHA-256 is {actual}, --sha256 says "
                         f"{backupstore.plain(expected)}: not stored")
    summary = _file_summary(artifact, data, path)
    sha, new = backupstore.put(home, data)
    said = f"handed in by {operator} from {path}"
    return Taken(host.name, "stored", said, artifact.name, sha, len(data), new,
                 {"how": "handed_in", "said": said, "by": operator, "file": str(path),
                  "sha256_noted": expected is not None,
                  "device": "simulator" if host.simulator else "real device"}, summary)


def _host(inventory: Any, name: str) -> Any:
    if name not in inventory.hosts:
        raise InputError(f"--host {clip(name)}: no such host in {inventory.path} (known: "
                         f"{clip(', '.join(sorted(inventory.hosts)))})")
    return inventory.hosts[name]


def _artifact_of(host: Any, given: str | None) -> Artifact:
    """The artifact a file handed in for this host is: --artifact, or the host's kind's."""
    artifact = ARTIFACTS.get(given) if given else BY_DEVICE.get(host.device or "")
    if artifact is None or artifact.device != host.device:
        kinds = ", ".join(f"{a.name} ({a.device})" for a in ARTIFACTS.values())
        raise InputError(f"--host {host.name} is a {host.device or 'host of unknown kind'}: "
                         f"no backup of kind {given or 'any'} for it (otpatch keeps {kinds})")
    return artifact


def _file_summary(artifact: Artifact, data: bytes, path: Path) -> dict[str, Any]:
    """What the handed-in file holds; InputError when it is not this host's kind of file.
    A profile is read by firewall.review (through the module contract: the engine parses
    no device format itself), which refuses a file that is not an mGuard profile."""
    if artifact.name != "mguard_profile":  # a .STA is Control Expert's own, read as bytes
        if not data:
            raise InputError(f"--from {clip(str(path))}: an empty file: not stored")
        return {"name": "", "checksum": "", "format": path.suffix.lower().lstrip(".")}
    with tempfile.TemporaryDirectory(prefix="otpatch-backup-") as scratch:
        result = _invoke("firewall.review", {"profile": str(path), "label": LABEL}, {},
                         inventory=None, scratch=Path(scratch))
    read = (result.facts.get("firewall") or {}).get(LABEL) or {}
    if result.failed or read.get("sha256") != sha256_hex(data):
        raise InputError(f"--from {clip(str(path))}: not a readable mGuard configuration "
                         f"profile ({clip(result.msg)}): not stored")
    return {"rules": (read.get("counts") or {}).get("total"), "rules_digest": None,
            "vlans": None, "tunnels": None, "atv_version": read.get("version"),
            "container": None}


def _summary(artifact: str, saved: Mapping[str, Any]) -> dict[str, Any]:
    """The few values `backup list` and a restore test need (never a secret)."""
    if artifact == "mguard_profile":
        return {"rules": (saved.get("rules") or {}).get("total"),
                "rules_digest": saved.get("rules_digest"), "vlans": saved.get("vlans"),
                "tunnels": len(saved.get("tunnels") or ()),
                "atv_version": saved.get("atv_version"), "container": saved.get("container")}
    return {"name": saved.get("name"), "checksum": saved.get("checksum"),
            "source": saved.get("source")}
