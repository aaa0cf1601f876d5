"""Which inventory hosts are M580 CPUs or X80 EIO adapters, and where they answer."""
from __future__ import annotations

from typing import Any

from otpatch.modules.contract.errors import InputError

CPU, ADAPTER = "cpu", "adapter"
_CPU_PARTS = ("BMEP58", "BMEH58")  # M580 CPUs, hot standby included
_ADAPTER_PARTS = ("BMECRA", "BMXCRA")  # X80 EIO drop adapters


def device_kind(host: Any) -> str | None:
    """"cpu", "adapter", or None for a host that is neither (an mGuard, a switch)."""
    part = (host.part_number or "").upper().replace(" ", "")
    model = (host.model or "").upper()
    if part.startswith(_CPU_PARTS) or "M580" in model:
        return CPU
    if part.startswith(_ADAPTER_PARTS) or "X80" in model:
        return ADAPTER
    return None


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
