"""`otpatch sim up`: the lab's simulators in the foreground, where their syslog goes, and
what a run against them must be told."""
from __future__ import annotations

import faulthandler
import ipaddress
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otpatch.modules.contract.errors import InputError

# The UDP port the lab's firewall simulators send syslog to when neither --syslog nor a
# loopback SIEM says otherwise: in the lab's port block (inventory/lab.yml), outside the
# ephemeral range. Nothing listens there but a run's syslog.continuity step.
LAB_SYSLOG_PORT = 15090


@dataclass(frozen=True)
class SyslogTarget:
    """Where the simulated firewalls send syslog, and why there (printed for the user)."""

    host: str
    port: int
    source: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def run_params(self) -> str:
        """The -e params a run's syslog.continuity steps need to listen where this is."""
        return f"-e syslog_port={self.port} -e syslog_bind={self.host}"


def parse_syslog(value: str) -> SyslogTarget:
    """--syslog HOST:PORT: a loopback address (the simulators send from 127.0.0.1)."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InputError(f"--syslog {value!r}: give HOST:PORT, e.g. 127.0.0.1:{LAB_SYSLOG_PORT}")
    if not _loopback(host):
        raise InputError(f"--syslog {value!r}: the simulators send from 127.0.0.1, so the "
                         "receiver must be on a loopback address too")
    return SyslogTarget(host, int(port), "--syslog")


def syslog_target(given: str | None, inventory: Any, free_ports: bool) -> SyslogTarget:
    """--syslog if given; else the inventory's SIEM (all.vars.siem) when it is on loopback;
    else the lab's syslog port, or with free_ports one the system says is free now."""
    if given:
        return parse_syslog(given)
    siem = inventory.siem
    if siem is not None and _loopback(siem.host):
        return SyslogTarget(siem.host, siem.port, "the inventory's all.vars.siem")
    if free_ports:
        return SyslogTarget("127.0.0.1", _free_udp_port(), "a free port")
    return SyslogTarget("127.0.0.1", LAB_SYSLOG_PORT, "the lab's syslog port")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(args: Any, home: Path, stop: threading.Event, stop_words: str) -> None:
    """Start the lab, say what runs where (and what was skipped), serve until `stop`."""
    from otpatch.engine.inventory import load_inventory
    from otpatch.engine.simlab import start_lab

    if args.write_inventory and not args.free_ports:
        raise InputError("--write-inventory needs --free-ports (with the inventory's own "
                         "ports, use the inventory itself)")
    inventory = load_inventory(args.inventory)
    syslog = syslog_target(args.syslog, inventory, args.free_ports)
    written = None
    if args.free_ports:
        written = Path(args.write_inventory or home / "sim-up" / Path(args.inventory).name)
    with start_lab(args.inventory, args.fault, time_scale=args.time_scale,
                   ephemeral=args.free_ports, inventory_to=written,
                   syslog_to=str(syslog)) as lab:
        print("\n".join(_report(args, inventory, lab, syslog, written, stop_words)),
              flush=True)
        # a timed wait: a signal the OS hands to another thread (a simulator's) only sets
        # Python's flag, and the main thread runs the handler once it wakes
        while not stop.wait(0.2):
            pass
        # stopping takes a moment: past 10 s, every thread's stack goes to stderr (what
        # holds the stop), so a hang says where it hangs
        faulthandler.dump_traceback_later(10.0, exit=False)
    faulthandler.cancel_dump_traceback_later()


def _report(args: Any, inventory: Any, lab: Any, syslog: SyslogTarget, written: Path | None,
             stop_words: str) -> list[str]:
    lines = []
    for host in lab.hosts:
        ends = ", ".join(f"{k} {v}" for k, v in sorted(lab.endpoints(host).items()))
        lines.append(f"{host}: {ends}")
    for name in lab.skipped:
        host = inventory.hosts[name]
        kind = " ".join(str(v) for v in (host.vendor, host.model) if v) or "not given"
        lines.append(f"{name}: skipped: no simulator for its kind ({kind})")
    run_with = written or Path(args.inventory)
    if written:
        lines.append(f"inventory with these ports: {written}")
    lines.append(f"syslog: the firewall simulators send to udp {syslog} ({syslog.source}); "
                 "a run's syslog.continuity steps listen there:")
    lines.append(f"  otpatch run PLAYBOOK -i {run_with} --dry-run {syslog.run_params()}")
    faults = ", ".join(args.fault) or "none"
    lines.append(f"simulators up (faults: {faults}); {stop_words} stops them")
    return lines
