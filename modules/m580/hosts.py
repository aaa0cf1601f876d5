"""Which inventory hosts are M580 CPUs or X80 EIO adapters, and where they answer."""
from __future__ import annotations

from typing import Any

from otpatch.modules.contract.devices import M580, X80
from otpatch.modules.contract.errors import InputError

CPU, ADAPTER = M580, X80  # the kinds the M580 modules and simulators act on


def device_kind(host: Any) -> str | None:
    """"m580" (a CPU), "x80" (an EIO adapter), or None for a host that is neither (an
    mGuard, a NOC, a switch): the host's `otpatch_device`, or what the loader inferred for
    an inventory without one. Never guessed here from the model text."""
    kind = getattr(host, "device", None)
    return kind if kind in (CPU, ADAPTER) else None


def endpoint(host: Any, name: str) -> tuple[str, int]:
    """(address, port) of the host's endpoint `name` ("modbus", "enip"); InputError if the
    inventory gives none or a malformed one."""
    text = (host.endpoints or {}).get(name)
    if not text:
        given = ", ".join(sorted(host.endpoints or {})) or "none"
        raise InputError(f"{host.name}: no `{name}` endpoint in the inventory (has: {given})")
    address, sep, port = str(text).rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not address:
        raise InputError(f"{host.name}: endpoint {name}={text!r} is not host:port")
    return address, int(port)


def has_endpoint(host: Any, name: str) -> bool:
    return bool((host.endpoints or {}).get(name))
