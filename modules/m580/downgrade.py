"""m580.downgrade: FAQ000272937's first way back across 4.20, the special firmware from
Schneider support, on a CPU whose hardware product version allows it; the CPU erases its
application, which m580.application_download then puts back."""
from __future__ import annotations

import dataclasses

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.module import Result
from otpatch.modules.m580 import appstore
from otpatch.modules.m580.common import driver, duration_arg, schema
from otpatch.modules.m580.driver import M580Driver
from otpatch.modules.m580.engineering_link import ENGINEERING_LINK_SINCE, crosses_down
from otpatch.modules.m580.guided import guided_change, is_guided, read_cpu
from otpatch.modules.m580.hardware import parse_product_version, product_version_of, pv_text
from otpatch.modules.m580.transfer_args import (IMAGE, PORT, PORT_WORDS, ROLE, VERSION,
                                                image_name, port_problem, role_of,
                                                verified_image)
from otpatch.modules.m580.update import FirmwareTransfer
from otpatch.modules.m580.versions import FirmwareVersion, parse_version

MIN_PV = {"type": ["string", "integer"], "minLength": 1,
          "description": "the lowest hardware product version (PV) Schneider support states "
                         "the special firmware accepts, e.g. PV 05"}
ERASED = ("erased by the CPU as it boots the special firmware (FAQ000272937): "
          "m580.application_download puts the as-found backup back")


class Downgrade(FirmwareTransfer):
    name = "m580.downgrade"
    doc = ("Rollback across 4.20 (Schneider FAQ000272937, method 1): transfer the special "
           "downgrade firmware from Schneider support (a `type: firmware` param, hashed again "
           "right before, like m580.firmware_transfer) to a version before 4.20 on a CPU "
           "running 4.20 or later. Before anything is sent: the inventory's `product_version` "
           "must be at least `min_product_version` (what Schneider support states for that "
           "firmware), and on a simulator the product version the CPU shows must be the "
           "inventory's. About 8 minutes, then the CPU reboots on its own and comes up "
           "without its application (NOCONF): follow with m580.application_download and "
           "m580.verify_application (or m580.spare_swap instead). On a real CPU a guided "
           "step: `role` (default operator) does it in EcoStruxure Automation Device "
           "Maintenance and attests host, CIP serial, the label's product version, version "
           "and image SHA-256; the version is read back through FC 43/14 and the CIP "
           "Identity. Facts: transfer {...as m580.firmware_transfer}, downgrade "
           "{product_version, min_product_version, product_version_read, application}.")
    args_schema = schema(("target", "image", "version", "port", "min_product_version"),
                         image=IMAGE, port=PORT, min_product_version=MIN_PV, role=ROLE,
                         version={**VERSION, "description": "the version before 4.20 the "
                                                            "special firmware installs"},
                         timeout=duration_arg("20m", "how long the transfer may take"),
                         interval=duration_arg("5s", "how often to ask for progress"))
    changes = ("firmware", "application")  # the CPU erases its application
    read_back_doc = FirmwareTransfer.read_back_doc

    def run(self, args, ctx) -> Result:
        problem = port_problem(args["port"])
        if problem:
            return Result(failed=True, msg=f"{self.name}: {problem}")
        try:
            version = parse_version(args["version"])
            minimum = parse_product_version(args["min_product_version"])
        except ValueError as e:
            return Result(failed=True, msg=f"{self.name}: {e}")
        drv = driver(ctx, args, self.name)
        pv, problem = _inventory_pv(drv, minimum)
        if problem:
            return Result(failed=True, msg=problem)
        facts = {"product_version": pv_text(pv), "min_product_version": pv_text(minimum),
                 "application": ERASED}
        if is_guided(drv):
            return self._guided_downgrade(drv, args, ctx, version, pv, facts)
        return self._simulated(drv, args, ctx, version, pv, facts)

    def _simulated(self, drv: M580Driver, args, ctx, version: FirmwareVersion, pv: int,
                   facts: dict) -> Result:
        status = drv.status()
        problem = _not_across(drv, status.running, version)
        if problem:
            return problem
        shown = appstore.for_simulator(drv, self.name, appstore.HARDWARE).hardware()
        if shown.product_version != pv:
            return Result(failed=True, msg=(
                f"{drv.host.name} shows product version {pv_text(shown.product_version)}, the "
                f"inventory says {pv_text(pv)}: correct the inventory first; nothing sent"))
        image, problem = verified_image(args["image"], ctx)
        if problem:
            return Result(failed=True, msg=problem)
        result = self._transfer(drv, args, ctx, image, version)
        facts["product_version_read"] = "device (the simulator's hardware object) and inventory"
        return dataclasses.replace(result, facts={**result.facts, "downgrade": facts})

    def _guided_downgrade(self, drv: M580Driver, args, ctx, version: FirmwareVersion,
                          pv: int, facts: dict) -> Result:
        before = read_cpu(drv)
        problem = _not_across(drv, before.running, version)
        if problem:
            return problem
        image, problem = verified_image(args["image"], ctx)
        if problem:
            return Result(failed=True, msg=problem)
        port = PORT_WORDS[str(args["port"]).strip().lower()]
        statement = (
            f"{drv.host.name} (CIP serial {before.serial_or(drv.host)}, product version "
            f"{pv_text(pv)} on its label): I downgraded its firmware to {version.advisory} "
            f"({version}) in EcoStruxure Automation Device Maintenance with the special "
            f"firmware from Schneider support {image_name(args['image'], ctx)} (SHA-256 "
            f"{sha256_hex(image)}) over {port}; the CPU erased its application")
        facts["product_version_read"] = "inventory, attested from the CPU's label"
        result = guided_change(ctx, drv, before, statement, role_of(args), version,
                               self._timeouts(args), "transfer",
                               {"version": str(version), "port": args["port"],
                                "sha256": sha256_hex(image), "size": len(image)})
        return dataclasses.replace(result, facts={**result.facts, "downgrade": facts})


def _inventory_pv(drv: M580Driver, minimum: int) -> tuple[int, str | None]:
    """The inventory's product version, or why the downgrade is refused on it."""
    who = drv.host.name
    pv = product_version_of(drv.host)
    if pv is None:
        return 0, (f"{who}: no product_version in the inventory: FAQ000272937 ties the "
                   "special downgrade to the CPU's hardware product version (PV, on its "
                   "label); record it first. Nothing was sent")
    if pv < minimum:
        return pv, (f"{who}: product version {pv_text(pv)} is below {pv_text(minimum)}, the "
                    "lowest the special firmware accepts: the downgrade is refused, nothing "
                    "was sent; the other way back is the spare CPU (m580.spare_swap)")
    return pv, None


def _not_across(drv: M580Driver, running: FirmwareVersion, version: FirmwareVersion
                ) -> Result | None:
    who = drv.host.name
    if running == version:
        return Result(msg=f"{who} already runs {version}: nothing transferred",
                      facts={"transfer": {"version": str(version), "skipped": True}})
    if not crosses_down(running, version):
        return Result(failed=True, msg=(
            f"{who}: {running} to {version} does not cross {ENGINEERING_LINK_SINCE} downward: "
            "no special firmware needed; use m580.firmware_transfer or m580.restore_previous"))
    return None
