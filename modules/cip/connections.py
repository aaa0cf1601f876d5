"""cip.connections: the CPU's class-1 I/O connections to every remote I/O adapter held in run
mode with no connection timeout across a span (the article's step 4, "RPI 10 ms with no
connection-timeout alarms", and the rollback check "EtherNet/IP connectivity to the X80 EIO
drop adapter re-verified"), read through public CIP only; it opens no connection."""
from __future__ import annotations

import time
from typing import Any

from otpatch.modules.contract.attest import attested
from otpatch.modules.contract.durations import format_duration, parse_duration
from otpatch.modules.contract.errors import ModuleFailed
from otpatch.modules.contract.module import Module, Result
from otpatch.modules.cip import drophealth as D
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.driver import CIP_IDENTITY_SOURCE, ENIP_SOURCE
from otpatch.modules.schema_defs import DURATION, TARGET

# A rehearsal's clock is simulated while the simulators' I/O traffic runs on the wall clock:
# the check also waits this much real time (a few 40 ms connection timeouts, x4 at 10 ms)
# before its last read, so traffic is really observed (a scanner that stopped is caught).
REHEARSAL_WALL_FLOOR_S = 0.3
RPI_NOTE = "as configured (a public read does not show the RPI)"
# Where an adapter does not answer the Connection Manager counters (they are optional), the
# drop's health is what the CPU's scanner saw. Searched for a public way to read that (the
# CPU's %S/%SW system words and drop health bits, its DDDT, an EIO scanner CIP object):
# Schneider's Control Expert help documents an "IO Connection Diagnostics" object, class
# 0x352, on the M580 CPU (instances 257-643) and the RIO modules (instances 1-256), whose
# instance number is the connection ID that the Control Expert DTM Device List assigns;
# nothing public gives those IDs from outside the site's project, so otpatch does not read
# it. A person reads Control Expert's diagnostics instead, and attests (role `role`).
ATTESTATION = ("{host}: Control Expert's diagnostics show no connection timeout for this "
               "drop over {span}")


class Connections(Module):
    name = "cip.connections"
    real_device = "sourced"
    sources = (
        "ODVA, The CIP Networks Library Volume 1, section 3-4.1 Connection Manager object "
        "(class 0x06, instance 1), attributes 1 Open Requests ... 8 Connection Timeouts "
        "(UINT), read with Get_Attribute_Single (0x0E), https://www.odva.org/",
        "Wireshark, epan/dissectors/packet-cip.c: the Connection Manager attributes 1-8 by "
        "name and type, https://gitlab.com/wireshark/wireshark/-/blob/master/epan/"
        "dissectors/packet-cip.c",
        CIP_IDENTITY_SOURCE, ENIP_SOURCE,
        "Schneider Electric, EcoStruxure Control Expert help, M580 hardware: IO Connection "
        "Diagnostics object (class 0x352), why it is not read: its instances are the site's "
        "connection IDs (DTM Device List)")
    doc = ("Verify the CPU's EtherNet/IP class-1 I/O connections to every remote I/O adapter "
           "of the target (`many: true`) through public CIP reads only (it opens no "
           "connection): the adapter's Connection Manager counters (class 0x06, attributes "
           "1-8: Open Requests ... Connection Timeouts) and its Identity status (extended "
           "device status, e.g. 'at least one I/O connection in run mode'). With `soak: 4h` "
           "it reads, waits the soak (simulated in a dry run) and reads again; with `since: "
           "CHECKPOINT` it compares with the counters this step recorded before that "
           "checkpoint; with neither it watches for `observe` (default 10s). A dry run also "
           "waits 0.3 s of real time, so the simulators' I/O traffic is really observed. "
           "Fails naming each adapter whose Connection Timeouts rose, whose I/O is not in "
           "run mode, or whose counters went back. An adapter that does not answer the "
           "counters (they are optional) is confirmed by a person holding `role` from "
           "Control Expert's diagnostics instead. `rpi_ms` is recorded as configured: a "
           "public read does not show the RPI. Facts per adapter: connection_manager "
           "{open_requests, ..., connection_timeouts}, io_status, identity_status, read_at, "
           "evidence (connection_manager | attestation), connection_timeouts_in_span, span, "
           "rpi_ms_configured.")
    args_schema = {
        "type": "object",
        "properties": {
            "target": TARGET,
            "rpi_ms": {"type": "number", "exclusiveMinimum": 0, "default": 10,
                       "description": "the RPI the drops are configured with (recorded)"},
            "soak": {**DURATION, "description": "read, wait this long (e.g. 4h), read again"},
            "since": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$",
                      "description": "compare with the counters recorded at this checkpoint"},
            "observe": {**DURATION, "default": "10s",
                        "description": "without soak or since: how long to watch"},
            "role": {"type": "string", "minLength": 1, "default": "operator",
                     "description": "who attests for an adapter without the counters"},
        },
        "required": ["target"],
        "not": {"required": ["soak", "since"]},
        "additionalProperties": False,
    }

    def run(self, args, ctx) -> Result:
        hosts = [self._adapter(h) for h in ctx.hosts(args["target"])]
        rpi = float(args.get("rpi_ms", 10))
        if args.get("since"):
            before, span = self._recorded(args, ctx, hosts), f"since checkpoint {args['since']}"
            over = f"the time since checkpoint {args['since']}"
        else:
            before = {h.name: D.read_drop(h, ctx.clock.now()).counters for h in hosts}
            wait = parse_duration(args["soak"] if "soak" in args else args.get("observe", "10s"))
            ctx.clock.sleep(wait)
            over = f"{format_duration(wait)}{' simulated' if ctx.clock.simulated else ''}"
            span = f"in {over}"
        if ctx.clock.simulated:
            time.sleep(REHEARSAL_WALL_FLOOR_S)
        after = [D.read_drop(h, ctx.clock.now()) for h in hosts]
        found, facts = [], {}
        for reading in after:
            trouble, facts[reading.host] = self._judge(before[reading.host], reading,
                                                       (span, over), args, ctx)
            found += trouble
        for fact in facts.values():
            fact["rpi_ms_configured"] = rpi
        if found:
            return Result(failed=True, facts=facts, msg="; ".join(found))
        return Result(facts=facts, msg=_passed(facts, span, rpi))

    def _adapter(self, host: Any) -> Any:
        if H.device_kind(host) != H.ADAPTER:
            raise ModuleFailed(f"{self.name}: {host.name} is not a remote I/O adapter "
                               f"(otpatch_device {host.device or 'unknown'}, model "
                               f"{host.model!r}, part number {host.part_number!r})")
        return host

    def _recorded(self, args, ctx, hosts) -> dict[str, Any]:
        """Each adapter's counters at the checkpoint named by `since`."""
        checkpoints = (getattr(ctx, "namespace", None) or {}).get("checkpoints") or {}
        name, target = args["since"], args["target"]
        if name not in checkpoints:
            known = ", ".join(sorted(checkpoints)) or "none yet"
            raise ModuleFailed(f"{self.name}: since: no checkpoint {name!r} in this run "
                               f"(recorded: {known})")
        out = {}
        for host in hosts:
            found = D.recorded(checkpoints, name, target, host.name)
            if found is None:
                raise ModuleFailed(f"{self.name}: checkpoint {name} holds no Connection "
                                   f"Manager reading of {host.name} under target {target}: "
                                   f"run cip.connections on {target} before it")
            out[host.name] = found[0]
        return out

    def _judge(self, before, reading: D.DropReading, spans: tuple[str, str], args, ctx
               ) -> tuple[list[str], dict[str, Any]]:
        """One adapter's problems and facts; an attestation where the counters are missing.
        `spans`: the span as a message says it ("in 4h"), and as the statement does."""
        span, over = spans
        trouble = D.problems(before, reading, span)
        fact: dict[str, Any] = {
            "connection_manager": reading.counters.fact() if reading.counters else None,
            "io_status": reading.status.io, "identity_status": reading.status.fact(),
            "read_at": reading.read_at, "span": span, "evidence": "connection_manager",
            "connection_timeouts_in_span": D.timeouts_in(before, reading.counters)}
        if before is None or reading.counters is None:
            fact["evidence"] = "attestation"
            fact["connection_manager_unanswered"] = reading.unanswered or (
                "no counters recorded at the start of the span")
            confirmed, said = attested(ctx, ATTESTATION.format(host=reading.host, span=over),
                                       args.get("role", "operator"))
            fact["attestation"] = said
            if not confirmed:
                trouble.append(f"{said['person']} ({said['role']}) answered no: "
                               f"{said['statement']}")
        return trouble, fact


def _passed(facts: dict[str, Any], span: str, rpi: float) -> str:
    attested = sorted(h for h, f in facts.items() if f["evidence"] == "attestation")
    how = "; ".join(part for part in (
        "Connection Manager counters" if len(attested) < len(facts) else "",
        f"attested for {', '.join(attested)}" if attested else "") if part)
    return (f"{len(facts)} adapter(s): no connection timeout {span} ({how}), I/O connection "
            f"in run mode; RPI {rpi:g} ms {RPI_NOTE}")
