"""mguard.firmware_update: the Phoenix Contact package hashed again right before it goes, sent
over HTTPS (443), checked by what the device says it received, then installed."""
from __future__ import annotations

from typing import Any, Mapping

from otpatch.modules.contract.module import ReadBack, Result
from otpatch.modules.firmware.hashing import image_path, recheck_before_transfer
from otpatch.modules.contract.durations import parse_duration
from otpatch.modules.mguard.common import (POLL_INTERVAL, READY_TIMEOUT, HostModule, ReadyWait,
                                           read_back_hosts, schema)
from otpatch.modules.mguard.driver import MguardDriver

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
           "device already runs target_version. The upload and install calls are the "
           "simulator's (no public source documents them): a host that does not answer as an "
           "otpatch simulator is refused before any upload, credentials or action.")
    changes_device = True
    changes = ("firmware",)  # verified after the reboot: mguard.wait_ready expect_version
    read_back_doc = ("installing, rebooting or not answering yet: still moving (for up to "
                     f"{READY_TIMEOUT}); ready: compare its firmware with target_version; a "
                     "certificate or login it refuses: cannot tell")
    args_schema = schema({"image": IMAGE, "target_version": {"type": "string", "minLength": 1}},
                         required=("image", "target_version"))

    def on_host(self, args, ctx, host, driver: MguardDriver) -> Result:
        target, image = args["target_version"], args["image"]
        current = driver.version().get("firmware")
        if current == target:
            return Result(msg=f"already runs firmware {target}",
                          facts={"firmware_version": current})
        problem = recheck_before_transfer(image, ctx)
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

    def read_back(self, args, ctx) -> ReadBack:
        return read_back_hosts(ctx, args["target"],
                               lambda host, driver: _read_back(args, ctx, driver),
                               purpose=self.name)


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
