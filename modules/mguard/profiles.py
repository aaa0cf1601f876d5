"""mguard.export_profile and mguard.import_profile: the configuration profile backed up to the
run's change store before a change, and imported back to roll it back. On a simulator
through its own calls; on a real device guided (guided.py): a person downloads or restores
the profile in the web UI (Management >> Configuration Profiles) and otpatch reads the file
they saved, and after an import a fresh download, compared by rules digest."""
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
from otpatch.modules.mguard.guided import (ATV_FORMAT, MANUAL_MANAGEMENT, ROLE, attested,
                                           fresh_export, guided_export, now_iso, role_of,
                                           serial_of)
from otpatch.modules.polling import poll_until
from otpatch.modules.schema_defs import DURATION, LABEL, SHA256

RESTORE_TIMEOUT = "90s"  # the seed article: "All firewall rules restore within 90 s"
SUFFIX = {"atv": ".atv", "ecs": ".ecs.tar.gz", "p7e": ".ecs.p7e"}


class ExportProfile(HostModule):
    name = "mguard.export_profile"
    doc = ("Back up an mGuard's configuration profile (.atv) before a change: the file is "
           "saved as it came, readable by its owner only (it can hold VPN keys), in the run's "
           "change store (<run_dir>/mguard/), its SHA-256 recorded in the facts and the "
           "journal. Facts `profiles.<label>` (and, for the as_found backup, `profile`: "
           "what import_profile and check expect_from restore and compare with; a later "
           "export under another label leaves it alone): path, sha256, size, rule "
           "counts, rules digest, VLANs, IPsec tunnels, remote syslog, saved_at; never a "
           "secret. On a simulator through its own export call. On a real plant: guided "
           "(no public source documents an export call): the step names a file "
           "<run_dir>/mguard/<host>-<label>.atv and waits (the run pauses, awaiting) until "
           "the person (`role`, default operator) has downloaded the running profile in the "
           "web UI (Management >> Configuration Profiles) and saved it there; then it reads "
           "it, checks its #version is of the device's platform, and the person attests "
           "host, serial and the file's SHA-256 (facts evidence: guided_export, "
           "attestation).")
    real_device = "guided"
    sources = (MANUAL_MANAGEMENT, ATV_FORMAT)
    args_schema = schema({"label": {**LABEL, "description": "names the backup (default "
                                                             "as_found)"},
                          "role": ROLE})

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
        saved["saved_at"] = now_iso(ctx)
        return Result(msg=_saved_msg(path.name, saved), facts=_facts(label, saved))

    def on_real_host(self, args, ctx, host) -> Result:
        label = args.get("label", "as_found")
        saved = guided_export(ctx, host, label, role_of(args))
        if isinstance(saved, Result):
            return saved
        return Result(msg=f"{_saved_msg(Path(saved['path']).name, saved)} (downloaded in the "
                          f"web UI, attested by {saved['attestation']['person']})",
                      facts=_facts(label, saved))


def _saved_msg(name: str, saved: Mapping[str, Any]) -> str:
    return (f"saved {name}: {saved['rules']['total']} firewall rules, VLANs {saved['vlans']}, "
            f"{len(saved['tunnels'])} IPsec connections; sha256 {saved['sha256']}")


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
           "that configuration. On a simulator through its own import call. On a real "
           "plant: guided (no public source documents an import call): unchanged when the "
           "newest profile exported in this run (and not made stale by an update or import "
           "since) holds the same settings; else the person (`role`) uploads and restores "
           "the file in the web UI (Management >> Configuration Profiles) and attests it "
           "(host, serial, file SHA-256), then downloads the running profile again "
           "(<run_dir>/mguard/<host>-<label>.atv, `label` default imported), which must "
           "hold the same rules (count and rules digest). How many rules are active, and "
           "how fast they came back, no public interface shows: facts rules_active null.")
    real_device = "guided"
    sources = (MANUAL_MANAGEMENT, ATV_FORMAT)
    changes_device = True
    changes = ("configuration",)
    verifies = {"configuration": ()}  # waits until the device shows every rule active
    read_back_doc = ("compare the device's running profile with the saved one; if it is in "
                     "effect and its rules are still being restored: still moving (for up to "
                     "restore_timeout); once restored, count the active rules")
    args_schema = schema({"profile": {"type": "string", "minLength": 1}, "sha256": SHA256,
                          "restore_timeout": DURATION, "interval": DURATION, "role": ROLE,
                          "label": {**LABEL, "description": "names the read-back download "
                                                            "on a real device (default "
                                                            "imported)"}})

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

    def on_real_host(self, args, ctx, host) -> Result:
        saved = _saved_profile(args, ctx, host)
        if isinstance(saved, str):
            return Result(failed=True, msg=saved)
        path, loaded, facts = saved
        if _runs_already(ctx, args["target"], host, loaded):
            return Result(msg=f"already in effect: {path.name} (the newest profile exported "
                              "in this run holds the same settings)",
                          facts={"import": {**facts, "rules_active": None}})
        confirmed, record = attested(ctx, f"{host.name} (serial {serial_of(host)}): I uploaded "
                                          f"{path.name} (SHA-256 {facts['sha256']}) in this "
                                          "device's web UI (Management >> Configuration "
                                          "Profiles) and restored it", role_of(args))
        if not confirmed:
            return Result(failed=True, msg=f"{record['person']} did not confirm the import of "
                                           f"{path.name}: nothing recorded as imported")
        done = {**facts, "at": now_iso(ctx), "evidence": "attested", "attestation": record}
        ctx.record("profile_import_attested", {"host": host.name, "path": str(path),
                                               "sha256": facts["sha256"], **record})
        return _read_back_real(args, ctx, host, loaded, done)

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


def _runs_already(ctx: Any, target: str, host: Any, loaded: profile.LoadedProfile) -> bool:
    """Whether the newest fresh export of this run holds the saved profile's settings."""
    current = fresh_export(earlier_facts(ctx, target, host.name))
    if current is None:
        return False
    try:
        running = profile.load(Path(current["path"]).read_bytes(), current["path"])
    except (OSError, AtvError, profile.ProfileUnreadable):
        return False
    return running.document.settings == loaded.document.settings


def _read_back_real(args, ctx, host, loaded: profile.LoadedProfile,
                    done: dict[str, Any]) -> Result:
    """The running profile downloaded again after the attested import: the same rules?"""
    label = args.get("label", "imported")
    back = guided_export(ctx, host, label, role_of(args))
    if isinstance(back, Result):
        return back
    expected = profile.summary(loaded.document)
    done.update(rules_active=None, restored_after_s=None,
                rules_configured=back["rules"]["total"],
                read_back={"label": label, "path": back["path"], "sha256": back["sha256"]})
    facts = {"import": done, "profiles": {label: back}}
    name = Path(done["path"]).name
    if back["rules_digest"] != expected["rules_digest"] or \
            back["rules"]["total"] != done["rules"]:
        return Result(failed=True, changed=True, facts=facts,
                      msg=f"after the import of {name} the running profile holds "
                          f"{back['rules']['total']} firewall rules, {done['rules']} expected, "
                          "and its rules differ (rules digest): the import did not take effect")
    return Result(changed=True, facts=facts,
                  msg=f"imported {name} (attested by {done['attestation']['person']}); the "
                      f"running profile downloaded again holds its {done['rules']} firewall "
                      "rules (rules digest matches); whether all are active, and within 90 s, "
                      "no public interface shows")
