"""m580.spare_swap: FAQ000272937's second way back across 4.20, a spare M580 CPU of the same
model with the application on its SD card, swapped in by a person; the CIP Identity serial
then says whether the CPU that answers is the registered spare."""
from __future__ import annotations

from otpatch.modules.contract.attest import attested
from otpatch.modules.contract.errors import DeviceUnreachable
from otpatch.modules.contract.module import Module, ReadBack, Result
from otpatch.modules.m580 import appstore
from otpatch.modules.m580.appobject import SwapState
from otpatch.modules.m580.common import driver, duration_arg, schema, seconds, took, wait_for
from otpatch.modules.m580.driver import CIP_IDENTITY_SOURCE, FC43_SOURCE, M580Driver
from otpatch.modules.m580.engineering_link import FAQ000272937
from otpatch.modules.m580.guided import SeenCpu, is_guided, read_cpu, wait_until
from otpatch.modules.m580.hardware import SpareCpu, serial_matches, spare_of
from otpatch.modules.m580.transfer_args import ROLE, role_of
from otpatch.modules.simulator_only import refusal_cannot_tell


class SpareSwap(Module):
    name = "m580.spare_swap"
    doc = ("Rollback across 4.20 without the special firmware (FAQ000272937, method 2): a "
           "person powers the CPU down, puts the pre-registered spare of the same model in "
           "its place with its SD card (the inventory's `spare_cpu`: serial_number required; "
           "part_number, product_version, firmware, sd_card), and powers it up; the CPU loads "
           "the application from the SD card. The step then reads the CIP Identity serial: it "
           "must be the spare's (a real CPU's `serial_number` as that attribute reads, 8 hex "
           "digits or decimal). About 15-20 minutes (the simulator: 18, an estimate). On a "
           "real CPU `role` (default operator) attests the swap; on a simulator its hardware "
           "object stands for the person. Follow with m580.verify_version (the spare's "
           "firmware), m580.verify_application and m580.wait_run. Facts: spare_swap "
           "{spare_serial, serial_before, serial_after, running_version, duration_s, evidence}.")
    args_schema = schema(role=ROLE, timeout=duration_arg("30m", "how long the swap may take"),
                         interval=duration_arg("10s", "how often to read the identity"))
    changes_device = True
    changes = ("hardware", "firmware", "application")  # a whole other CPU, with its SD card
    verifies = {"hardware": ()}  # the identity serial is read back: the spare's
    real_device = "guided"
    sources = (FAQ000272937, CIP_IDENTITY_SOURCE, FC43_SOURCE)
    read_back_doc = ("the CIP Identity serial is the spare's: applied; no answer, or the "
                     "simulator's swap under way: still moving; the old serial: not applied")

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        spare, problem = _spare(drv)
        if problem:
            return Result(failed=True, msg=problem)
        before = read_cpu(drv)
        if not before.serial:
            return Result(failed=True, msg=f"{drv.host.name}: the CIP Identity (an `enip` "
                                           "endpoint) gives the serial the swap is checked by")
        if _is_spare(drv, spare, before):
            return Result(msg=f"{drv.host.name}: the spare {spare.serial} is already in",
                          facts={"spare_swap": {"spare_serial": spare.serial,
                                                "skipped": True}})
        facts = {"spare_serial": spare.serial, "serial_before": before.serial}
        if is_guided(drv):
            confirmed, record = attested(ctx, (
                f"{drv.host.name}: I swapped the CPU (CIP serial {before.serial}) for the "
                f"pre-registered spare ({spare.described()}) with its SD card, and powered "
                "it up"), role_of(args))
            facts.update(evidence="guided", attestation=record)
            if not confirmed:
                return Result(failed=True, facts={"spare_swap": facts},
                              msg=f"{record['person']} did not confirm the spare swap")
            seen, waited, last = wait_until(ctx, drv, lambda s: _is_spare(drv, spare, s),
                                            *self._timeouts(args))
        else:
            appstore.for_simulator(drv, self.name, appstore.HARDWARE).swap_spare()
            facts["evidence"] = "simulator hardware object, then the CIP Identity serial"
            seen, waited, last = self._wait_simulated(ctx, drv, spare, args)
        return _swapped(ctx, drv, spare, seen, waited, last, facts)

    def _timeouts(self, args) -> tuple[float, float]:
        return (seconds(args, "timeout", self.args_schema),
                seconds(args, "interval", self.args_schema))

    def _wait_simulated(self, ctx, drv: M580Driver, spare: SpareCpu, args):
        last = {"seen": "no answer yet"}

        def swapped():
            seen = read_cpu(drv)
            last["seen"] = f"serial {seen.serial}, firmware {seen.running}"
            return seen if _is_spare(drv, spare, seen) else None
        seen, waited = wait_for(ctx, drv, swapped, *self._timeouts(args))
        return seen, waited, last["seen"]

    @refusal_cannot_tell
    def read_back(self, args, ctx) -> ReadBack:
        drv = driver(ctx, args, self.name)
        spare, problem = _spare(drv)
        if problem:
            return ReadBack(None, Result(failed=True, msg=problem))
        try:
            seen = read_cpu(drv)
        except DeviceUnreachable as e:
            return ReadBack.still_moving(Result(unreachable=True, msg=f"no answer yet ({e})"),
                                         *self._timeouts(args))
        said = f"{drv.host.name}: CIP serial {seen.serial}, firmware {seen.running}"
        if _is_spare(drv, spare, seen):
            return ReadBack(True, Result(changed=True, facts=seen.facts,
                                         msg=f"{said}: the spare {spare.serial} is in"))
        if not is_guided(drv) and appstore.for_simulator(drv, self.name, appstore.HARDWARE
                                                         ).hardware().swap == \
                SwapState.IN_PROGRESS:
            return ReadBack.still_moving(Result(facts=seen.facts, msg=f"{said}: swap under way"),
                                         *self._timeouts(args))
        return ReadBack(False, Result(facts=seen.facts, msg=f"{said}: not the spare"))

    def advance_sim_clock(self, args, ctx, seconds_: float) -> None:
        driver(ctx, args, self.name).advance_sim_clock(seconds_)


def _spare(drv: M580Driver) -> tuple[SpareCpu | None, str | None]:
    """The registered spare, or why the swap is refused before anything is sent."""
    who, spare = drv.host.name, spare_of(drv.host)
    if spare is None:
        return None, (f"{who}: no spare_cpu in the inventory: register the spare CPU "
                      "(serial_number; part_number, product_version, firmware, sd_card) "
                      "before the change")
    if spare.part_number and drv.host.part_number and spare.part_number != \
            drv.host.part_number:
        return None, (f"{who} is a {drv.host.part_number}, its spare a {spare.part_number}: "
                      "FAQ000272937 asks for a spare CPU of the same model")
    return spare, None


def _is_spare(drv: M580Driver, spare: SpareCpu, seen: SeenCpu) -> bool:
    return bool(seen.serial) and serial_matches(spare.serial, int(seen.serial, 16),
                                                drv.host.simulator)


def _swapped(ctx, drv: M580Driver, spare: SpareCpu, seen: SeenCpu | None, waited: float,
             last: str, facts: dict) -> Result:
    facts["duration_s"] = waited
    who = drv.host.name
    if seen is None:
        return Result(failed=True, changed=True, facts={"spare_swap": facts}, msg=(
            f"{who}: after {took(waited, ctx)} the CPU that answers is not the spare "
            f"{spare.serial}: last seen {last}"))
    facts.update(serial_after=seen.serial, running_version=str(seen.running))
    return Result(changed=True, facts={"spare_swap": facts, **seen.facts}, msg=(
        f"{who}: the spare {spare.serial} answers (CIP serial {seen.serial}), firmware "
        f"{seen.running}, after {took(waited, ctx)}"))
