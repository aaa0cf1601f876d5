"""Identity read both ways, Modbus FC 43/14 and the CIP Identity object, and cross-checked."""
from __future__ import annotations

from typing import Any

from otpatch.modules.cip import objects
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.driver import M580Driver, ModbusIdentity
from otpatch.modules.m580.versions import FirmwareVersion, parse_version


def cross_check(modbus: ModbusIdentity, cip: objects.CipIdentity) -> list[str]:
    """Every way the two answers disagree on vendor and revision, in words; [] if they agree."""
    problems = []
    if modbus.vendor.strip().casefold() != cip.vendor.casefold():
        problems.append(f"vendor: Modbus FC 43 says {modbus.vendor!r}, CIP Identity says "
                        f"vendor id {cip.vendor_id} ({cip.vendor})")
    cip_version = FirmwareVersion(cip.revision_major, cip.revision_minor)
    try:
        same = parse_version(modbus.revision) == cip_version
    except ValueError:
        same = False
    if not same:
        problems.append(f"revision: Modbus FC 43 says {modbus.revision!r}, CIP Identity says "
                        f"{cip.revision_major}.{cip.revision_minor:02d}")
    return problems


def read_identity(driver: M580Driver) -> tuple[dict[str, Any], list[str]]:
    """Facts from every path the host's endpoints offer, and the paths' disagreements."""
    host = driver.host
    modbus = driver.modbus_identity() if H.has_endpoint(host, "modbus") else None
    cip = driver.cip_identity() if H.has_endpoint(host, "enip") else None
    if modbus is None and cip is None:
        return {}, [f"{host.name}: the inventory gives neither a modbus nor an enip endpoint"]
    facts: dict[str, Any] = {}
    if cip is not None:
        facts.update(vendor=cip.vendor, product_code=str(cip.product_code),
                     revision=str(FirmwareVersion(cip.revision_major, cip.revision_minor)),
                     serial=cip.serial_hex, product_name=cip.product_name, cip=cip.fact())
    if modbus is not None:
        facts.update(vendor=modbus.vendor, product_code=modbus.product_code,
                     product_name=modbus.product_name or facts.get("product_name", ""),
                     model=modbus.model_name, revision=_normalised(modbus.revision))
    facts["cross_checked"] = modbus is not None and cip is not None
    problems = cross_check(modbus, cip) if facts["cross_checked"] else []
    return facts, problems


def _normalised(revision: str) -> str:
    try:
        return str(parse_version(revision))
    except ValueError:
        return revision
