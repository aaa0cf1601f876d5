"""The probe itself: one TCP connect per port, no retry, closed at once; and the policy that
decides whether a host may be probed at all.

A connect that completes the handshake and is closed sends no application byte: the device
sees a SYN, the ACK of its SYN-ACK and a FIN (RFC 9293, section 3.5). Still, fragile OT
devices have crashed under port scans, so otpatch probes a host only where the site allows
active checks: the host variable `otpatch_active_checks` (true | false), by default true on
lab and staging hosts and false on production ones. Ports go one at a time, never two
connections to one port, each bounded by `timeout`."""
from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

# the usual management ports of the seed's devices (domain notes: FTP, HTTP, HTTPS, Modbus
# TCP, EtherNet/IP explicit) and the endpoint name an inventory gives each
USUAL = {21: "ftp", 80: "http", 443: "https", 502: "modbus", 44818: "enip"}
OPEN, CLOSED, NO_ANSWER, NOT_MAPPED = "open", "closed", "no_answer", "not_mapped"
POLICY_VAR = "otpatch_active_checks"
SOURCES = (
    "RFC 9293, Transmission Control Protocol, section 3.5 (connection establishment: a "
    "connect is the three-way handshake, no data), https://www.rfc-editor.org/rfc/rfc9293",
)


@dataclass(frozen=True)
class PortState:
    port: int
    service: str
    state: str  # open | closed | no_answer | not_mapped
    at: str  # address:port connected to ("" when not mapped)

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "state": self.state, "at": self.at or None}


def allowed(host: Any) -> tuple[bool, str]:
    """Whether the site lets otpatch probe this host, and why (for the record)."""
    value = (host.vars or {}).get(POLICY_VAR)
    if isinstance(value, bool):
        return value, f"{POLICY_VAR}: {str(value).lower()} on {host.name}"
    stage = host.stage.value
    if stage == "production":
        return False, (f"{host.name} is a production host and the inventory does not set "
                       f"{POLICY_VAR}: true (active checks are off by default in production)")
    return True, f"{host.name} is a {stage} host (active checks are on by default there)"


def targets(host: Any, ports: Iterable[int]) -> list[tuple[int, str, str | None]]:
    """(port, service, address:port or None when not mapped) for each port: a simulator
    answers only at its inventory endpoints (loopback, its own ports), so a usual port it
    has no endpoint for is not mapped; a device is reached at its address, on the endpoint's
    port where the inventory gives one, else on the usual port."""
    endpoints = dict(host.endpoints or {})
    address = _address(host, endpoints)
    out = []
    for port in ports:
        service = USUAL.get(port, f"tcp/{port}")
        named = endpoints.get(service)
        if named:
            out.append((port, service, str(named)))
        elif host.simulator or address is None:
            out.append((port, service, None))
        else:
            out.append((port, service, f"{address}:{port}"))
    return out


def probe(host: Any, ports: Iterable[int], timeout: float) -> list[PortState]:
    """Each port's state, one connect each, in order."""
    return [PortState(port, service, _connect(at, timeout) if at else NOT_MAPPED, at or "")
            for port, service, at in targets(host, ports)]


def _address(host: Any, endpoints: Mapping[str, Any]) -> str | None:
    named = (host.vars or {}).get("ansible_host")
    if named:
        return str(named)
    for value in endpoints.values():
        address, _, _port = str(value).rpartition(":")
        if address:
            return address.strip("[]")
    return None


def _connect(at: str, timeout: float) -> str:
    address, _, port = at.rpartition(":")
    try:
        with socket.create_connection((address.strip("[]"), int(port)), timeout=timeout):
            return OPEN
    except ConnectionRefusedError:
        return CLOSED
    except (socket.timeout, TimeoutError):
        return NO_ANSWER
    except OSError as e:
        return CLOSED if e.errno in (errno.ECONNREFUSED, errno.ECONNRESET) else NO_ANSWER


def findings(now: Mapping[str, Mapping[str, Any]], before: Mapping[str, Mapping[str, Any]] | None,
             allowed_ports: Iterable[int] | None) -> list[str]:
    """What the post-change check reports about one host: a service the change turned on or
    off (against the as-found reading), and an open port the site policy does not allow."""
    out = []
    for port, state in sorted(now.items(), key=lambda kv: int(kv[0])):
        was = (before or {}).get(port, {}).get("state")
        name = f"TCP {port} ({state['service']})"
        if before is not None and state["state"] == OPEN and was in (CLOSED, NO_ANSWER):
            out.append(f"{name} open now, {was.replace('_', ' ')} as found: the change "
                       "turned a service on")
        if before is not None and was == OPEN and state["state"] in (CLOSED, NO_ANSWER):
            out.append(f"{name} {state['state'].replace('_', ' ')} now, open as found: the "
                       "change turned a service off")
    if allowed_ports is not None:
        allow = {int(p) for p in allowed_ports}
        out += [f"TCP {port} ({state['service']}) open, not among the services the site "
                f"policy allows ({', '.join(map(str, sorted(allow))) or 'none'})"
                for port, state in sorted(now.items(), key=lambda kv: int(kv[0]))
                if state["state"] == OPEN and int(port) not in allow]
    return out
