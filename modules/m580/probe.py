"""Does an M580 / X80 host answer as an otpatch simulator? Asked before every dry run."""
from __future__ import annotations

from typing import Any

from pymodbus.constants import DeviceInformation

from otpatch.engine.errors import OtpatchError
from otpatch.modules.cip import objects
from otpatch.modules.cip.session import simulator_marker
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.driver import M580Driver

PROBE_TIMEOUT_S = 2.0
_SUFFIX = f"({objects.SIMULATOR_MARKER})"


def probe(host: Any) -> tuple[bool, str] | None:
    """None for a host that is not an M580 CPU or X80 adapter; else (answers as an otpatch
    simulator on every endpoint it has, what was seen)."""
    if H.device_kind(host) is None:
        return None
    driver = M580Driver(host, PROBE_TIMEOUT_S)
    checks = [check for name, check in (("modbus", _modbus), ("enip", _enip))
              if H.has_endpoint(host, name)]
    if not checks:
        return False, f"{host.name}: no modbus or enip endpoint in the inventory to ask"
    seen = []
    for check in checks:
        try:
            ok, detail = check(driver)
        except OtpatchError as e:  # unreachable, refused, malformed endpoint
            return False, f"{e} (within {PROBE_TIMEOUT_S:.0f} s; is `otpatch sim up` running?)"
        if not ok:
            return False, detail
        seen.append(detail)
    return True, "; ".join(seen)


def _modbus(driver: M580Driver) -> tuple[bool, str]:
    ident = driver.modbus_identity(DeviceInformation.EXTENDED)
    where = "{}:{}".format(*H.endpoint(driver.host, "modbus"))
    said = f"{ident.vendor!r} {ident.product_code!r} {ident.revision!r} {ident.product_name!r}"
    if ident.objects.get(0x80) == objects.SIMULATOR_MARKER and ident.product_name.endswith(_SUFFIX):
        return True, f"{driver.host.name}: Modbus {where} answers as an otpatch simulator"
    return False, (f"{driver.host.name}: Modbus {where} answers FC 43 as {said}: not an "
                   "otpatch simulator")


def _enip(driver: M580Driver) -> tuple[bool, str]:
    where = "{}:{}".format(*H.endpoint(driver.host, "enip"))
    with driver.cip() as session:
        ident = session.identity()
        marker = simulator_marker(session)
    if ident.product_name.endswith(_SUFFIX) and marker == objects.SIMULATOR_MARKER:
        return True, f"{driver.host.name}: EtherNet/IP {where} answers as an otpatch simulator"
    return False, (f"{driver.host.name}: EtherNet/IP {where} answers as {ident.vendor} "
                   f"{ident.product_name!r}: not an otpatch simulator")
