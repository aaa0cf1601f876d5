"""mguard.firmware_update: the Phoenix Contact package hashed again right before it goes,
checked to be of the device's platform and firmware line (platform.py, package.py), then on
a simulator sent over HTTPS (443), checked by what the device says it received, installed;
on a real device installed by a person in the web UI (Management >> Update, local update)
who attests it, host, serial and the package's MD5 and SHA-256 bound in the statement."""
from __future__ import annotations

from typing import Any, Mapping

from otpatch.modules.contract.module import ReadBack, Result
from otpatch.modules.firmware.hashing import file_digests, image_path, recheck_before_transfer
from otpatch.modules.contract.durations import parse_duration
from otpatch.modules.mguard import package
from otpatch.modules.mguard.common import (POLL_INTERVAL, READY_TIMEOUT, HostModule, ReadyWait,
                                           earlier_facts, read_back_hosts, schema)
from otpatch.modules.mguard.driver import MguardDriver
from otpatch.modules.mguard.guided import (MANUAL_MANAGEMENT, ROLE, attested, firmware_of,
                                           fresh_export, now_iso, role_of, serial_of)
from otpatch.modules.mguard.platform import MANUAL_10, MANUAL_8

IMAGE = {"type": "object", "required": ["path", "algorithm", "hash"],
         "x-otpatch-image": True,  # lint: must be {{ params.NAME }} of a firmware param
         "additionalProperties": False,
         "description": "the playbook's firmware param value, e.g. \"{{ params.firmware }}\"",
         "properties": {"path": {"type": "string", "minLength": 1},
                        "algorithm": {"enum": ["md5", "sha256"]},
                        "hash": {"type": "string",
                                 "pattern": "^[0-9a-fA-F]{32}([0-9a-fA-F]{32})?$"}}}
MD5_NOTE = ("MD5 is checked because Phoenix Contact publishes it; it is broken for collision "
            "resistance, so the SHA-256 the device received is recorded too")


class FirmwareUpdate(HostModule):
    name = "mguard.firmware_update"
    doc = ("Update an mGuard's firmware over HTTPS (port 443): hash the package again right "
           "before the upload (it must still match the published hash and what "
           "firmware.verify recorded), upload it, require the device to report the same hash "
           "for what it received and the target version inside the package, then start the "
           "install; the device reboots (follow with mguard.wait_ready). Unchanged when the "
           "device already runs target_version. Before anything goes, the target version "
           "and the package (a stand-in's header; a vendor package's file name) must be of "
           "the device's platform: an FL MGUARD RS4000 (RS platform) runs 8.x, an FL MGUARD "
           "4302 (2000/4000 platform) 10.x; otherwise refused, naming both. The upload and "
           "install calls are the simulator's (no public source documents them). On a real "
           "plant: guided: the same platform and hash checks, then the person (`role`, "
           "default operator) installs the package in the web UI (Management >> Update, "
           "local update) and attests it (host, serial, model, version, the package's MD5 "
           "and SHA-256); facts firmware_update.evidence attested; mguard.wait_ready reads "
           "back. The current version, for unchanged, is the newest profile exported in "
           "this run that no update or import made stale.")
    real_device = "guided"
    sources = (MANUAL_MANAGEMENT, MANUAL_10, MANUAL_8)
    changes_device = True
    changes = ("firmware",)  # verified after the reboot: mguard.wait_ready expect_version
    read_back_doc = ("installing, rebooting or not answering yet: still moving (for up to "
                     f"{READY_TIMEOUT}); ready: compare its firmware with target_version; a "
                     "certificate or login it refuses: cannot tell")
    args_schema = schema({"image": IMAGE, "target_version": {"type": "string", "minLength": 1},
                          "role": ROLE},
                         required=("image", "target_version"))

    def on_host(self, args, ctx, host, driver: MguardDriver) -> Result:
        target, image = args["target_version"], args["image"]
        device = driver.version()
        current = device.get("firmware")
        if current == target:
            return Result(msg=f"already runs firmware {target}",
                          facts={"firmware_version": current})
        problem = _before_transfer(image, ctx, host, str(device.get("model") or ""), target)
        if problem:
            return Result(failed=True, msg=f"not uploaded: {problem}")
        received = driver.upload_firmware(image_path(image, ctx.playbook_dir))
        refused = _refuse(received, image, target)
        if refused:
            return Result(failed=True, msg=f"not installed: {refused}",
                          facts={"firmware_update": _facts(current, target, image, received)})
        answer = driver.install_firmware()
        facts = _facts(current, target, image, received)
        ctx.record("firmware_update_started", {"host": host.name, **facts})
        note = f"; {MD5_NOTE}" if image["algorithm"] == "md5" else ""
        return Result(changed=True, facts={"firmware_update": facts},
                      msg=f"{current} -> {target}: package accepted ({image['algorithm']} "
                          f"matches the published value{note}); installing, then the device "
                          f"reboots (about {answer.get('install_s', '?')} s + "
                          f"{answer.get('reboot_s', '?')} s)")

    def on_real_host(self, args, ctx, host) -> Result:
        target, image = args["target_version"], args["image"]
        fresh = fresh_export(earlier_facts(ctx, args["target"], host.name))
        current = firmware_of(fresh) if fresh else None
        if current == target:
            return Result(msg=f"already runs firmware {target} (the profile exported in this "
                              "run says so)", facts={"firmware_version": current})
        problem = _before_transfer(image, ctx, host, host.model, target)
        if problem:
            return Result(failed=True, msg=f"not installed: {problem}")
        path = image_path(image, ctx.playbook_dir)
        digests = file_digests(path, ("md5", "sha256"))
        confirmed, record = attested(
            ctx, f"{host.name} (serial {serial_of(host)}, {host.model}): I installed firmware "
                 f"{target} from {path.name} (MD5 {digests['md5']}, SHA-256 "
                 f"{digests['sha256']}) in this device's web UI (Management >> Update, local "
                 "update), and the device restarted", role_of(args))
        if not confirmed:
            return Result(failed=True, msg=f"{record['person']} did not confirm the update of "
                                           f"{host.name} to {target}: nothing recorded")
        facts = {**_facts(current or host.firmware or None, target, image, {}),
                 "device_received": None,  # nothing was sent by otpatch: the person did
                 "image_digests": digests, "evidence": "attested", "attestation": record,
                 "at": now_iso(ctx)}
        ctx.record("firmware_update_attested", {"host": host.name, **facts})
        return Result(changed=True, facts={"firmware_update": facts},
                      msg=f"{facts['from_version']} -> {target}: installed in the web UI by "
                          f"{record['person']} (attested; the package's MD5 and SHA-256 in the "
                          "statement); mguard.wait_ready reads the version back")

    def read_back(self, args, ctx) -> ReadBack:
        return read_back_hosts(ctx, args["target"],
                               lambda host, driver: _read_back(args, ctx, driver),
                               purpose=self.name)


def _before_transfer(image: Mapping[str, Any], ctx: Any, host: Any, model: str,
                     target: str) -> str | None:
    """Why the package must not go (to the device, or into a person's hands): of another
    platform's line than the device's, or no longer the verified file."""
    path = image_path(image, getattr(ctx, "playbook_dir", None))
    return (package.refusal(path, host.name, model, target)
            or recheck_before_transfer(image, ctx))


def _read_back(args, ctx, driver: MguardDriver) -> ReadBack:
    """One look: still moving until the device answers ready, then its firmware against the
    target (a certificate or a login it refuses: read_back_hosts cannot tell)."""
    wait = ReadyWait(driver)
    state = wait.check()
    if state is None:  # installing, rebooting (no answer), or its web server starting
        return ReadBack.still_moving(Result(unreachable=not wait.answered, msg=wait.last),
                                     parse_duration(READY_TIMEOUT),
                                     parse_duration(POLL_INTERVAL))
    version = state.get("firmware")
    if version == args["target_version"]:
        return ReadBack(True, Result(changed=True, msg=f"reports firmware {version}: the "
                                                       "update is in effect",
                                     facts={"firmware_version": version}))
    return ReadBack(False, Result(msg=f"still reports firmware {version}: the update did not "
                                      "take effect"))


def _refuse(received: Mapping[str, str], image: Mapping[str, Any], target: str) -> str | None:
    """Why the uploaded package must not be installed, if it must not."""
    published = str(image["hash"]).lower()
    got = received.get(f"received_{image['algorithm']}", "").lower()
    if got != published:
        return (f"the device received a file whose {image['algorithm']} is {got or 'unknown'}, "
                f"not the published {published}")
    if received.get("image_version") != target:
        return (f"the package holds firmware {received.get('image_version')!r}, not the target "
                f"{target}")
    return None


def _facts(current: str | None, target: str, image: Mapping[str, Any],
           received: Mapping[str, str]) -> dict[str, Any]:
    return {"from_version": current, "to_version": target,
            "image": {"path": str(image["path"]), "algorithm": image["algorithm"],
                      "published": str(image["hash"]).lower()},
            "device_received": {"size": received.get("received_size"),
                                "sha256": received.get("received_sha256"),
                                "md5": received.get("received_md5"),
                                "version": received.get("image_version")}}
