"""m580.application_download and m580.verify_application: the application backup put back
into the CPU (after a special downgrade erased it: FAQ000272937), and read back."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.attest import attested
from otpatch.modules.contract.module import Module, ReadBack, Result
from otpatch.modules.m580 import appstore
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.application import (ARCHIVE_ARGS, ARCHIVE_PAIR, LABEL_ARG, SOURCES,
                                              backup_bytes, label_of, recorded_backup)
from otpatch.modules.m580.appobject import DownloadState, checksum_text, crc32
from otpatch.modules.m580.common import driver, duration_arg, schema, seconds, took, wait_for
from otpatch.modules.m580.driver import M580Driver
from otpatch.modules.m580.guided import application_name, is_guided, read_cpu
from otpatch.modules.m580.transfer_args import ROLE, role_of
from otpatch.modules.simulator_only import refusal_cannot_tell


class ApplicationDownload(Module):
    name = "m580.application_download"
    doc = ("Rollback: download the application backup m580.application_backup took (`label`, "
           "default as_found) back into the CPU, e.g. after a special downgrade erased it "
           "(FAQ000272937); its file must still have the SHA-256 recorded then. Or a stored "
           "backup (otpatch backup): `archive` its file, `sha256` the hash it must have, "
           "`name` the application's name (the restore test). A few minutes "
           "(the simulator: 3, an estimate); the CPU then runs it. On a simulator the CPU "
           "checks the image's CRC-32 and the step reads the application checksum back. On "
           "a real CPU a guided step: `role` (default operator) downloads the archive with "
           "EcoStruxure Control Expert and sets the CPU to RUN, and attests it (host, CIP "
           "serial, archive SHA-256). Follow with m580.verify_application (it checks the "
           "application) and m580.wait_run. Facts: application_download {label, name, "
           "checksum, sha256, duration_s, evidence}.")
    args_schema = {**schema(label=LABEL_ARG, role=ROLE, **ARCHIVE_ARGS,
                            timeout=duration_arg("10m", "how long the download may take"),
                            interval=duration_arg("5s", "how often to look")),
                   "dependentRequired": ARCHIVE_PAIR}
    changes_device = True
    changes = ("application",)  # checked by m580.verify_application, not here: on a real CPU
    real_device = "guided"  # no public read shows the checksum
    sources = SOURCES
    read_back_doc = ("simulator: a download still loading: still moving; the CPU's "
                     "application checksum equals the backup's: applied; else not applied. "
                     "Real CPU: public reads cannot tell, so not applied: the step asks the "
                     "person again")

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        found = backup_bytes(ctx, args["target"], label_of(args), drv.host.name, args)
        if isinstance(found, str):
            return Result(failed=True, msg=found)
        backup, data = found
        if is_guided(drv):
            return self._guided(drv, args, ctx, backup)
        return self._simulated(drv, args, ctx, backup, data)

    def _simulated(self, drv: M580Driver, args, ctx, backup: Mapping[str, Any], data: bytes
                   ) -> Result:
        who, store = drv.host.name, appstore.for_simulator(drv, self.name)
        expected = checksum_text(crc32(data))
        if backup.get("checksum") and backup["checksum"] != expected:
            return Result(failed=True, msg=f"{who}: the backup's CRC is {expected}, recorded "
                                           f"{backup['checksum']}: not downloaded")
        facts = {"label": label_of(args), "name": backup.get("name", ""), "checksum": expected,
                 "sha256": backup["sha256"], "evidence": "device_checksum"}
        if store.status().checksum == expected and drv.status().state == R.CpuState.RUN:
            return Result(msg=f"{who} already runs the application of the backup ({expected})",
                          facts={"application_download": {**facts, "skipped": True}})
        up, booting = wait_for(ctx, drv, lambda: _up(drv),  # back from the downgrade's reboot
                               seconds(args, "timeout", self.args_schema),
                               seconds(args, "interval", self.args_schema))
        if up is None:
            return Result(failed=True, facts={"application_download": facts},
                          msg=f"{who}: the CPU is still {R.label(drv.status().state)} after "
                              f"{took(booting, ctx)}: nothing downloaded")
        store.download(str(backup.get("name") or ""), data)
        done, waited = wait_for(ctx, drv, lambda: _loaded(store),
                                seconds(args, "timeout", self.args_schema),
                                seconds(args, "interval", self.args_schema))
        facts["duration_s"] = waited + booting
        if done is None or done.checksum != expected:
            seen = (done.checksum or "no application") if done else "still loading"
            return Result(failed=True, changed=True, facts={"application_download": facts},
                          msg=f"{who}: after {took(waited, ctx)} the CPU shows {seen}, the "
                              f"backup {expected}")
        state = R.label(drv.status().state)
        return Result(changed=True, facts={"application_download": {**facts, "state": state}},
                      msg=f"{who}: application {facts['name']} downloaded in "
                          f"{took(waited, ctx)}; the CPU shows {expected}, {state}")

    def _guided(self, drv: M580Driver, args, ctx, backup: Mapping[str, Any]) -> Result:
        who, before = drv.host.name, read_cpu(drv)
        confirmed, record = attested(ctx, (
            f"{who} (CIP serial {before.serial_or(drv.host)}): I downloaded the application "
            f"archive {Path(backup['path']).name} (SHA-256 {backup['sha256']}) to this CPU with "
            "EcoStruxure Control Expert and set the CPU to RUN"), role_of(args))
        facts = {"label": label_of(args), "name": backup.get("name", ""),
                 "sha256": backup["sha256"], "evidence": "attestation", "attestation": record}
        if not confirmed:
            return Result(failed=True, facts={"application_download": facts},
                          msg=f"{record['person']} did not confirm the application download")
        return Result(changed=True, facts={"application_download": facts}, msg=(
            f"{who}: {record['person']} ({record['role']}) downloaded the application "
            f"archive {Path(backup['path']).name}; m580.verify_application checks it"))

    @refusal_cannot_tell
    def read_back(self, args, ctx) -> ReadBack:
        drv = driver(ctx, args, self.name)
        if is_guided(drv):
            return ReadBack(False, Result(msg=(
                f"{drv.host.name}: public reads do not show whether the application was "
                "downloaded: the step asks the person again")))
        backup = _backup_of(ctx, args)
        status = appstore.for_simulator(drv, self.name).status()
        seen = f"{drv.host.name}: application {status.checksum or 'none'}, download " \
               f"{status.download.name.lower()}"
        if status.download == DownloadState.IN_PROGRESS:
            return ReadBack.still_moving(Result(facts={"application": status.fact()}, msg=seen),
                                         seconds(args, "timeout", self.args_schema),
                                         seconds(args, "interval", self.args_schema))
        applied = bool(status.present and status.checksum == backup.get("checksum"))
        return ReadBack(applied, Result(changed=applied, msg=seen))

    def advance_sim_clock(self, args, ctx, seconds_: float) -> None:
        driver(ctx, args, self.name).advance_sim_clock(seconds_)


def _backup_of(ctx: Any, args: Mapping[str, Any]) -> Mapping[str, Any]:
    """What the step puts back: the stored `archive` or the run's own backup ({} if gone)."""
    if args.get("archive"):
        found = backup_bytes(ctx, args["target"], label_of(args), "", args)
        return found[0] if not isinstance(found, str) else {}
    return recorded_backup(ctx, args["target"], label_of(args)) or {}


def _up(drv: M580Driver) -> bool | None:
    """True once the CPU is neither rebooting nor updating (a download needs it up)."""
    return True if drv.status().state not in (R.CpuState.REBOOTING, R.CpuState.UPDATING) \
        else None


def _loaded(store: appstore.SimulatedApplicationStore):
    status = store.status()
    return status if status.download != DownloadState.IN_PROGRESS else None


class VerifyApplication(Module):
    name = "m580.verify_application"
    doc = ("Read back the CPU's application against the backup m580.application_backup took "
           "(`label`, default as_found). On a simulator: the application checksum (CRC-32) the "
           "CPU shows equals the backup's (evidence device_checksum). On a real CPU, where no "
           "public interface shows the checksum: FC 43/14 object 0x06 (the application name) "
           "if the CPU answers it, compared with the backup's name (evidence "
           "fc43_application_name); else `role` (default operator) attests that Control "
           "Expert's comparison shows the CPU's application is the archive's (evidence "
           "attestation). Or against a stored backup (otpatch backup): `archive`, `sha256`, "
           "`name`, as m580.application_download takes them. Facts: application_check {label, evidence, matches, name, shown, "
           "expected} (shown / expected: the checksums, the names, or the archive SHA-256).")
    args_schema = {**schema(label=LABEL_ARG, role=ROLE, **ARCHIVE_ARGS),
                   "dependentRequired": ARCHIVE_PAIR}
    verifies = {"application": ()}
    real_device = "guided"
    sources = SOURCES

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        label = label_of(args)
        found = backup_bytes(ctx, args["target"], label, drv.host.name, args) \
            if args.get("archive") else recorded_backup(ctx, args["target"], label)
        if found is None or isinstance(found, str):
            return Result(failed=True, msg=found or (
                f"no application backup labelled {label} for {drv.host.name}: run "
                "m580.application_backup first"))
        backup = found[0] if isinstance(found, tuple) else found
        if is_guided(drv):
            return self._guided(drv, args, ctx, backup)
        status = appstore.for_simulator(drv, self.name).status()
        return _checked(drv, label, "device_checksum", status.checksum or "no application",
                        str(backup.get("checksum") or ""), name=status.name)

    def _guided(self, drv: M580Driver, args, ctx, backup: Mapping[str, Any]) -> Result:
        label, shown = label_of(args), application_name(drv)
        if shown and backup.get("name"):
            return _checked(drv, label, "fc43_application_name", shown, str(backup["name"]),
                            name=shown)
        who, before = drv.host.name, read_cpu(drv)
        confirmed, record = attested(ctx, (
            f"{who} (CIP serial {before.serial_or(drv.host)}): EcoStruxure Control Expert's "
            "comparison shows the application in this CPU is the one of the archive "
            f"{Path(backup['path']).name} (SHA-256 {backup['sha256']})"), role_of(args))
        facts = {"label": label, "evidence": "attestation", "matches": confirmed,
                 "name": shown, "shown": "", "expected": backup["sha256"],
                 "attestation": record}
        if not confirmed:
            return Result(failed=True, facts={"application_check": facts},
                          msg=f"{record['person']} did not confirm the application is the "
                              "backup's")
        return Result(facts={"application_check": facts}, msg=(
            f"{who}: {record['person']} ({record['role']}) confirmed Control Expert shows the "
            f"backup's application"))


def _checked(drv: M580Driver, label: str, evidence: str, shown: str, expected: str, *,
             name: str) -> Result:
    """A value the CPU shows against the backup's: the step's result."""
    matches = bool(expected) and shown == expected
    facts = {"application_check": {"label": label, "evidence": evidence, "matches": matches,
                                   "name": name, "shown": shown, "expected": expected}}
    what = "application name (FC 43 object 0x06)" if evidence.startswith("fc43") else \
        "application checksum"
    if not matches:
        return Result(failed=True, facts=facts, msg=(
            f"{drv.host.name}: {what} {shown}, the {label} backup's {expected or '(none)'}"))
    return Result(facts=facts, msg=f"{drv.host.name}: {what} {shown} equals the {label} "
                                   "backup's")
