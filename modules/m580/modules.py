"""m580.identity, m580.status, m580.set_mode, m580.verify_version, m580.wait_run."""
from __future__ import annotations

from otpatch.modules.contract.errors import DeviceUnreachable
from otpatch.modules.contract.durations import format_duration
from otpatch.modules.contract.module import Module, ReadBack, Result
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.common import driver, duration_arg, schema, seconds, took, wait_for
from otpatch.modules.m580.identity import read_identity
from otpatch.modules.m580.versions import parse_version
from otpatch.modules.simulator_only import refusal_cannot_tell

_VERSION = {"type": "string", "minLength": 1,
            "description": "a firmware version: SV4.30, v04.30 and V4.3 name the same one"}


class Identity(Module):
    name = "m580.identity"
    doc = ("Read an M580 CPU's (or X80 adapter's) identity both ways, Modbus FC 43/14 and the "
           "CIP Identity object over EtherNet/IP, and cross-check vendor and revision: fails "
           "naming both values when they disagree. Facts: vendor, product_code, revision, "
           "serial, product_name, model, cip {vendor_id, device_type, product_code, revision, "
           "status, firmware_update_in_progress, serial, product_name}, cross_checked.")
    args_schema = schema()

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name, (H.CPU, H.ADAPTER))
        facts, problems = read_identity(drv)
        if problems:
            return Result(failed=True, facts=facts, msg=f"{drv.host.name}: identity paths "
                          "disagree: " + "; ".join(problems))
        how = "Modbus FC 43 and CIP agree" if facts["cross_checked"] else "one path only"
        return Result(msg=f"{drv.host.name}: {facts['vendor']} {facts['product_name']} "
                          f"{facts['revision']} ({how})", facts=facts)


_EXPECT = {"type": "object", "additionalProperties": False, "properties": {
    "state": {"enum": [s.name for s in R.CpuState]},
    "mode": {"enum": [R.label(m) for m in R.OperatingMode]},
    "run_led": {"enum": [R.label(x) for x in R.RunLed]},
    "pid_stable": {"type": "boolean"}, "io_healthy": {"type": "boolean"}}}


class Status(Module):
    name = "m580.status"
    doc = ("Read the CPU's status from the register map: RUN/STOP state, RUN LED, operating "
           "mode (manual/auto), PID loop stability, remote I/O health, running / staged / "
           "previous firmware versions. With `expect`, fails naming each value that differs "
           "(e.g. before the window: mode manual, pid_stable true). The register map is the "
           "otpatch simulator's: a host that does not answer as one is refused (\"not "
           "available on a real device\"), having been sent only identity reads.")
    args_schema = schema(expect=_EXPECT)

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        facts = drv.status().fact()
        wrong = [f"{k} is {facts[k]!r}, expected {v!r}"
                 for k, v in (args.get("expect") or {}).items() if facts[k] != v]
        led = facts["run_led"].replace("_", " ")
        summary = (f"{drv.host.name}: {facts['state']}, RUN LED {led}, mode "
                   f"{facts['mode']}, PID {facts['pid_loops_stable']}/{facts['pid_loops']} "
                   f"stable, I/O {facts['io_drops_healthy']}/{facts['io_drops']} drops healthy")
        if wrong:
            return Result(failed=True, facts=facts, msg=f"{summary}: " + "; ".join(wrong))
        return Result(msg=summary, facts=facts)


class SetMode(Module):
    name = "m580.set_mode"
    doc = ("Put the CPU's process control in manual or auto mode (the article: manual mode "
           "before the patch, released only once the RUN LED is solid green). Reads back. "
           "Simulator only (its register map): refused on a real device, where it is an "
           "operator action at the HMI.")
    args_schema = schema(("target", "mode"), mode={"enum": ["manual", "auto"]})
    changes_device = True
    changes = ("mode",)
    verifies = {"mode": ()}  # it reads the mode back after writing it
    read_back_doc = "the operating mode register equals `mode`: applied"

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        wanted = R.OperatingMode[args["mode"].upper()]
        before = drv.status()
        if before.mode == wanted:
            return Result(msg=f"{drv.host.name}: already in {args['mode']} mode",
                          facts={"mode": args["mode"], "previous_mode": args["mode"]})
        drv.set_mode(wanted)
        after = drv.status()
        facts = {"mode": R.label(after.mode), "previous_mode": R.label(before.mode),
                 "pid_stable": after.fact()["pid_stable"]}
        if after.mode != wanted:
            return Result(failed=True, facts=facts, msg=f"{drv.host.name}: asked for "
                          f"{args['mode']} mode, the CPU reads back {facts['mode']}")
        return Result(changed=True, facts=facts, diff={"mode": [facts["previous_mode"],
                                                               facts["mode"]]},
                      msg=f"{drv.host.name}: {facts['previous_mode']} -> {facts['mode']} mode")

    @refusal_cannot_tell
    def read_back(self, args, ctx) -> ReadBack:
        drv = driver(ctx, args, self.name)
        mode = R.label(drv.status().mode)
        applied = mode == args["mode"]
        return ReadBack(applied, Result(changed=applied, facts={"mode": mode},
                                        msg=f"{drv.host.name}: in {mode} mode"))


class VerifyVersion(Module):
    name = "m580.verify_version"
    doc = ("Step 3 of the procedure: the running firmware (PLC - Properties - Processor "
           "Version; here the identity revision, both paths cross-checked) equals the target "
           "version of the advisory's remediation table. SV4.30, v04.30 and V4.3 are the same.")
    args_schema = schema(("target", "version"), version=_VERSION)
    verifies = {"firmware": ()}

    def run(self, args, ctx) -> Result:
        try:
            target = parse_version(args["version"])
        except ValueError as e:
            return Result(failed=True, msg=str(e))
        drv = driver(ctx, args, self.name, (H.CPU, H.ADAPTER))
        facts, problems = read_identity(drv)
        if problems:
            return Result(failed=True, facts=facts, msg=f"{drv.host.name}: identity paths "
                          "disagree: " + "; ".join(problems))
        running = parse_version(facts["revision"])
        facts = {"running_version": str(running), "target_version": str(target),
                 "matches": running == target}
        if running != target:
            return Result(failed=True, facts=facts, msg=f"{drv.host.name} runs {running} "
                          f"({running.advisory}), not the target {target} ({target.advisory})")
        return Result(facts=facts, msg=f"{drv.host.name} runs the target version {running} "
                                       f"({running.advisory})")


class WaitRun(Module):
    name = "m580.wait_run"
    doc = ("Wait for the CPU to come back after its automatic reboot (45-60 s): state RUN and "
           "the RUN LED solid green, as the article asks before manual control is released. "
           "Fails on timeout. A dry run passes the reboot in simulated time. Polls the "
           "simulator's register map: refused on a real device.")
    args_schema = schema(timeout=duration_arg("2m", "how long to wait for RUN"),
                         interval=duration_arg("2s", "how often to look"))

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        seen = {"last": "no answer yet"}

        def running():
            try:
                status = drv.status()
            except DeviceUnreachable as e:  # a real CPU is silent while it reboots
                seen["last"] = f"no answer ({e})"
                return None
            seen["last"] = f"{R.label(status.state)}, RUN LED {R.spoken(status.run_led)}"
            return status if status.running_green else None

        timeout = seconds(args, "timeout", self.args_schema)
        status, waited = wait_for(ctx, drv, running, timeout,
                                  seconds(args, "interval", self.args_schema))
        if status is None:
            return Result(failed=True, facts={"waited_s": waited}, msg=(
                f"{drv.host.name} not in RUN with the RUN LED solid green after "
                f"{format_duration(timeout)}: last seen {seen['last']}"))
        return Result(facts={"waited_s": waited, **status.fact()},
                      msg=f"{drv.host.name}: RUN, RUN LED solid green after {took(waited, ctx)}")
