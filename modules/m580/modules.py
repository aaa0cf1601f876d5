"""m580.identity, m580.health, m580.verify_version, m580.wait_run (public reads, on any host)
and m580.status, m580.set_mode (the simulator's register map: rehearsal extras)."""
from __future__ import annotations

from otpatch.modules.cip.session import CipServiceError
from otpatch.modules.contract.errors import DeviceUnreachable
from otpatch.modules.contract.durations import format_duration
from otpatch.modules.contract.module import Module, ReadBack, Result
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.common import driver, duration_arg, schema, seconds, took, wait_for
from otpatch.modules.m580.driver import (CIP_IDENTITY_SOURCE, CIP_STATUS_CROSS_CHECK,
                                         ENIP_SOURCE, FC43_SOURCE)
from otpatch.modules.m580.identity import (IO_STATES, fc43_revision, health_words, read_health,
                                           read_identity)
from otpatch.modules.m580.versions import parse_version
from otpatch.modules.simulator_only import refusal_cannot_tell

_VERSION = {"type": "string", "minLength": 1,
            "description": "a firmware version: SV4.30, v04.30 and V4.3 name the same one"}
IDENTITY_SOURCES = (FC43_SOURCE, CIP_IDENTITY_SOURCE, ENIP_SOURCE)
HEALTH_SOURCES = (CIP_IDENTITY_SOURCE, ENIP_SOURCE, FC43_SOURCE, CIP_STATUS_CROSS_CHECK)


class Identity(Module):
    name = "m580.identity"
    doc = ("Read an M580 CPU's (or X80 adapter's) identity both ways, Modbus FC 43/14 and the "
           "CIP Identity object over EtherNet/IP, and cross-check vendor and revision: fails "
           "naming both values when they disagree. Facts: vendor, product_code, revision, "
           "serial, product_name, model, cip {vendor_id, device_type, product_code, revision, "
           "status, firmware_update_in_progress, serial, product_name}, cross_checked. "
           "Public reads only: the same on a real device as on the simulator.")
    args_schema = schema()
    real_device = "sourced"
    sources = IDENTITY_SOURCES

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name, (H.CPU, H.ADAPTER))
        facts, problems = read_identity(drv)
        if problems:
            return Result(failed=True, facts=facts, msg=f"{drv.host.name}: identity paths "
                          "disagree: " + "; ".join(problems))
        how = "Modbus FC 43 and CIP agree" if facts["cross_checked"] else "one path only"
        return Result(msg=f"{drv.host.name}: {facts['vendor']} {facts['product_name']} "
                          f"{facts['revision']} ({how})", facts=facts)


_HEALTH_EXPECT = {"type": "object", "additionalProperties": False, "properties": {
    "io": {"enum": list(IO_STATES.values()),
           "description": "run, idle, none (no I/O connection) or faulted (one faulted)"},
    "major_fault": {"type": "boolean"}, "firmware_update": {"type": "boolean"}}}


class Health(Module):
    name = "m580.health"
    doc = ("Read a CPU's (or X80 adapter's) health through public reads: the CIP Identity "
           "status word (attribute 5) decoded by name (owned, configured, extended device "
           "status, minor/major recoverable/unrecoverable faults) and, where the host has a "
           "Modbus endpoint, the FC 43 revision. With `expect` ({io: run|idle|none|faulted, "
           "major_fault, firmware_update}), fails naming each value that differs. Facts: io "
           "(run, idle, none, faulted, or unknown for an extended status that does not speak "
           "of I/O), major_fault (bit 10 or 11, or extended status 0101), firmware_update "
           "(extended status 0001), identity_status {word, hex, owned, configured, "
           "extended_status, extended_code, minor_recoverable_fault, "
           "minor_unrecoverable_fault, major_recoverable_fault, major_unrecoverable_fault}, "
           "revision (FC 43, else CIP), cip_revision, serial. The same on a real device as "
           "on the simulator; it does not show the RUN LED, the operating mode or the PID "
           "loops (attest those with core.attest).")
    args_schema = schema(expect=_HEALTH_EXPECT)
    real_device = "sourced"
    sources = HEALTH_SOURCES

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name, (H.CPU, H.ADAPTER))
        if not H.has_endpoint(drv.host, "enip"):
            return _no_enip(drv.host, self.name)
        facts = read_health(drv)
        summary = f"{drv.host.name}: {health_words(facts)}; revision {facts['revision']}"
        wrong = differences(facts, args.get("expect"))
        if wrong:
            return Result(failed=True, facts=facts, msg=f"{summary}: " + "; ".join(wrong))
        return Result(msg=summary, facts=facts)


def differences(facts: dict, expect: dict | None) -> list[str]:
    """Each expected value the facts do not have, in words."""
    return [f"{k} is {facts[k]!r}, expected {v!r}"
            for k, v in (expect or {}).items() if facts[k] != v]


def _no_enip(host, module: str) -> Result:
    return Result(failed=True, msg=f"{host.name}: {module} reads the CIP Identity status "
                                   "over EtherNet/IP: the inventory gives no `enip` endpoint")


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
           "available on a real device\"), having been sent only identity reads. A "
           "rehearsal extra. On a real plant: no public interface reads these (Control "
           "Expert reads them over UMAS, proprietary); m580.health reads the public CIP "
           "Identity status and the operator attests mode, PID loops and the RUN LED with "
           "core.attest.")
    args_schema = schema(expect=_EXPECT)
    real_device = "simulator"

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        facts = drv.status().fact()
        wrong = differences(facts, args.get("expect"))
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
           "Simulator only (its register map): refused on a real device. A rehearsal "
           "extra. On a real plant: an operator action at the HMI, attested with "
           "core.attest (\"the M580's loops are in manual mode and stable\", role "
           "operator): no public interface sets or reads the mode on the CPU.")
    args_schema = schema(("target", "mode"), mode={"enum": ["manual", "auto"]})
    real_device = "simulator"
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
           "version of the advisory's remediation table. SV4.30, v04.30 and V4.3 are the "
           "same. Public reads only: the same on a real device as on the simulator.")
    args_schema = schema(("target", "version"), version=_VERSION)
    verifies = {"firmware": ()}
    real_device = "sourced"
    sources = IDENTITY_SOURCES

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
    doc = ("Wait for the CPU to come back after its automatic reboot (45-60 s) through public "
           "reads only, on every host: the CIP Identity answers again with extended device "
           "status \"at least one I/O connection in run mode\" and no major fault (status "
           "bits 10-11, extended status 0101); a CPU that does not answer is \"not yet\". "
           "Then the FC 43 revision where the host has a Modbus endpoint. Fails on timeout, "
           "naming the last status seen. Facts: waited_s and m580.health's (io, major_fault, "
           "firmware_update, identity_status, revision, cip_revision, serial). The RUN LED "
           "is not read (no public interface shows it): the operator attests it with "
           "core.attest. A dry run passes the reboot in the simulator's simulated time "
           "(only once the host answers as an otpatch simulator).")
    args_schema = schema(timeout=duration_arg("2m", "how long to wait for RUN"),
                         interval=duration_arg("2s", "how often to look"))
    real_device = "sourced"
    sources = HEALTH_SOURCES

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        if not H.has_endpoint(drv.host, "enip"):
            return _no_enip(drv.host, self.name)
        seen = {"last": "no answer yet"}
        timeout = seconds(args, "timeout", self.args_schema)
        facts, waited = wait_for(ctx, drv, lambda: _back_in_run(drv, seen), timeout,
                                 seconds(args, "interval", self.args_schema))
        if facts is None:
            return Result(failed=True, facts={"waited_s": waited}, msg=(
                f"{drv.host.name} not back with an I/O connection in run mode and no major "
                f"fault after {format_duration(timeout)}: last seen {seen['last']}"))
        return Result(facts={"waited_s": waited, **facts},
                      msg=f"{drv.host.name}: back, I/O connection in run mode, no major "
                          f"fault, revision {facts['revision']} after {took(waited, ctx)}")


def _back_in_run(drv, seen: dict) -> dict | None:
    """Health facts once the CPU is back in run with no major fault; None (and what was
    seen, in `seen["last"]`) while it is silent, refuses, or is not there yet."""
    try:
        facts = read_health(drv, with_revision=False)
    except (DeviceUnreachable, CipServiceError) as e:  # silent or half-up while it reboots
        seen["last"] = f"no answer ({e})"
        return None
    seen["last"] = health_words(facts)
    if facts["io"] != "run" or facts["major_fault"]:
        return None
    if not H.has_endpoint(drv.host, "modbus"):
        return facts
    try:
        return {**facts, "revision": fc43_revision(drv)}
    except DeviceUnreachable as e:
        seen["last"] += f"; Modbus FC 43 not answering yet ({e})"
        return None
