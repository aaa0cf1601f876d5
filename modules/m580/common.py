"""What the M580 modules share: one CPU per step, argument fragments, waiting on the device."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from otpatch.modules.contract.errors import ModuleFailed
from otpatch.modules.contract.durations import format_duration, parse_duration
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.driver import M580Driver
from otpatch.modules.polling import poll_until
from otpatch.modules.schema_defs import DURATION, TARGET

T = TypeVar("T")


def duration_arg(default: str, what: str) -> dict:
    return {**DURATION, "description": f"{what} (default {default})", "default": default}


def schema(required: tuple[str, ...] = ("target",), **properties: Any) -> dict:
    return {"type": "object", "properties": {"target": TARGET, **properties},
            "required": list(required), "additionalProperties": False}


def one_host(ctx: Any, target: str, module: str, kinds: tuple[str, ...] = (H.CPU,)) -> Any:
    """The single host of `target`, checked to be an M580 CPU (or one of `kinds`)."""
    hosts = ctx.hosts(target)
    if len(hosts) != 1:
        raise ModuleFailed(f"{module} acts on one device; target {target!r} has {len(hosts)}")
    host = hosts[0]
    if H.device_kind(host) not in kinds:
        what = " or ".join({H.CPU: "an M580 CPU", H.ADAPTER: "an X80 EIO adapter"}[k]
                           for k in kinds)
        raise ModuleFailed(f"{module}: {host.name} is not {what} (otpatch_device "
                           f"{host.device or 'unknown'}, model {host.model!r}, part number "
                           f"{host.part_number!r})")
    return host


def driver(ctx: Any, args: dict, module: str, kinds: tuple[str, ...] = (H.CPU,)) -> M580Driver:
    """The step's driver: asks at most once whether the host answers as a simulator."""
    return M580Driver(one_host(ctx, args["target"], module, kinds), purpose=module)


def seconds(args: dict, name: str, schema_: dict) -> float:
    return parse_duration(args.get(name, schema_["properties"][name]["default"]))


def wait_for(ctx: Any, drv: M580Driver, check: Callable[[], T | None], timeout: float,
             interval: float) -> tuple[T | None, float]:
    """poll_until on the run's clock; in a dry run the simulator's clock advances with it."""
    return poll_until(ctx, check, timeout=timeout, interval=interval,
                      advance=drv.advance_sim_clock)


def took(waited: float, ctx: Any) -> str:
    return f"{format_duration(waited)}{' simulated' if ctx.clock.simulated else ''}"
