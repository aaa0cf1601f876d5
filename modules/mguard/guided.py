"""The mGuard steps a person performs on a real device (a host the inventory marks
`simulator: false`): they act in the device's web UI, otpatch names the file they save,
reads it, and the attestation they sign binds what they did (host, serial, file SHA-256).

Nothing here sends anything to the device. A profile the person downloads is the public
evidence otpatch reads back: its `#version` names the firmware that wrote it, its settings
the rules, VLANs and IPsec connections (GriffinPlus/mguard-config-tool; atv.py, profile.py).
A step that waits for a file answers `awaiting` (the run pauses; `otpatch resume` runs the
step again and finds the file); the attestation pauses likewise until it is answered at a
terminal or signed (`otpatch attest`)."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.attest import attested
from otpatch.modules.contract.module import Result
from otpatch.modules.contract.platform import on_windows
from otpatch.modules.mguard import profile
from otpatch.modules.mguard.atv import AtvError
from otpatch.modules.mguard.platform import of_host, release_of

MANUAL_MANAGEMENT = (
    "User manual mGuard 10.x (110191_en_08, 10.4) and 8.7 (105661_en_09), section 4 "
    "\"Management menu\": Management >> Configuration Profiles (save the current "
    "configuration to a profile, download it, upload and restore one) and Management >> "
    "Update (local update with a package file), https://help.mguard.com/en/mguard10/manual/"
    "10.4/110191_en_08/Section04/Section04.htm, https://help.mguard.com/en/mguard8/manual/8.7/"
    "105661_en_09/Section04/Section04.htm")
ATV_FORMAT = ("GriffinPlus/mguard-config-tool (commit c59f841), mguard/atv: the .atv profile "
              "grammar and its mandatory `#version` pragma (the firmware that wrote it), "
              "https://github.com/GriffinPlus/mguard-config-tool")
TLS_HANDSHAKE = ("RFC 8446 (TLS 1.3), 4 \"Handshake Protocol\", 4.4.2 \"Certificate\", "
                 "https://www.rfc-editor.org/rfc/rfc8446: the certificate the inventory pins")
ROLE = {"type": "string", "minLength": 1, "default": "operator",
        "description": "who performs the step in the web UI on a real device (an inventory "
                       "role; default operator)"}
PROFILE_PAGE = ("Management >> Configuration Profiles: save the current configuration to a "
                "profile, then download it")


def role_of(args: Mapping[str, Any]) -> str:
    return str(args.get("role") or ROLE["default"])


def now_iso(ctx: Any) -> str:
    """The run clock's now, ISO 8601 UTC to the microsecond (facts compare by it)."""
    return datetime.fromtimestamp(ctx.clock.now(), timezone.utc).isoformat()


def serial_of(host: Any) -> str:
    return str(host.serial or "no serial in the inventory")


def incoming_path(ctx: Any, host: Any, label: str) -> Path:
    """Where the person saves the profile this step waits for: the run's change store,
    named by host and label (and the state's visit from the second on)."""
    visit = (getattr(ctx, "step_at", None) or {}).get("visit") or 1
    again = f"-v{visit}" if visit > 1 else ""
    return Path(ctx.run_dir) / "mguard" / f"{host.name}-{label}{again}.atv"


def guided_export(ctx: Any, host: Any, label: str, role: str) -> dict[str, Any] | Result:
    """The profile a person downloads from the device's web UI now, read and attested:
    its facts (as mguard.export_profile records them), or the Result to answer instead
    (awaiting the file, or failed when the person does not confirm it)."""
    path = incoming_path(ctx, host, label)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        return Result(awaiting=f"{host.name}: {role}: in its web UI ({PROFILE_PAGE}), save "
                               f"the running profile as {path}; then resume the run",
                      msg=f"waiting for {path}")
    data = path.read_bytes()
    read = _read(data, path, host)
    if isinstance(read, str):
        return Result(awaiting=f"{host.name}: {read}; save the profile from its web UI "
                               f"({PROFILE_PAGE}) as {path} again, then resume the run",
                      msg=read)
    sha = sha256_hex(data)
    confirmed, record = attested(ctx, f"{host.name} (serial {serial_of(host)}, {host.model}): "
                                      f"{path.name} is the configuration profile I downloaded "
                                      f"from this device's web UI (Management >> "
                                      f"Configuration Profiles) for this step; SHA-256 {sha}",
                                 role)
    if not confirmed:
        return Result(failed=True, msg=f"{record['person']} did not confirm that {path.name} "
                                       f"is {host.name}'s profile: not recorded")
    return _recorded(ctx, host, path, data, label, read, record)


def _read(data: bytes, path: Path, host: Any) -> dict[str, Any] | str:
    """The profile's summary, or why it is not a profile of this host's platform."""
    try:
        summary = profile.summary(profile.load(data, path.name).document)
    except (AtvError, profile.ProfileUnreadable) as e:
        return f"{path.name} is not a readable configuration profile ({e})"
    platform = of_host(host)
    written_by = release_of(summary["atv_version"])
    if platform is not None and not platform.runs(written_by):
        return (f"{path.name} was written by firmware {written_by} (#version), but "
                f"{host.name} ({host.model}) is the {platform.describe()}: is it this "
                "device's profile?")
    return summary


def _recorded(ctx: Any, host: Any, path: Path, data: bytes, label: str,
              summary: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """Keep the file readable by its owner only (it can hold VPN keys) and record it."""
    if not on_windows():
        os.chmod(path, 0o600)
    saved = {"path": str(path), "sha256": sha256_hex(data), "size": len(data),
             "container": profile.sniff(data), "label": label}
    ctx.record("profile_saved", {"host": host.name, **saved, "evidence": "guided",
                                 "attestation": record})
    return {**saved, "saved_at": now_iso(ctx), "evidence": "guided_export",
            "attestation": record, **summary}


def fresh_export(facts: Mapping[str, Any]) -> dict[str, Any] | None:
    """The newest profile exported in this run (a host's facts) that no firmware update
    or import recorded since has made stale; None if there is none."""
    exports = [p for p in (facts.get("profiles") or {}).values()
               if isinstance(p, Mapping) and p.get("saved_at")]
    if not exports:
        return None
    newest = max(exports, key=lambda p: p["saved_at"])
    changed = [str(c.get("at")) for c in (facts.get("firmware_update"), facts.get("import"))
               if isinstance(c, Mapping) and c.get("at")]
    return dict(newest) if all(newest["saved_at"] > at for at in changed) else None


def firmware_of(saved: Mapping[str, Any]) -> str:
    """The firmware version an exported profile names (its `#version`, release part)."""
    return release_of(str(saved.get("atv_version", "")))

