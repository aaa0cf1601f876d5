"""syslog.continuity: the firewall's syslog still reaches the SIEM (UDP 514, VLAN 30), before
and after a change ("confirm syslog continuity as part of post-patch validation")."""
from __future__ import annotations

import contextlib
import socket
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from otpatch.modules.contract.durations import format_duration, parse_duration
from otpatch.modules.contract.module import Module, Result
from otpatch.modules.polling import poll_until
from otpatch.modules.schema_defs import DURATION, LABEL, TARGET
from otpatch.modules.syslog.receiver import ListenFailed, Message, SyslogReceiver

DRY_RUN_GRACE_S = 0.01  # real seconds to let a simulator's datagrams land after an advance
TEXT_LIMIT = 300


class Continuity(Module):
    name = "syslog.continuity"
    # It listens and sends nothing to a device: on a real plant the firewall's own syslog
    # (UDP, RFC 5426) is what it counts. It reaches the device's traffic, so the host's
    # stage still applies (a production firewall is heard only from a production state).
    real_device = "sourced"
    sources = (
        "RFC 5426, Transmission of Syslog Messages over UDP (UDP port 514, one message per "
        "datagram), https://www.rfc-editor.org/rfc/rfc5426",
        "RFC 5424, The Syslog Protocol, https://www.rfc-editor.org/rfc/rfc5424",
        "RFC 3164, The BSD syslog Protocol (the older format many devices send), "
        "https://www.rfc-editor.org/rfc/rfc3164")
    doc = ("Listen on a UDP port (514 in production; `bind` defaults to 0.0.0.0) for `window` "
           "(default 60s) and require at least `min_messages` (default 1) syslog messages "
           "from each host of `from_host`, recognised by source address (`source`, else the "
           "host's `syslog_source` variable, else its endpoint address). A dry run passes "
           "the window in simulated time and lets the simulators send their periodic "
           "messages; the datagrams are real. Facts syslog.<label>: count, first and last "
           "message, source address.")
    args_schema = {
        "type": "object",
        "properties": {
            "from_host": TARGET,
            "port": {"type": "integer", "minimum": 0, "maximum": 65535},
            "bind": {"type": "string", "minLength": 1},
            "window": DURATION,
            "min_messages": {"type": "integer", "minimum": 1},
            "source": {"type": "string", "minLength": 1},
            "label": LABEL,
        },
        "required": ["from_host"],
        "additionalProperties": False,
    }

    def run(self, args, ctx) -> Result:
        hosts = ctx.hosts(args["from_host"])
        sources = {h.name: _address(args.get("source") or _source_of(h)) for h in hosts}
        window = parse_duration(args.get("window", "60s"))
        try:
            messages = _listen(ctx, args.get("bind", "0.0.0.0"), args.get("port", 514),
                               window, hosts)
        except ListenFailed as e:
            return Result(failed=True, msg=str(e))
        results = {h.name: _judge(args, ctx, window, sources[h.name], messages) for h in hosts}
        if len(results) == 1:
            return next(iter(results.values()))
        return Result(failed=any(r.failed for r in results.values()),
                      msg="; ".join(f"{n}: {r.msg}" for n, r in results.items()),
                      facts={"hosts": {n: dict(r.facts) for n, r in results.items()}})


def _listen(ctx: Any, bind: str, port: int, window: float, hosts: tuple[Any, ...]
            ) -> list[Message]:
    """Every datagram that arrives during the window (run clock; simulated in a dry run)."""
    collected: list[Message] = []
    grace = DRY_RUN_GRACE_S if ctx.dry_run else 0.0
    with SyslogReceiver(bind, port, ctx.clock.now) as rx, _advancers(ctx, hosts) as advance:
        def listen() -> None:
            collected.extend(rx.drain(grace))
            return None

        poll_until(ctx, listen, timeout=window, interval=min(5.0, max(window / 10, 0.01)),
                   advance=advance)
        collected.extend(rx.drain(grace))
    return collected


@contextlib.contextmanager
def _advancers(ctx: Any, hosts: tuple[Any, ...]):
    """In a dry run: one callable passing simulated time on every simulator among `hosts`
    (those that answer as one: the dry run checked that before starting)."""
    if not ctx.dry_run:
        yield None
        return
    from otpatch.modules.mguard.driver import MguardDriver
    from otpatch.modules.mguard.lab import is_mguard

    with contextlib.ExitStack() as stack:
        drivers = [stack.enter_context(MguardDriver(h)) for h in hosts if is_mguard(h)]
        yield _advance_all(drivers)


def _advance_all(drivers: list[Any]) -> Callable[[float], None]:
    def advance(seconds: float) -> None:
        for driver in drivers:
            driver.advance_sim_clock(seconds)
    return advance


def _judge(args: Mapping[str, Any], ctx: Any, window: float, source: str,
           messages: list[Message]) -> Result:
    mine = [m for m in messages if m.source == source]
    others: dict[str, int] = {}
    for m in messages:
        if m.source != source:
            others[m.source] = others.get(m.source, 0) + 1
    needed, port = args.get("min_messages", 1), args.get("port", 514)
    how = f"{format_duration(window)}{' simulated' if ctx.clock.simulated else ''}"
    facts = {"count": len(mine), "source": source, "port": port, "window_s": window,
             "min_messages": needed, "first": _brief(mine[0]) if mine else None,
             "last": _brief(mine[-1]) if mine else None, "other_sources": others}
    wrapped = {"syslog": {args.get("label", "check"): facts}}
    also = f"; {sum(others.values())} from other addresses {sorted(others)}" if others else ""
    if len(mine) < needed:
        return Result(failed=True, facts=wrapped,
                      msg=f"syslog from {source}: {len(mine)} message(s) on udp/{port} in "
                          f"{how}, expected at least {needed}{also}")
    return Result(facts=wrapped, msg=f"syslog from {source}: {len(mine)} message(s) on "
                                     f"udp/{port} in {how}{also}")


def _brief(m: Message) -> dict[str, str]:
    at = datetime.fromtimestamp(m.at, timezone.utc).isoformat(timespec="seconds")
    return {"at": at, "text": m.text[:TEXT_LIMIT]}


def _source_of(host: Any) -> str:
    """Where a host's syslog comes from: `syslog_source`, else its first endpoint's address."""
    if host.vars.get("syslog_source"):
        return str(host.vars["syslog_source"])
    for endpoint in (host.endpoints or {}).values():
        text = str(endpoint).split("://", 1)[-1].rstrip("/")
        if text.startswith("["):  # [v6 address]:port
            return text[1:].split("]", 1)[0]
        return text.rsplit(":", 1)[0] if text.count(":") == 1 else text
    return host.name


def _address(name: str) -> str:
    try:
        return socket.getaddrinfo(name, None)[0][4][0]
    except (socket.gaierror, UnicodeError):
        return name
