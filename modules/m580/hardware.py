"""An M580 CPU's hardware as the inventory registers it: the product version (PV) on its label,
how its `serial_number` compares with the serial the CIP Identity object reads, and the
pre-registered spare CPU (`spare_cpu`) of FAQ000272937's second way back."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from otpatch.modules.contract.errors import InputError
from otpatch.modules.m580.versions import FirmwareVersion, parse_version
# the product version parser lives with the one version parser; its names stay here too
from otpatch.modules.versions import parse_product_version, pv_text  # noqa: F401


def cip_serial_of(text: str) -> int:
    """The CIP Identity serial (UDINT) an otpatch simulator shows for an inventory serial:
    the text itself if it is hex, else its CRC-32 (a simulator rule: a real CPU has its own)."""
    clean = text.strip().lower().removeprefix("0x")
    try:
        return int(clean, 16) & 0xFFFFFFFF
    except ValueError:
        return zlib.crc32(text.strip().encode())


def serial_matches(text: str, cip_serial: int, simulator: bool) -> bool:
    """Whether an inventory serial names the CPU whose CIP Identity serial is `cip_serial`.
    A real CPU's must be written as that attribute reads: 8 hex digits (0x optional) or its
    decimal value; a simulator's follows cip_serial_of."""
    if simulator:
        return cip_serial_of(text) == cip_serial
    clean = text.strip().lower().removeprefix("0x")
    values = set()
    for base in (16, 10):
        try:
            values.add(int(clean, base))
        except ValueError:
            pass
    return cip_serial in values


@dataclass(frozen=True)
class SpareCpu:
    """`spare_cpu` of an inventory host: a CPU of the same model with the application on its
    SD card, registered before the change (schemas/inventory.schema.json #/$defs/spare_cpu)."""

    serial: str
    part_number: str = ""
    product_version: int | None = None
    firmware: FirmwareVersion | None = None
    sd_card: str = ""
    location: str = ""

    def described(self) -> str:
        parts = [f"serial {self.serial}"]
        parts += [self.part_number] if self.part_number else []
        parts += [pv_text(self.product_version)] if self.product_version is not None else []
        parts += [f"firmware {self.firmware}"] if self.firmware else []
        parts += [f"SD card: {self.sd_card}"] if self.sd_card else []
        parts += [f"kept at {self.location}"] if self.location else []
        return ", ".join(parts)


def product_version_of(host: Any) -> int | None:
    """The host's `product_version`, or None when the inventory gives none; InputError for
    one that is not a product version."""
    raw = (host.vars or {}).get("product_version")
    if raw in (None, ""):
        return None
    try:
        return parse_product_version(raw)
    except ValueError as e:
        raise InputError(f"{host.name}: product_version: {e}") from None


def spare_of(host: Any) -> SpareCpu | None:
    """The host's pre-registered spare CPU, or None; InputError for malformed values."""
    raw = (host.vars or {}).get("spare_cpu")
    if not raw:
        return None
    try:
        pv = raw.get("product_version")
        firmware = raw.get("firmware")
        return SpareCpu(str(raw["serial_number"]), str(raw.get("part_number") or ""),
                        parse_product_version(pv) if pv not in (None, "") else None,
                        parse_version(firmware) if firmware else None,
                        str(raw.get("sd_card") or ""), str(raw.get("location") or ""))
    except (KeyError, ValueError) as e:
        raise InputError(f"{host.name}: spare_cpu: {e}") from None
