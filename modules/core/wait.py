"""core.wait: let time pass (a soak, a settle time); virtual in a dry run."""
from __future__ import annotations

from otpatch.modules.contract.durations import format_duration, parse_duration
from otpatch.modules.contract.module import Module, Result
from otpatch.modules.schema_defs import DURATION


class Wait(Module):
    name = "core.wait"
    reaches_device = False  # no device: facts, expressions, time or a person
    doc = "Wait for a duration (e.g. 4h soak, 60s settle). A dry run advances simulated time."
    args_schema = {
        "type": "object",
        "properties": {"duration": DURATION, "reason": {"type": "string"}},
        "required": ["duration"],
        "additionalProperties": False,
    }

    def run(self, args, ctx) -> Result:
        seconds = parse_duration(args["duration"])
        ctx.clock.sleep(seconds)
        how = "simulated" if ctx.clock.simulated else "waited"
        reason = f" ({args['reason']})" if args.get("reason") else ""
        return Result(msg=f"{how} {format_duration(seconds)}{reason}",
                      facts={"waited_s": seconds})
