"""mguard.export_profile and mguard.import_profile: the configuration profile backed up to the
run's change store before a change, and imported back to roll it back."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.module import ReadBack, Result
from otpatch.modules.contract.platform import create_private
from otpatch.modules.mguard import profile
from otpatch.modules.mguard.atv import AtvError
from otpatch.modules.mguard.common import (POLL_INTERVAL, HostModule, duration_arg, earlier_facts,
                                           how_long, read_back_hosts, schema, stamp)
from otpatch.modules.mguard.driver import MguardDriver
from otpatch.modules.polling import poll_until
from otpatch.modules.schema_defs import DURATION, LABEL

RESTORE_TIMEOUT = "90s"  # the seed article: "All firewall rules restore within 90 s"
SUFFIX = {"atv": ".atv", "ecs": ".ecs.tar.gz", "p7e": ".ecs.p7e"}
SHA256 = {"type": "string", "pattern": "^(sha256:)?[0-9a-fA-F]{64}$"}


class ExportProfile(HostModule):
    name = "mguard.export_profile"
    doc = ("Back up an mGuard's configuration profile (.atv) before a change: the file is "
           "saved as it came, readable by its owner only (it can hold VPN keys), in the run's "
           "change store (<run_dir>/mguard/), its SHA-256 recorded in the facts and the "
           "journal. Facts `profiles.<label>` (and, for the as_found backup, `profile`: "
           "what import_profile and check expect_from restore and compare with; a later "
           "export under another label leaves it alone): path, sha256, size, rule "
           "counts, rules digest, VLANs, IPsec tunnels, remote syslog; never a secret. "
           "Simulator only (no public source documents a profile export call): refused on "
           "a real device; there, save the profile in the device's web UI.")
    args_schema = schema({"label": {**LABEL, "description": "names the backup (default as_found)"}})

    def on_host(self, args, ctx, host, driver: MguardDriver) -> Result:
        label = args.get("label", "as_found")
        data = driver.export_profile()
        kind = profile.sniff(data)
        path = _save(Path(ctx.run_dir) / "mguard",
                     f"{host.name}-{label}-{stamp(ctx)}{SUFFIX[kind]}", data)
        saved = {"path": str(path), "sha256": sha256_hex(data), "size": len(data),
                 "container": kind, "label": label}
        ctx.record("profile_saved", {"host": host.name, **saved})
        try:
            saved.update(profile.summary(profile.load(data, path.name).document))
        except (AtvError, profile.ProfileUnreadable) as e:
            return Result(failed=True, msg=f"saved {path.name} (sha256 {saved['sha256']}), but "
                                           f"it cannot be read: {e}", facts=_facts(label, saved))
        return Result(msg=f"saved {path.name}: {saved['rules']['total']} firewall rules, VLANs "
                          f"{saved['vlans']}, {len(saved['tunnels'])} IPsec connections; "
                          f"sha256 {saved['sha256']}", facts=_facts(label, saved))


BACKUP_LABEL = "as_found"  # the export a rollback restores: kept as `profile` too


def _facts(label: str, saved: dict) -> dict:
    """`profiles.<label>`; the backup also as `profile` (no later export replaces it)."""
    facts = {"profiles": {label: saved}}
    if label == BACKUP_LABEL:
        facts["profile"] = saved
    return facts


def _save(folder: Path, name: str, data: bytes) -> Path:
    """Write a new file (never over an existing one), mode 0600."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, n = name, 1
    while True:
        path = folder / name
        try:
            fd = create_private(path)
            break
        except FileExistsError:
            n += 1
            base, dot, rest = stem.partition(".")
            name = f"{base}-{n}{dot}{rest}"
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return path


class ImportProfile(HostModule):
    name = "mguard.import_profile"
    doc = ("Import a saved configuration profile back into an mGuard (the rollback of the "
           "procedure) and wait until every firewall rule it holds is active: within "
           "`restore_timeout` (default 90s, the article's figure). `profile` defaults to the "
           "one mguard.export_profile saved for this target; the file must still have the "
           "SHA-256 recorded then (or `sha256`). Unchanged when the device already runs "
           "that configuration. Simulator only (no public source documents a profile import "
           "call): refused on a real device before the profile or credentials are sent.")
    changes_device = True
    changes = ("configuration",)
    verifies = {"configuration": ()}  # waits until the device shows every rule active
    read_back_doc = ("compare the device's running profile with the saved one; if it is in "
                     "effect and its rules are still being restored: still moving (for up to "
                     "restore_timeout); once restored, count the active rules")
    args_schema = schema({"profile": {"type": "string", "minLength": 1}, "sha256": SHA256,
                          "restore_timeout": DURATION, "interval": DURATION})

    def on_host(self, args, ctx, host, driver: MguardDriver) -> Result:
        saved = _saved_profile(args, ctx, host)
        if isinstance(saved, str):
            return Result(failed=True, msg=saved)
        path, loaded, facts = saved
        if _running_settings(driver) == loaded.document.settings:
            return _restored(args, ctx, driver, facts, changed=False)
        answer = driver.import_profile(loaded.atv)
        ctx.record("profile_imported", {"host": host.name, "path": str(path),
                                        "sha256": facts["sha256"], "rules": facts["rules"],
                                        "device_rules": answer.get("rules")})
        return _restored(args, ctx, driver, facts, changed=True)

    def read_back(self, args, ctx) -> ReadBack:
        return read_back_hosts(ctx, args["target"],
                               lambda host, driver: self._read_back(args, ctx, host, driver),
                               purpose=self.name)

    def _read_back(self, args, ctx, host, driver: MguardDriver) -> ReadBack:
        saved = _saved_profile(args, ctx, host)
        if isinstance(saved, str):
            return ReadBack(None, Result(failed=True, msg=saved))
        _, loaded, facts = saved
        if _running_settings(driver) != loaded.document.settings:
            return ReadBack(False, Result(msg="the device does not run the saved profile: "
                                              "the import did not take effect"))
        firewall = driver.firewall()
        if firewall["restore"] != "idle":
            return ReadBack.still_moving(
                Result(msg=f"runs the saved profile, restore {firewall['restore']}: "
                           f"{firewall['rules_active']} of {facts['rules']} firewall rules "
                           "active"),
                duration_arg(args, "restore_timeout", RESTORE_TIMEOUT),
                duration_arg(args, "interval", POLL_INTERVAL))
        return ReadBack(True, _restored(args, ctx, driver, facts, changed=True))


def _saved_profile(args: Mapping[str, Any], ctx: Any, host: Any):
    """(path, loaded profile, facts) of the profile to import, or why it cannot be used."""
    recorded = earlier_facts(ctx, args["target"], host.name).get("profile") or {}
    raw = args.get("profile") or recorded.get("path")
    if not raw:
        return (f"no profile to import for {host.name}: give `profile`, or run "
                "mguard.export_profile first")
    path = Path(raw).expanduser()
    try:
        data = path.read_bytes()
    except OSError as e:
        return f"cannot read the saved profile {path}: {e.strerror or e}"
    expected = args.get("sha256") or (recorded.get("sha256") if raw == recorded.get("path")
                                      else None)
    actual = sha256_hex(data)
    if expected and actual != expected.lower().removeprefix("sha256:"):
        return (f"the saved profile {path.name} changed since it was recorded: SHA-256 is "
                f"{actual}, recorded {expected.lower().removeprefix('sha256:')}; not imported")
    try:
        loaded = profile.load(data, path.name)
    except (AtvError, profile.ProfileUnreadable) as e:
        return f"cannot import {path.name}: {e}"
    return path, loaded, {"path": str(path), "sha256": actual,
                          "rules": profile.rule_count(loaded.document)}


def _running_settings(driver: MguardDriver) -> dict[str, Any] | None:
    try:
        return profile.load(driver.export_profile(), "running profile").document.settings
    except (AtvError, profile.ProfileUnreadable):
        return None


def _restored(args, ctx, driver: MguardDriver, facts: dict[str, Any], changed: bool
              ) -> Result:
    """Wait until the device has every rule of the profile active, and say how it went."""
    expected = facts["rules"]

    def complete():  # a finished restore ends the wait, whatever it counts
        firewall = driver.firewall()
        return firewall if firewall["restore"] == "idle" else None

    timeout = duration_arg(args, "restore_timeout", RESTORE_TIMEOUT)
    firewall, waited = poll_until(ctx, complete, timeout=timeout,
                                  interval=duration_arg(args, "interval", POLL_INTERVAL),
                                  advance=driver.advance_sim_clock)
    active = (firewall or driver.firewall())["rules_active"]
    done = {**facts, "rules_active": active, "restored_after_s": waited}
    name = Path(facts["path"]).name
    if firewall is None or active != expected:
        return Result(failed=True, changed=changed, facts={"import": done},
                      msg=f"after {how_long(ctx, waited)} {active} of {expected} firewall rules "
                          f"of {name} are active (limit {how_long(ctx, timeout)})")
    verb = "imported" if changed else "already in effect:"
    return Result(changed=changed, facts={"import": done},
                  msg=f"{verb} {name}: all {expected} firewall rules active after "
                      f"{how_long(ctx, waited)}")
