"""m580.firmware_transfer and m580.restore_previous: the two steps that change the firmware.

On a host that answers as an otpatch simulator they act through its loader (transport.py);
on a host the inventory marks `simulator: false` they are guided steps (guided.py): a person
makes the change in EcoStruxure Automation Device Maintenance and attests it, and the module
reads the version back through public reads. Neither goes back across 4.20 (the 4.20 line,
engineering_link.py): that is m580.downgrade's or m580.spare_swap's."""
from __future__ import annotations

import hmac

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.errors import DeviceUnreachable
from otpatch.modules.contract.module import Module, ReadBack, Result
from otpatch.modules.cip.session import CipServiceError
from otpatch.modules.firmware.hashing import image_path
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.common import driver, duration_arg, schema, seconds, took, wait_for
from otpatch.modules.m580.driver import CIP_IDENTITY_SOURCE, FC43_SOURCE, M580Driver
from otpatch.modules.m580.engineering_link import FAQ000272937, crosses_down, crossing_refused
from otpatch.modules.m580.guided import (SeenCpu, guided_change, is_guided, read_cpu,
                                         version_read_back)
from otpatch.modules.m580.transfer_args import (IMAGE, PORT, PORT_WORDS, ROLE, VERSION,
                                                image_name, port_problem, role_of,
                                                verified_image)
from otpatch.modules.m580.transport import TransportUnavailable
from otpatch.modules.m580.versions import FirmwareVersion, parse_version
from otpatch.modules.simulator_only import refusal_cannot_tell

# On a real CPU: a person in EADM (FAQ000272937 names it for M580 firmware), then public reads.
GUIDED_SOURCES = (FAQ000272937, FC43_SOURCE, CIP_IDENTITY_SOURCE)


class _FirmwareChange(Module):
    """What the two firmware-changing modules share: a read-back may find the CPU still
    mid-action, and while the engine waits on it a dry run passes the simulator's time."""

    changes_device = True
    changes = ("firmware",)
    real_device = "guided"
    sources = GUIDED_SOURCES

    def advance_sim_clock(self, args, ctx, seconds: float) -> None:
        driver(ctx, args, self.name).advance_sim_clock(seconds)

    def _still_moving(self, args, status, msg: str) -> ReadBack:
        """Mid-action: looked at again every `interval`, for up to the step's `timeout`."""
        seen = Result(facts=status.fact(), msg=msg) if status is not None else \
            Result(unreachable=True, msg=msg)
        return ReadBack.still_moving(seen, seconds(args, "timeout", self.args_schema),
                                     seconds(args, "interval", self.args_schema))

    def _timeouts(self, args) -> tuple[float, float]:
        return (seconds(args, "timeout", self.args_schema),
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
           "image; the CPU then reboots on its own (m580.wait_run). A version before 4.20 on a "
           "CPU running 4.20 or later is refused before anything is sent (FAQ000272937: "
           "m580.downgrade). On a real CPU (`simulator: false`) a guided step: `role` (default "
           "operator) updates the CPU in EcoStruxure Automation Device Maintenance with this "
           "image and attests it (host, CIP serial, version, image SHA-256, port); the module "
           "then reads the version and serial back through FC 43/14 and the CIP Identity. "
           "Facts: transfer {version, port, sha256, size, duration_s, transport, "
           "device_sha256 (simulator) or evidence: guided, attestation, serial}.")
    args_schema = schema(("target", "image", "version", "port"), image=IMAGE, port=PORT,
                         version=VERSION, role=ROLE,
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
        if is_guided(drv):
            return self._guided(drv, args, ctx, version)
        status = drv.status()
        problem = _first_problem(drv, status.running, version)
        if problem is not None:
            return problem
        if status.state in (R.CpuState.UPDATING, R.CpuState.REBOOTING):
            return Result(failed=True, msg=f"{drv.host.name} is {R.label(status.state)}: "
                                           "a firmware change is already under way")
        image, problem = verified_image(args["image"], ctx)
        if problem:
            return Result(failed=True, msg=problem)
        return self._transfer(drv, args, ctx, image, version)

    def _guided(self, drv: M580Driver, args, ctx, version: FirmwareVersion) -> Result:
        """A real CPU: the person updates it in EADM with this image, then public reads."""
        before = read_cpu(drv)
        problem = _first_problem(drv, before.running, version)
        if problem is not None:
            return problem
        image, problem = verified_image(args["image"], ctx)
        if problem:
            return Result(failed=True, msg=problem)
        return guided_change(ctx, drv, before, self.statement(drv, before, args, ctx, image),
                             role_of(args), version, self._timeouts(args), "transfer",
                             _guided_facts(args, image, version))

    def statement(self, drv: M580Driver, before: SeenCpu, args, ctx, image: bytes) -> str:
        """What the person confirms: the same words each time the step asks."""
        version = parse_version(args["version"])
        port = PORT_WORDS[str(args["port"]).strip().lower()]
        return (f"{drv.host.name} (CIP serial {before.serial_or(drv.host)}): I updated its "
                f"firmware to {version.advisory} ({version}) in EcoStruxure Automation Device "
                f"Maintenance with the package {image_name(args['image'], ctx)} (SHA-256 "
                f"{sha256_hex(image)}) over {port}")

    def _transfer(self, drv: M580Driver, args, ctx, image: bytes, version: FirmwareVersion
                  ) -> Result:
        transport, sent = drv.transport(), sha256_hex(image)
        try:
            transport.send_image(image, version, args["port"])
        except TransportUnavailable as e:
            return Result(failed=True, msg=str(e))
        except CipServiceError as e:  # the CPU said no (a special downgrade it does not take)
            return Result(failed=True, msg=f"{drv.host.name}: the CPU refused the image: {e}")
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
        version = parse_version(args["version"])
        if is_guided(drv):
            return version_read_back(drv, ctx, args["target"], version, *self._timeouts(args))
        status, silent = self._status(drv, args)
        if silent:
            return silent
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


def _first_problem(drv: M580Driver, running: FirmwareVersion, version: FirmwareVersion
                   ) -> Result | None:
    """Nothing to do (already there), or refused across 4.20 downward; None: go on."""
    if running == version:
        return Result(msg=f"{drv.host.name} already runs {version}: nothing transferred",
                      facts={"transfer": {"version": str(version), "skipped": True}})
    if crosses_down(running, version):
        return Result(failed=True, msg=crossing_refused(drv.host.name, running, version))
    return None


def _guided_facts(args, image: bytes, version: FirmwareVersion) -> dict:
    return {"version": str(version), "port": args["port"], "sha256": sha256_hex(image),
            "size": len(image), "transport": "guided: EcoStruxure Automation Device Maintenance"}


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


class RestorePrevious(_FirmwareChange):
    name = "m580.restore_previous"
    doc = ("Rollback: the article's PLC - Restore Previous Version (a menu no source found "
           "confirms), about 6 minutes, restart included; the CPU ends in RUN on the version "
           "it ran before the transfer. With `version`, that version is checked (and makes "
           "read-back exact). Refused before anything is sent when the way back crosses 4.20 "
           "downward (FAQ000272937: the special firmware from Schneider support, m580.downgrade, "
           "or the spare CPU, m580.spare_swap). On a real CPU (`simulator: false`) a guided "
           "step, `version` required: `role` (default operator) takes the CPU back to it in "
           "EcoStruxure Automation Device Maintenance (with `image`, that package, hashed "
           "again) and attests it; the version is read back through FC 43/14 and the CIP "
           "Identity. On a simulator, through its loader.")
    args_schema = schema(version={**VERSION, "description": "the version expected after"},
                         image={**IMAGE, "description": "on a real CPU: the package of the "
                                                        "version to go back to (optional)"},
                         role=ROLE,
                         timeout=duration_arg("15m", "how long the restore may take"),
                         interval=duration_arg("5s", "how often to look"))
    verifies = {"firmware": ("version",)}  # with `version`, the running version is read back
    read_back_doc = ("a CPU updating or rebooting: still moving; then, with `version`: the "
                     "CPU runs it; without: the restore state register says complete")

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        expected = parse_version(args["version"]) if args.get("version") else None
        if is_guided(drv):
            return self._guided(drv, args, ctx, expected)
        timeout, interval = self._timeouts(args)
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
        if crosses_down(before.running, before.previous):
            return Result(failed=True, msg=crossing_refused(drv.host.name, before.running,
                                                            before.previous))
        try:
            drv.transport().restore_previous()
        except TransportUnavailable as e:
            return Result(failed=True, msg=str(e))
        after, waited = wait_for(ctx, drv, lambda: _restored(drv.status()), timeout, interval)
        return _restore_result(drv, ctx, before, after, waited, expected)

    def _guided(self, drv: M580Driver, args, ctx, expected: FirmwareVersion | None
                ) -> Result:
        """A real CPU: the person takes it back to `version` in EADM, then public reads."""
        who = drv.host.name
        if expected is None:
            return Result(failed=True, msg=f"{self.name}: {who} is a real CPU: give `version` "
                                           "(the version to go back to), which is read back")
        before = read_cpu(drv)
        if before.running == expected:
            return Result(msg=f"{who} already runs {expected}: nothing to restore")
        if crosses_down(before.running, expected):
            return Result(failed=True, msg=crossing_refused(who, before.running, expected))
        package = ""
        if args.get("image"):
            image, problem = verified_image(args["image"], ctx)
            if problem:
                return Result(failed=True, msg=problem)
            package = (f" with the package {image_name(args['image'], ctx)} (SHA-256 "
                       f"{sha256_hex(image)})")
        statement = (f"{who} (CIP serial {before.serial_or(drv.host)}): I took its firmware "
                     f"back to {expected.advisory} ({expected}) in EcoStruxure Automation "
                     f"Device Maintenance{package}")
        return guided_change(ctx, drv, before, statement, role_of(args), expected,
                             self._timeouts(args), "restore",
                             {"from_version": str(before.running), "version": str(expected)})

    @refusal_cannot_tell
    def read_back(self, args, ctx) -> ReadBack:
        drv = driver(ctx, args, self.name)
        if is_guided(drv):
            if not args.get("version"):
                return ReadBack(None, Result(failed=True, msg=(
                    f"{drv.host.name}: a real CPU's restore without `version` cannot be read "
                    "back")))
            return version_read_back(drv, ctx, args["target"], parse_version(args["version"]),
                                     *self._timeouts(args))
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
