"""The M580 steps a person performs on a real CPU (a host the inventory marks `simulator:
false`): they act in the vendor's tool (EcoStruxure Automation Device Maintenance for the
firmware, Control Expert for the application) or by hand (the spare CPU), confirm it in an
attestation that binds host, serial, version and image SHA-256, and the module reads the
result back through public reads only: Modbus FC 43/14 and the CIP Identity object
(driver.FC43_SOURCE, driver.CIP_IDENTITY_SOURCE). Nothing else is sent to the CPU.

A person not there pauses the run (ctx.attest: awaiting). A device-changing step's intent is
journaled first, so `otpatch resume` asks its read-back (guided_read_back) before anything:
the CPU already showing the version means the change took effect (the attestation signed
for it is in the journal); not showing it clears the intent and the step asks again."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from otpatch.modules.contract.attest import attested
from otpatch.modules.contract.errors import DeviceUnreachable, ModuleFailed
from otpatch.modules.contract.module import ReadBack, Result
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.driver import M580Driver
from otpatch.modules.m580.identity import read_identity
from otpatch.modules.m580.versions import FirmwareVersion, parse_version
from otpatch.modules.polling import poll_until


def is_guided(drv: M580Driver) -> bool:
    """A host the inventory does not mark a simulator: a person performs the change."""
    return not drv.host.simulator


@dataclass(frozen=True)
class SeenCpu:
    """The CPU as the public reads show it."""

    running: FirmwareVersion
    serial: str  # the CIP Identity serial (8 hex digits); "" without an EtherNet/IP endpoint
    updating: bool  # the Identity's extended status says a firmware update is in progress
    facts: dict[str, Any]

    def serial_or(self, host: Any) -> str:
        return self.serial or f"{host.serial or 'no serial in the inventory'} (inventory)"


class PathsDisagree(ModuleFailed):
    """FC 43/14 and the CIP Identity name different vendors or firmware."""

    def __init__(self, host: str, problems: list[str]):
        super().__init__(f"{host}: identity paths disagree: " + "; ".join(problems))
        self.problems = tuple(problems)


def read_cpu(drv: M580Driver) -> SeenCpu:
    """FC 43/14 and the CIP Identity, cross-checked; PathsDisagree when they disagree."""
    facts, problems = read_identity(drv)
    if problems:
        raise PathsDisagree(drv.host.name, problems)
    try:
        running = parse_version(facts.get("revision", ""))
    except ValueError as e:
        raise ModuleFailed(f"{drv.host.name}: the identity names no firmware version: {e}")
    return SeenCpu(running, str(facts.get("serial", "")),
                   bool((facts.get("cip") or {}).get("firmware_update_in_progress")), facts)


def application_name(drv: M580Driver) -> str:
    """FC 43/14 object 0x06 (UserApplicationName, a regular object a device may leave out),
    or "" when the CPU does not answer it."""
    if not H.has_endpoint(drv.host, "modbus"):
        return ""
    return drv.modbus_identity().objects.get(0x06, "")


def wait_until(ctx: Any, drv: M580Driver, wanted: Callable[[SeenCpu], bool], timeout: float,
               interval: float) -> tuple[SeenCpu | None, float, str]:
    """Public reads every `interval` until `wanted` holds: (what was seen, or None, seconds
    waited, the last thing seen in words). A silent CPU, one updating, and one whose two
    identity paths disagree are "not yet": FC 43/14 and the CIP Identity are two requests
    a moment apart, so a CPU whose firmware changes between them (as it comes up after the
    update) shows the old version on one and the new on the other. A disagreement that
    lasts to the timeout is what the step fails with."""
    last = {"seen": "no answer yet"}

    def check() -> SeenCpu | None:
        try:
            seen = read_cpu(drv)
        except DeviceUnreachable as e:
            last["seen"] = f"no answer ({e})"
            return None
        except PathsDisagree as e:
            last["seen"] = "the identity paths disagreeing (" + "; ".join(e.problems) + ")"
            return None
        last["seen"] = (f"firmware {seen.running}, serial {seen.serial or '?'}"
                        + (", firmware update in progress" if seen.updating else ""))
        return seen if not seen.updating and wanted(seen) else None
    found, waited = poll_until(ctx, check, timeout=timeout, interval=interval)
    return found, waited, last["seen"]


def earlier_serial(ctx: Any, target: str) -> str:
    """The CIP serial an earlier identity read of the target recorded ("" if none)."""
    facts = (getattr(ctx, "facts", None) or {}).get(target) or {}
    return str(facts.get("serial") or "") if isinstance(facts, dict) else ""


def version_read_back(drv: M580Driver, ctx: Any, target: str, version: FirmwareVersion,
                      timeout: float, interval: float) -> ReadBack:
    """After a crash or a pause of a guided firmware step: the CPU's version, publicly read."""
    who = drv.host.name
    try:
        seen = read_cpu(drv)
    except DeviceUnreachable as e:
        return ReadBack.still_moving(Result(unreachable=True, msg=f"{who}: no answer yet ({e})"),
                                     timeout, interval)
    except PathsDisagree as e:  # read between the two paths' answers as it comes up
        return ReadBack.still_moving(Result(msg=(
            f"{who}: the identity paths disagree yet: " + "; ".join(e.problems))),
            timeout, interval)
    if seen.updating:
        return ReadBack.still_moving(Result(facts=seen.facts, msg=(
            f"{who}: the CIP Identity says a firmware update is in progress")), timeout, interval)
    before = earlier_serial(ctx, target)
    if before and seen.serial and before != seen.serial:
        return ReadBack(None, Result(failed=True, facts=seen.facts, msg=(
            f"{who}: CIP serial {seen.serial} answers, {before} was read before: another "
            "CPU, a human decides")))
    if seen.running == version:
        return ReadBack(True, Result(changed=True, facts=seen.facts, msg=(
            f"{who} runs {version} (FC 43/14 and CIP Identity agree): the change a person "
            "made took effect; a signed attestation of it is in the run's journal")))
    return ReadBack(False, Result(facts=seen.facts, msg=(
        f"{who} runs {seen.running}, not {version}: the change has not happened yet; the "
        "step asks for it again")))


def guided_change(ctx: Any, drv: M580Driver, before: SeenCpu, statement: str, role: str,
                  version: FirmwareVersion, timeouts: tuple[float, float],
                  key: str, facts: dict[str, Any]) -> Result:
    """Ask the person to confirm what they did, then read the version back: the step's
    Result, its facts under `key` with the attestation, the serial and the wait."""
    who = drv.host.name
    confirmed, record = attested(ctx, statement, role)
    facts = {**facts, "evidence": "guided", "attestation": record, "serial": before.serial}
    if not confirmed:
        return Result(failed=True, facts={key: facts}, msg=(
            f"{record['person']} did not confirm: {statement}"))
    seen, waited, last = wait_until(ctx, drv, lambda s: s.running == version, *timeouts)
    facts["duration_s"] = waited
    if seen is None:
        return Result(failed=True, changed=True, facts={key: facts}, msg=(
            f"{who}: {record['person']} confirmed the change, but the CPU does not read back "
            f"{version}: last seen {last}"))
    if before.serial and seen.serial != before.serial:
        return Result(failed=True, changed=True, facts={key: facts}, msg=(
            f"{who}: CIP serial {seen.serial} answers after the change, {before.serial} "
            "before: not the CPU the attestation names"))
    return Result(changed=True, facts={key: facts, **seen.facts}, msg=(
        f"{who}: confirmed by {record['person']} ({record['role']}); the CPU reads back "
        f"{version} (FC 43/14 and CIP Identity agree), serial {seen.serial or '?'}"))
