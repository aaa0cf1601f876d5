"""What the mGuard modules share: a driver per target host, results over several hosts, and
the wait for a device to be ready (used after a reboot and by read-backs).

Every call the modules make is the otpatch simulator's own (driver.py): each target host is
confirmed to answer as a simulator before any of them is sent one, and a host that does not
makes the step fail, "not available on a real device: ...", its identity read the only
request it saw."""
from __future__ import annotations

import contextlib
from abc import abstractmethod
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping

from otpatch.modules.contract.errors import DeviceUnreachable
from otpatch.modules.contract.durations import format_duration, parse_duration
from otpatch.modules.contract.module import Module, ReadBack, Result
from otpatch.modules.mguard.driver import (AuthRefused, CertificateRefused, DeviceAnswer,
                                           MguardDriver)
from otpatch.modules.polling import poll_until
from otpatch.modules.schema_defs import TARGET
from otpatch.modules.simulator_only import NotOnRealDevice

READY_TIMEOUT = "10m"
POLL_INTERVAL = "5s"


def schema(properties: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An argument schema with `target` (required) and the given properties."""
    return {"type": "object", "properties": {"target": TARGET, **properties},
            "required": ["target", *required], "additionalProperties": False}


def duration_arg(args: Mapping[str, Any], name: str, default: str) -> float:
    return parse_duration(args.get(name, default))


class HostModule(Module):
    """An mGuard module that acts on each host of its `target`, through one driver each."""

    def run(self, args: Mapping[str, Any], ctx: Any) -> Result:
        return over_hosts(ctx, args["target"],
                          lambda host, driver: self.on_host(args, ctx, host, driver),
                          purpose=self.name)

    @abstractmethod
    def on_host(self, args: Mapping[str, Any], ctx: Any, host: Any,
                driver: MguardDriver) -> Result:
        """The module's work on one host."""

    def advance_sim_clock(self, args: Mapping[str, Any], ctx: Any, seconds: float) -> None:
        """Every simulator of the target passes `seconds` (a read-back still moving)."""
        with confirmed_drivers(ctx, args["target"], self.name) as drivers:
            for driver in drivers:
                driver.advance_sim_clock(seconds)


@contextlib.contextmanager
def confirmed_drivers(ctx: Any, target: str, purpose: str) -> Iterator[list[MguardDriver]]:
    """A driver for each host of the target, every host confirmed to answer as an otpatch
    simulator before any is used (NotOnRealDevice otherwise). A host that does not answer
    yet (rebooting) is asked again before its first call."""
    with contextlib.ExitStack() as stack:
        drivers = [stack.enter_context(MguardDriver(host, purpose=purpose))
                   for host in ctx.hosts(target)]
        for driver in drivers:
            try:
                driver.require_simulator()
            except DeviceUnreachable:
                pass
        yield drivers


def over_hosts(ctx: Any, target: str, act: Callable[[Any, MguardDriver], Result],
               purpose: str = "this step") -> Result:
    """Run `act(host, driver)` for each host of the target; one host's result as it is,
    several hosts' results merged, their facts under `hosts: {name: facts}`."""
    with confirmed_drivers(ctx, target, purpose) as drivers:
        results = [(driver.host.name, act(driver.host, driver)) for driver in drivers]
    if not results:
        return Result(failed=True, msg=f"target {target} has no hosts")
    return merged(results)


def read_back_hosts(ctx: Any, target: str, check: Callable[[Any, MguardDriver], ReadBack],
                    purpose: str = "this read-back") -> ReadBack:
    """Read back every host of the target: applied when all show the change, not applied
    when none does, still moving while any host is mid-action (and none cannot tell), and
    for a mix (or a host that cannot tell, or one that is not a simulator) a human decides."""
    try:
        with confirmed_drivers(ctx, target, purpose) as drivers:
            checks = [(driver.host.name, check(driver.host, driver)) for driver in drivers]
    except NotOnRealDevice as e:
        return ReadBack(None, Result(failed=True, msg=str(e)))
    except (CertificateRefused, AuthRefused) as e:  # waiting fixes neither: a human decides
        return ReadBack(None, Result(failed=True, msg=f"cannot tell: {e}"))
    result = merged([(name, rb.result) for name, rb in checks])
    moving = [rb for _, rb in checks if rb.moving]
    if moving and all(rb.moving or rb.applied is not None for _, rb in checks):
        return ReadBack.still_moving(result, max(rb.timeout for rb in moving),
                                     min(rb.interval for rb in moving))
    states = {rb.applied for _, rb in checks}
    applied = states.pop() if len(states) == 1 else None
    return ReadBack(applied, result)


def merged(results: list[tuple[str, Result]]) -> Result:
    """One host's result as it is; several hosts' merged, facts under `hosts`."""
    if len(results) == 1:
        return results[0][1]
    return Result(changed=any(r.changed for _, r in results),
                  failed=any(r.failed for _, r in results),
                  unreachable=any(r.unreachable for _, r in results),
                  msg="; ".join(f"{name}: {r.msg}" for name, r in results),
                  facts={"hosts": {name: dict(r.facts) for name, r in results}})


def stamp(ctx: Any) -> str:
    """The run clock's now as 20261126T014500Z (virtual in a dry run), for file names."""
    return datetime.fromtimestamp(ctx.clock.now(), timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def how_long(ctx: Any, seconds: float) -> str:
    kind = "simulated " if ctx.clock.simulated else ""
    return f"{format_duration(seconds)} {kind}".strip()


class ReadyWait:
    """Poll a device until HTTPS answers and it reports `ready` (and, if asked, a version).

    A device that does not answer yet is waited for; a certificate or a login it refuses
    ends the wait at once (waiting does not fix either); a ready device with another
    firmware than expected is a failure, not a reason to wait longer."""

    def __init__(self, driver: MguardDriver, expect_version: str | None = None):
        self.driver, self.expect_version = driver, expect_version
        self.last = "no answer yet"
        self.answered = False

    def check(self) -> dict[str, str] | None:
        try:
            state = self.driver.state()
        except DeviceUnreachable as e:
            self.last = str(e)
            return None
        except DeviceAnswer as e:  # a web server still starting may answer errors
            self.answered, self.last = True, str(e)
            return None
        self.answered = True
        self.last = f"state {state.get('state')}, firmware {state.get('firmware')}"
        return state if state.get("state") == "ready" else None

    def run(self, ctx: Any, timeout: float, interval: float) -> tuple[dict | None, float]:
        """(ready state or None, time waited). Raises CertificateRefused / AuthRefused."""
        return poll_until(ctx, self.check, timeout=timeout, interval=interval,
                          advance=self.driver.advance_sim_clock)

    def wrong_version(self, state: Mapping[str, str]) -> str | None:
        if self.expect_version and state.get("firmware") != self.expect_version:
            return (f"ready, but reports firmware {state.get('firmware')}, expected "
                    f"{self.expect_version}")
        return None


def earlier_facts(ctx: Any, target: str, host_name: str) -> Mapping[str, Any]:
    """The facts earlier steps recorded for this target's host (facts are kept per target;
    a many-host target keeps them under `hosts`)."""
    scoped = (ctx.facts or {}).get(target) or {}
    if isinstance(scoped.get("hosts"), Mapping) and host_name in scoped["hosts"]:
        return scoped["hosts"][host_name]
    return scoped
