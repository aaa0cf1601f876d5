"""m580.firmware_transfer and m580.restore_previous: the two steps that change the firmware."""
from __future__ import annotations

import hmac
from typing import Any

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.errors import DeviceUnreachable
from otpatch.modules.contract.module import Module, ReadBack, Result
from otpatch.modules.firmware.hashing import image_path, recheck_before_transfer
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.common import driver, duration_arg, schema, seconds, took, wait_for
from otpatch.modules.m580.driver import M580Driver
from otpatch.modules.m580.transport import PORTS, TransportUnavailable
from otpatch.modules.m580.versions import FirmwareVersion, parse_version
from otpatch.modules.simulator_only import refusal_cannot_tell

REFUSED_PORTS = {"modbus", "modbus_tcp", "modbus-tcp", "502", "tcp/502", "tcp 502"}
PORT_502 = ("refused: firmware is never transferred over Modbus TCP port 502. The article: "
            "\"Transfer M580 firmware via EcoStruxure Control Expert using the Ethernet "
            "management port. Do not use Modbus TCP port 502 for firmware transfer.\" "
            "Use port: ethernet_mgmt (production) or usb (the lab's service port, 115,200 baud)")
_IMAGE = {"type": "object", "description": "the firmware param's value",
          "x-otpatch-image": True,  # lint: must be {{ params.NAME }} of a firmware param
          "properties": {"path": {"type": "string", "minLength": 1},
                         "algorithm": {"enum": ["sha256", "md5"]},
                         "hash": {"type": "string", "minLength": 1}},
          "required": ["path", "algorithm", "hash"]}
_PORT = {"type": ["string", "integer"],
         "description": "usb (lab: USB service port) or ethernet_mgmt (production); "
                        "Modbus TCP 502 is refused"}
_VERSION = {"type": "string", "minLength": 1}


def port_problem(port: Any) -> str | None:
    text = str(port).strip().lower()
    if text in REFUSED_PORTS:
        return PORT_502
    if text not in PORTS:
        return f"unknown port {port!r}: use usb or ethernet_mgmt"
    return None


class _FirmwareChange(Module):
    """What the two firmware-changing modules share: a read-back may find the CPU still
    mid-action, and while the engine waits on it a dry run passes the simulator's time."""

    changes_device = True
    changes = ("firmware",)

    def advance_sim_clock(self, args, ctx, seconds: float) -> None:
        driver(ctx, args, self.name).advance_sim_clock(seconds)

    def _still_moving(self, args, status, msg: str) -> ReadBack:
        """Mid-action: looked at again every `interval`, for up to the step's `timeout`."""
        seen = Result(facts=status.fact(), msg=msg) if status is not None else \
            Result(unreachable=True, msg=msg)
        return ReadBack.still_moving(seen, seconds(args, "timeout", self.args_schema),
                                     seconds(args, "interval", self.args_schema))

    def _status(self, drv: M580Driver, args):
        """(status, None), or (None, still moving) from a CPU that does not answer: a real
        CPU is silent while it reboots (m580.wait_run takes that for "not yet" too)."""
        try:
            return drv.status(), None
        except DeviceUnreachable as e:
            return None, self._still_moving(args, None, f"no answer yet ({e})")


class FirmwareTransfer(_FirmwareChange):
    name = "m580.firmware_transfer"
    doc = ("Steps 2 and production: transfer the firmware image to the CPU over the USB "
           "service port (lab) or the Ethernet management port (production), never Modbus TCP "
           "502. The image is hashed again right before the transfer and the SHA-256 the "
           "device computes afterwards must match. About 8 minutes for a full BME P58 1020 "
           "image; the CPU then reboots on its own (m580.wait_run). A real CPU needs a vendor "
           "tool transport (Control Expert has no public API): without one the step refuses "
           "(\"not available on a real device\") before sending anything but identity reads.")
    args_schema = schema(("target", "image", "version", "port"), image=_IMAGE, port=_PORT,
                         version=_VERSION,
                         timeout=duration_arg("20m", "how long the transfer may take"),
                         interval=duration_arg("5s", "how often to ask for progress"))
    # changes the firmware; the CPU then reboots: the running version is verified after
    read_back_doc = ("the CPU's running or staged version equals `version`: applied, and "
                     "the device's SHA-256 of what it received is checked again; a transfer "
                     "still under way or a CPU updating or rebooting: still moving; a "
                     "transfer the device aborted: applied, failed")

    def run(self, args, ctx) -> Result:
        problem = port_problem(args["port"])
        if problem:
            return Result(failed=True, msg=f"{self.name}: {problem}")
        try:
            version = parse_version(args["version"])
        except ValueError as e:
            return Result(failed=True, msg=str(e))
        drv = driver(ctx, args, self.name)
        status = drv.status()
        if status.running == version:
            return Result(msg=f"{drv.host.name} already runs {version}: nothing transferred",
                          facts={"transfer": {"version": str(version), "skipped": True}})
        if status.state in (R.CpuState.UPDATING, R.CpuState.REBOOTING):
            return Result(failed=True, msg=f"{drv.host.name} is {R.label(status.state)}: "
                                           "a firmware change is already under way")
        image, problem = _verified_image(args["image"], ctx)
        if problem:
            return Result(failed=True, msg=problem)
        return self._transfer(drv, args, ctx, image, version)

    def _transfer(self, drv: M580Driver, args, ctx, image: bytes, version: FirmwareVersion
                  ) -> Result:
        transport, sent = drv.transport(), sha256_hex(image)
        try:
            transport.send_image(image, version, args["port"])
        except TransportUnavailable as e:
            return Result(failed=True, msg=str(e))
        done, waited = wait_for(ctx, drv, lambda: _finished(transport.status()),
                                seconds(args, "timeout", self.args_schema),
                                seconds(args, "interval", self.args_schema))
        facts = {"transfer": {"version": str(version), "port": args["port"],
                              "sha256": sent, "size": len(image), "duration_s": waited,
                              "transport": transport.name,
                              "device_sha256": done.device_sha256 if done else ""}}
        who = drv.host.name
        if done is None:
            return Result(failed=True, changed=True, facts=facts, msg=(
                f"{who}: transfer not finished after {took(waited, ctx)}"))
        if done.state == R.TransferState.ABORTED:
            keeps = drv.status().running
            return Result(failed=True, facts=facts, msg=(
                f"{who}: transfer aborted at {done.progress} %; the CPU keeps {keeps}"))
        if not hmac.compare_digest(done.device_sha256, sent):
            return Result(failed=True, changed=True, facts=facts,
                          msg=_damaged(who, done.device_sha256, sent))
        return Result(changed=True, facts=facts, msg=(
            f"{who}: {len(image)} bytes transferred over {args['port']} in "
            f"{took(waited, ctx)}; the device's SHA-256 matches; the CPU reboots on its own"))

    @refusal_cannot_tell
    def read_back(self, args, ctx) -> ReadBack:
        drv = driver(ctx, args, self.name)
        status, silent = self._status(drv, args)
        if silent:
            return silent
        version = parse_version(args["version"])
        who, there = drv.host.name, version in (status.running, status.staged)
        if status.transfer == R.TransferState.COMPLETE and there:
            return ReadBack(True, _received(drv, args, ctx, status, version))
        if status.transfer == R.TransferState.IN_PROGRESS or _busy(status):
            return self._still_moving(args, status, (
                f"{who}: {R.label(status.state)}, transfer {R.label(status.transfer)} "
                f"({status.transfer_progress} %)"))
        if there:
            return ReadBack(True, Result(changed=True, facts=status.fact(), msg=(
                f"{who}: {version} is running or staged: the transfer took effect")))
        if status.transfer == R.TransferState.ABORTED:  # it ran, and failed: never sent twice
            return ReadBack(True, Result(failed=True, facts=status.fact(), msg=(
                f"{who}: transfer aborted at {status.transfer_progress} %; the CPU keeps "
                f"{status.running}")))
        return ReadBack(False, Result(facts=status.fact(), msg=(
            f"{who}: runs {status.running}, {version} neither running nor staged")))


def _busy(status) -> bool:
    return status.state in (R.CpuState.UPDATING, R.CpuState.REBOOTING)


def _received(drv: M580Driver, args, ctx, status, version: FirmwareVersion) -> Result:
    """A finished transfer read back: the SHA-256 the device computed over what it received
    against the image's, as the transfer itself checks it."""
    who = drv.host.name
    sent = sha256_hex(image_path(args["image"], getattr(ctx, "playbook_dir", None)).read_bytes())
    reported = drv.transport().status().device_sha256
    facts = {**status.fact(), "transfer": {"version": str(version), "port": args["port"],
                                           "sha256": sent, "device_sha256": reported}}
    if not hmac.compare_digest(reported, sent):
        return Result(failed=True, changed=True, facts=facts, msg=_damaged(who, reported, sent))
    return Result(changed=True, facts=facts, msg=(
        f"{who}: {version} is running or staged and the device's SHA-256 matches: the "
        "transfer took effect"))


def _damaged(who: str, reported: str, sent: str) -> str:
    return (f"{who}: the device reports SHA-256 {reported or '(none)'} for the image it "
            f"received, but {sent} was sent: the image was damaged in transfer")


def _finished(status):
    return status if status.state in (R.TransferState.COMPLETE, R.TransferState.ABORTED) else None


def _verified_image(image: dict, ctx) -> tuple[bytes, str | None]:
    """The image's bytes, hashed again right before the transfer (firmware.hashing's check),
    and the bytes actually sent checked against the published SHA-256."""
    problem = recheck_before_transfer(image, ctx)
    if problem:
        return b"", problem
    path = image_path(image, getattr(ctx, "playbook_dir", None))
    data = path.read_bytes()
    if image["algorithm"] == "sha256" and not hmac.compare_digest(
            sha256_hex(data), str(image["hash"]).lower()):
        return b"", f"firmware image {path} changed while it was being read"
    return data, None


class RestorePrevious(_FirmwareChange):
    name = "m580.restore_previous"
    doc = ("Rollback: Control Expert's PLC - Restore Previous Version, about 6 minutes, "
           "restart included; the CPU ends in RUN on the version it ran before the transfer. "
           "With `version`, that version is checked (and makes read-back exact). Through "
           "the simulator's loader only: refused on a real device (no public interface).")
    args_schema = schema(version={**_VERSION, "description": "the version expected after"},
                         timeout=duration_arg("15m", "how long the restore may take"),
                         interval=duration_arg("5s", "how often to look"))
    verifies = {"firmware": ("version",)}  # with `version`, the running version is read back
    read_back_doc = ("a CPU updating or rebooting: still moving; then, with `version`: the "
                     "CPU runs it; without: the restore state register says complete")

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        expected = parse_version(args["version"]) if args.get("version") else None
        timeout = seconds(args, "timeout", self.args_schema)
        interval = seconds(args, "interval", self.args_schema)
        # A CPU still writing or rebooting (e.g. into an image that failed its hash) takes no
        # restore: wait until it settles, then decide on what it really runs.
        before, _ = wait_for(ctx, drv, lambda: _settled(drv.status()), timeout, interval)
        if before is None:
            return Result(failed=True, msg=f"{drv.host.name} still updating or rebooting "
                                           f"after {took(timeout, ctx)}: restore not started")
        if expected and before.running == expected and before.state == R.CpuState.RUN:
            return Result(msg=f"{drv.host.name} already runs {expected}: nothing to restore")
        if before.previous.is_none:
            return Result(failed=True, msg=f"{drv.host.name}: no previous version stored on "
                                           "the CPU: nothing to restore")
        try:
            drv.transport().restore_previous()
        except TransportUnavailable as e:
            return Result(failed=True, msg=str(e))
        after, waited = wait_for(ctx, drv, lambda: _restored(drv.status()), timeout, interval)
        return _restore_result(drv, ctx, before, after, waited, expected)

    @refusal_cannot_tell
    def read_back(self, args, ctx) -> ReadBack:
        drv = driver(ctx, args, self.name)
        status, silent = self._status(drv, args)
        if silent:
            return silent
        seen = (f"{drv.host.name}: {R.label(status.state)}, runs {status.running}, restore "
                f"{R.label(status.restore)}")
        if _busy(status):  # restoring, or still in the reboot the restore waits out first
            return self._still_moving(args, status, seen)
        complete = status.restore == R.RestoreState.COMPLETE
        if status.restore == R.RestoreState.FAILED:
            return ReadBack(True, Result(failed=True, changed=True, facts=status.fact(),
                                         msg=f"{seen}: the restore failed"))
        if not args.get("version"):
            return ReadBack(complete, Result(changed=complete, facts=status.fact(), msg=seen))
        if status.running == parse_version(args["version"]):
            return ReadBack(True, Result(changed=complete, facts=status.fact(), msg=seen))
        if complete:  # a restore ran, but not back to `version`: a second would swap again
            return ReadBack(None, Result(failed=True, facts=status.fact(), msg=(
                f"{seen}, not {parse_version(args['version'])}")))
        return ReadBack(False, Result(facts=status.fact(), msg=seen))


def _settled(status):
    return None if _busy(status) else status


def _restored(status):
    if status.restore in (R.RestoreState.COMPLETE, R.RestoreState.FAILED) and \
            status.state != R.CpuState.UPDATING:
        return status
    return None


def _restore_result(drv, ctx, before, after, waited, expected) -> Result:
    who = drv.host.name
    facts = {"restore": {"from_version": str(before.running), "duration_s": waited,
                         "running_version": str(after.running) if after else ""}}
    if after is None:
        return Result(failed=True, changed=True, facts=facts, msg=(
            f"{who}: restore not finished after {took(waited, ctx)}"))
    if after.restore == R.RestoreState.FAILED or (expected and after.running != expected):
        return Result(failed=True, changed=True, facts=facts, msg=(
            f"{who}: restore ended {R.label(after.restore)} running {after.running}"
            + (f", expected {expected}" if expected else "")))
    return Result(changed=True, facts=facts, msg=(
        f"{who}: restored {before.running} -> {after.running} in {took(waited, ctx)}; "
        f"{R.label(after.state)}, RUN LED {R.spoken(after.run_led)}"))
