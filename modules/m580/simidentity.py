"""Does an M580 / X80 host answer as an otpatch simulator? Asked with public identity reads
only: Modbus FC 43/14 Read Device Identification (Modbus Application Protocol v1.1b3,
section 6.21; objects 0x80+ are its "private" extended objects) and the CIP Identity
object (class 0x01, instance 1; ODVA CIP Vol. 1). The simulator's own marker (CIP class
0x64) is read only once the Identity's product name already says "(otpatch simulator)", so
a real device sees nothing but its identity being read."""
from __future__ import annotations

from typing import TYPE_CHECKING

from pymodbus.constants import DeviceInformation

from otpatch.modules.contract.errors import ModuleFailed
from otpatch.modules.cip import objects
from otpatch.modules.cip.session import CipServiceError, simulator_marker
from otpatch.modules.m580 import hosts as H

if TYPE_CHECKING:
    from otpatch.modules.m580.driver import M580Driver

SUFFIX = f"({objects.SIMULATOR_MARKER})"


def answer(driver: "M580Driver") -> tuple[bool, str]:
    """(answers as an otpatch simulator on every endpoint the host has, what was seen).
    Stops at the first endpoint that does not; DeviceUnreachable propagates."""
    checks = [check for name, check in (("modbus", _modbus), ("enip", _enip))
              if H.has_endpoint(driver.host, name)]
    if not checks:
        return False, f"{driver.host.name}: no modbus or enip endpoint in the inventory to ask"
    seen = []
    for check in checks:
        ok, detail = check(driver)
        if not ok:
            return False, detail
        seen.append(detail)
    return True, "; ".join(seen)


def _modbus(driver: "M580Driver") -> tuple[bool, str]:
    where = "{}:{}".format(*H.endpoint(driver.host, "modbus"))
    try:
        ident = driver.modbus_identity(DeviceInformation.EXTENDED)
    except ModuleFailed as e:  # FC 43 refused: whatever it is, not our simulator
        return False, f"{e}: not an otpatch simulator"
    said = f"{ident.vendor!r} {ident.product_code!r} {ident.revision!r} {ident.product_name!r}"
    if ident.objects.get(0x80) == objects.SIMULATOR_MARKER and ident.product_name.endswith(SUFFIX):
        return True, f"{driver.host.name}: Modbus {where} answers as an otpatch simulator"
    return False, (f"{driver.host.name}: Modbus {where} answers FC 43 as {said}: not an "
                   "otpatch simulator")


def _enip(driver: "M580Driver") -> tuple[bool, str]:
    where = "{}:{}".format(*H.endpoint(driver.host, "enip"))
    with driver.cip() as session:
        try:
            ident = session.identity()
        except CipServiceError as e:
            return False, f"{e}: not an otpatch simulator"
        if not ident.product_name.endswith(SUFFIX):
            return False, (f"{driver.host.name}: EtherNet/IP {where} answers as {ident.vendor} "
                           f"{ident.product_name!r}: not an otpatch simulator")
        marker = simulator_marker(session)
    if marker == objects.SIMULATOR_MARKER:
        return True, f"{driver.host.name}: EtherNet/IP {where} answers as an otpatch simulator"
    return False, (f"{driver.host.name}: EtherNet/IP {where} names itself {ident.product_name!r} "
                   "but has no otpatch simulator marker: not an otpatch simulator")
