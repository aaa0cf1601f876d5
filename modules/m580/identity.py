"""Identity read both ways, Modbus FC 43/14 and the CIP Identity object, and cross-checked;
and the device's health from the CIP Identity status word, decoded by name.

Both are public reads (driver.FC43_SOURCE, driver.CIP_IDENTITY_SOURCE): they answer the same
on a real M580 or X80 adapter as on the otpatch simulator."""
from __future__ import annotations

from dataclasses import dataclass
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


# -- health: the CIP Identity status word (attribute 5) --------------------------------------

# CIP Vol. 1 Table 5-2.4, extended device status (status bits 4-7); OpENer's cipidentity.h
# defines the same values. 8-15 are reserved or vendor specific.
EXTENDED_STATUS = {
    0: "self-testing or unknown", 1: "firmware update in progress",
    2: "at least one faulted I/O connection", 3: "no I/O connections established",
    4: "non-volatile configuration bad", 5: "major fault",
    6: "at least one I/O connection in run mode",
    7: "at least one I/O connection established, all in idle mode"}
IO_STATES = {6: "run", 7: "idle", 3: "none", 2: "faulted"}  # what `expect: {io}` names
IO_UNKNOWN = "unknown"  # an extended status that says nothing about the I/O connections
# CIP Vol. 1 Table 5-2.3: status bits 0 owned, 2 configured, 8-11 the four fault kinds
OWNED, CONFIGURED = 0x0001, 0x0004
FAULT_BITS = (("minor_recoverable_fault", 0x0100), ("minor_unrecoverable_fault", 0x0200),
              ("major_recoverable_fault", 0x0400), ("major_unrecoverable_fault", 0x0800))
MAJOR_FAULT_EXTENDED = 5


@dataclass(frozen=True)
class IdentityStatus:
    """The Identity object's status word, decoded (CIP Vol. 1 Tables 5-2.3 and 5-2.4)."""

    word: int

    @property
    def extended(self) -> int:
        return (self.word >> 4) & 0x0F

    @property
    def extended_name(self) -> str:
        return EXTENDED_STATUS.get(self.extended,
                                   f"reserved or vendor specific ({self.extended:04b})")

    @property
    def io(self) -> str:
        return IO_STATES.get(self.extended, IO_UNKNOWN)

    @property
    def faults(self) -> tuple[str, ...]:
        return tuple(name for name, bit in FAULT_BITS if self.word & bit)

    @property
    def major_fault(self) -> bool:
        return self.extended == MAJOR_FAULT_EXTENDED or bool(self.word & 0x0C00)

    @property
    def firmware_update(self) -> bool:
        return self.extended == 1

    def fact(self) -> dict[str, Any]:
        return {"word": self.word, "hex": f"0x{self.word:04X}",
                "owned": bool(self.word & OWNED), "configured": bool(self.word & CONFIGURED),
                "extended_status": self.extended_name, "extended_code": self.extended,
                **{name: bool(self.word & bit) for name, bit in FAULT_BITS}}

    def spoken(self) -> str:
        """`0x0434: configured; no I/O connections established; major recoverable fault`."""
        words = [w for w, bit in (("owned", OWNED), ("configured", CONFIGURED))
                 if self.word & bit]
        words += [self.extended_name] + [f.replace("_", " ") for f in self.faults]
        return f"0x{self.word:04X}: " + "; ".join(words)


def read_health(driver: M580Driver, with_revision: bool = True) -> dict[str, Any]:
    """Health facts from the CIP Identity (and, with `with_revision`, the FC 43 revision where
    the host has a Modbus endpoint): io, major_fault, firmware_update, identity_status,
    revision, cip_revision, serial. DeviceUnreachable / CipServiceError propagate."""
    cip = driver.cip_identity()
    status = IdentityStatus(cip.status)
    cip_revision = str(FirmwareVersion(cip.revision_major, cip.revision_minor))
    facts: dict[str, Any] = {
        "io": status.io, "major_fault": status.major_fault,
        "firmware_update": status.firmware_update, "identity_status": status.fact(),
        "cip_revision": cip_revision, "revision": cip_revision, "serial": cip.serial_hex}
    if with_revision and H.has_endpoint(driver.host, "modbus"):
        facts["revision"] = fc43_revision(driver)
    return facts


def fc43_revision(driver: M580Driver) -> str:
    """The revision the device gives in Modbus FC 43/14, normalised (v04.30) when it parses."""
    return _normalised(driver.modbus_identity().revision)


def health_words(facts: dict[str, Any]) -> str:
    """What read_health's facts say, for a message."""
    return f"CIP Identity status {IdentityStatus(facts['identity_status']['word']).spoken()}"
