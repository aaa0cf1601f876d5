"""What the mGuard modules share: the hosts of a target split into simulators and real
devices, a driver per simulator, results over several hosts, and the wait for a simulated
device to be ready (used after a reboot and by read-backs).

On a host marked `simulator: true` every call is the otpatch simulator's own (driver.py):
each such host is confirmed to answer as a simulator before any of them is sent one, and a
host that does not makes the step fail, "not available on a real device: ...", its identity
read the only request it saw. A host marked `simulator: false` gets the module's guided path
(`on_real_host`: a person acts in the web UI, guided.py), in execute mode only: a dry run
rehearses on simulators and refuses it, nothing sent."""
from __future__ import annotations

import contextlib
from abc import abstractmethod
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping

from otpatch.modules.contract.errors import DeviceUnreachable, PersonNeeded
from otpatch.modules.contract.durations import format_duration, parse_duration
from otpatch.modules.contract.module import Module, ReadBack, Result
from otpatch.modules.mguard.driver import (SIMULATOR_CALLS, AuthRefused, CertificateRefused,
                                           DeviceAnswer, MguardDriver)
from otpatch.modules.polling import poll_until
from otpatch.modules.schema_defs import TARGET
from otpatch.modules.simulator_only import NotOnRealDevice

READY_TIMEOUT = "10m"
POLL_INTERVAL = "5s"
Act = Callable[[Any, MguardDriver], Result]
ActReal = Callable[[Any], Result]


def schema(properties: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An argument schema with `target` (required) and the given properties."""
    return {"type": "object", "properties": {"target": TARGET, **properties},
            "required": ["target", *required], "additionalProperties": False}


def duration_arg(args: Mapping[str, Any], name: str, default: str) -> float:
    return parse_duration(args.get(name, default))


class HostModule(Module):
    """An mGuard module that acts on each host of its `target`: through one driver each on
    a simulator, through `on_real_host` (a person, guided) on a real device."""

    def run(self, args: Mapping[str, Any], ctx: Any) -> Result:
        return over_hosts(ctx, args["target"],
                          lambda host, driver: self.on_host(args, ctx, host, driver),
                          purpose=self.name,
                          real=lambda host: self.on_real_host(args, ctx, host))

    @abstractmethod
    def on_host(self, args: Mapping[str, Any], ctx: Any, host: Any,
                driver: MguardDriver) -> Result:
        """The module's work on one simulator."""

    def on_real_host(self, args: Mapping[str, Any], ctx: Any, host: Any) -> Result:
        """The module's work on a real device (execute mode): refused unless overridden."""
        raise real_refusal(host, self.name)

    def advance_sim_clock(self, args: Mapping[str, Any], ctx: Any, seconds: float) -> None:
        """Every simulator of the target passes `seconds` (a read-back still moving)."""
        sims = [h for h in ctx.hosts(args["target"]) if h.simulator]
        with confirmed_drivers(ctx, sims, self.name) as drivers:
            for driver in drivers:
                driver.advance_sim_clock(seconds)


def real_refusal(host: Any, purpose: str, dry_run: bool = False) -> NotOnRealDevice:
    """The refusal of the simulator's interface on a host marked `simulator: false`."""
    why = ("; a dry run rehearses on simulators only (in execute mode this step guides a "
           "person through the device's web UI)" if dry_run else "")
    return NotOnRealDevice(f"{host.name}: {SIMULATOR_CALLS.format(purpose=purpose)}{why}; "
                           f"the inventory marks {host.name} `simulator: false`: nothing "
                           "was sent")


@contextlib.contextmanager
def confirmed_drivers(ctx: Any, hosts: Iterable[Any], purpose: str
                      ) -> Iterator[list[MguardDriver]]:
    """A driver for each of the hosts, every one confirmed to answer as an otpatch
    simulator before any is used (NotOnRealDevice otherwise). A host that does not answer
    yet (rebooting) is asked again before its first call."""
    with contextlib.ExitStack() as stack:
        drivers = [stack.enter_context(MguardDriver(host, purpose=purpose)) for host in hosts]
        for driver in drivers:
            try:
                driver.require_simulator()
            except DeviceUnreachable:
                pass
        yield drivers


def split_hosts(ctx: Any, target: str, purpose: str, guided: bool
                ) -> tuple[tuple[Any, ...], list[Any]]:
    """(all hosts of the target, those marked simulator); a real one is refused, before
    anything is sent to any host, in a dry run or by a module without a guided path."""
    hosts = ctx.hosts(target)
    real = [h for h in hosts if not h.simulator]
    if real and (ctx.dry_run or not guided):
        raise real_refusal(real[0], purpose, dry_run=ctx.dry_run)
    return hosts, [h for h in hosts if h.simulator]


def over_hosts(ctx: Any, target: str, act: Act, purpose: str = "this step",
               real: ActReal | None = None) -> Result:
    """Run `act(host, driver)` for each simulator of the target and `real(host)` for each
    real device; one host's result as it is, several hosts' results merged, their facts
    under `hosts: {name: facts}`."""
    hosts, sims = split_hosts(ctx, target, purpose, real is not None)
    with confirmed_drivers(ctx, sims, purpose) as drivers:
        by_name = {d.host.name: d for d in drivers}
        results = [(h.name, act(h, by_name[h.name]) if h.simulator else _guided(real, h))
                   for h in hosts]
    if not results:
        return Result(failed=True, msg=f"target {target} has no hosts")
    return merged(results)


def _guided(real: ActReal | None, host: Any) -> Result:
    """A real device's guided work; a person not there yet: awaiting (the run pauses, a
    resume runs the step again), so every host of the target says what it waits for."""
    assert real is not None
    try:
        return real(host)
    except PersonNeeded as e:
        return Result(awaiting=str(e), msg=str(e))


def read_back_hosts(ctx: Any, target: str, check: Callable[[Any, MguardDriver], ReadBack],
                    purpose: str = "this read-back",
                    real: Callable[[Any], ReadBack] | None = None) -> ReadBack:
    """Read back every host of the target: applied when all show the change, not applied
    when none does, still moving while any host is mid-action (and none cannot tell), and
    for a mix (or a host that cannot tell, or one that is refused) a human decides. A real
    device answers through `real(host)` (default: cannot tell)."""
    try:
        hosts, sims = split_hosts(ctx, target, purpose, guided=True)
        with confirmed_drivers(ctx, sims, purpose) as drivers:
            by_name = {d.host.name: d for d in drivers}
            checks = [(h.name, check(h, by_name[h.name]) if h.simulator
                       else (real or cannot_tell)(h)) for h in hosts]
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


def cannot_tell(host: Any) -> ReadBack:
    """A real device's read-back after a crash: no public interface reads it back
    unattended; a human decides (a fresh profile export shows what runs)."""
    return ReadBack(None, Result(failed=True, msg=(
        f"cannot tell: {host.name} is a real device, and no public interface reads the "
        "change back without a person; export its running profile in the web UI "
        "(Management >> Configuration Profiles) to see what it runs, then decide")))


def merged(results: list[tuple[str, Result]]) -> Result:
    """One host's result as it is; several hosts' merged, facts under `hosts`."""
    if len(results) == 1:
        return results[0][1]
    failed = any(r.failed for _, r in results)  # a failure is not waited out
    return Result(changed=any(r.changed for _, r in results), failed=failed,
                  unreachable=any(r.unreachable for _, r in results),
                  awaiting="" if failed else "; ".join(r.awaiting for _, r in results
                                                       if r.awaiting),
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
