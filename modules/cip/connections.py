"""cip.connections: EtherNet/IP implicit I/O to every remote I/O adapter at the configured
RPI, with no connection timeout across a soak (the article's step 4, and the rollback check
"EtherNet/IP connectivity to the X80 EIO drop adapter re-verified")."""
from __future__ import annotations

from typing import Any

from otpatch.modules.contract.errors import DeviceUnreachable, ModuleFailed
from otpatch.modules.contract.durations import format_duration, parse_duration
from otpatch.modules.contract.module import Module, Result
from otpatch.modules.cip import objects
from otpatch.modules.cip.session import CipSession
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.driver import M580Driver
from otpatch.modules.polling import poll_until
from otpatch.modules.schema_defs import DURATION, TARGET

TIMEOUT_S = 2.0
DIAGNOSTICS = ("cip.connections reads the I/O connection diagnostics object (CIP class "
               "0x352), which is the otpatch simulator's own: no public source gives a real "
               "X80 adapter's class and layout; on a real drop read the connection health in "
               "EcoStruxure Control Expert (the CPU owns the adapters' I/O connections)")


class AdapterLink:
    """One adapter's view of the implicit connection from its CPU (class 0x352, instance 1:
    the simulator's object, see cip/objects.py; a real adapter's diagnostics are read here
    once their documented class and layout are put there). Until then only a host that
    answers as an otpatch simulator is read (asked once, by its identity: simidentity.py);
    anything else is refused, "not available on a real device"."""

    def __init__(self, host: Any, timeout: float = TIMEOUT_S):
        address, port = H.endpoint(host, "enip")
        self.host, self.address, self.timeout = host, f"{address}:{port}", timeout
        self.device = M580Driver(host, timeout, purpose="cip.connections")

    def _session(self) -> CipSession:
        return CipSession(self.address, self.host.name, self.timeout)

    def require_simulator(self) -> None:
        self.device.simulator_check.require(DIAGNOSTICS)

    def read(self) -> objects.IoConnectionDiagnostics:
        self.require_simulator()
        with self._session() as s:
            raw = s.get_all(objects.IO_CONNECTION_DIAGNOSTICS,
                            what=f"{self.host.name}: I/O connection diagnostics")
        return objects.IoConnectionDiagnostics.decode(raw)

    def advance_sim_clock(self, seconds: float) -> None:
        self.device.advance_sim_clock(seconds)


def _trouble(name: str, now: objects.IoConnectionDiagnostics,
             base: objects.IoConnectionDiagnostics, rpi_us: int) -> str | None:
    if not now.established:
        return f"{name}: I/O connection not established"
    if (now.rpi_ot_us, now.rpi_to_us) != (rpi_us, rpi_us):
        return (f"{name}: RPI {now.rpi_ot_us / 1000:g}/{now.rpi_to_us / 1000:g} ms "
                f"(O->T/T->O), expected {rpi_us / 1000:g} ms")
    if now.timeouts > base.timeouts:
        return f"{name}: {now.timeouts - base.timeouts} connection timeout(s)"
    return None


class Connections(Module):
    name = "cip.connections"
    doc = ("Verify EtherNet/IP CIP implicit messaging to every remote I/O adapter of the "
           "target (`many: true`): connection established at the configured RPI (default "
           "10 ms) and no connection timeout across the soak (the article: a 4-hour I/O cycle "
           "test; simulated in a dry run). Fails naming each adapter in trouble. Facts: "
           "adapters {name: {rpi_ms, timeouts, timeouts_total, connected}}, soak_s. Reads the "
           "simulator's diagnostics object: refused on a real adapter (no public source for "
           "its class and layout).")
    args_schema = {
        "type": "object",
        "properties": {
            "target": TARGET,
            "rpi_ms": {"type": "number", "exclusiveMinimum": 0, "default": 10},
            "soak": {**DURATION, "default": 0,
                     "description": "how long to watch for timeouts (e.g. 4h); 0: one look"},
            "interval": {**DURATION, "default": "1m", "description": "how often to look"},
        },
        "required": ["target"],
        "additionalProperties": False,
    }

    def run(self, args, ctx) -> Result:
        links = [self._link(h) for h in ctx.hosts(args["target"])]
        for link in links:  # every adapter confirmed before any is read
            link.require_simulator()
        rpi_us = round(float(args.get("rpi_ms", 10)) * 1000)
        base = {link.host.name: link.read() for link in links}
        latest = dict(base)

        def trouble() -> list[str] | None:
            found = []
            for link in links:
                try:
                    latest[link.host.name] = link.read()
                except DeviceUnreachable as e:
                    found.append(f"{link.host.name}: no answer ({e})")
                    continue
                found.append(_trouble(link.host.name, latest[link.host.name],
                                      base[link.host.name], rpi_us))
            return [f for f in found if f] or None

        soak = parse_duration(args.get("soak", 0))
        problems, waited = poll_until(
            ctx, trouble, timeout=soak, interval=parse_duration(args.get("interval", "1m")),
            advance=lambda s: [link.advance_sim_clock(s) for link in links])
        return _result(latest, base, rpi_us, problems, waited, ctx)

    def _link(self, host: Any) -> AdapterLink:
        if H.device_kind(host) != H.ADAPTER:
            raise ModuleFailed(f"{self.name}: {host.name} is not a remote I/O adapter "
                               f"(otpatch_device {host.device or 'unknown'}, model "
                               f"{host.model!r}, part number {host.part_number!r})")
        return AdapterLink(host)


def _result(latest, base, rpi_us, problems, waited, ctx) -> Result:
    facts = {"soak_s": waited, "adapters": {
        name: {"rpi_ms": d.rpi_ot_us / 1000, "connected": d.established,
               "timeouts": d.timeouts - base[name].timeouts, "timeouts_total": d.timeouts}
        for name, d in latest.items()}}
    how = f"{format_duration(waited)}{' simulated' if ctx.clock.simulated else ''}"
    if problems:
        return Result(failed=True, facts=facts,
                      msg=f"after {how}: " + "; ".join(problems))
    return Result(facts=facts, msg=(f"{len(latest)} adapter(s) connected at RPI "
                                    f"{rpi_us / 1000:g} ms, no connection timeout in {how}"))
