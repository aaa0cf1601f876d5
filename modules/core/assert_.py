"""core.assert: every `that:` expression over facts, params and registered results holds."""
from __future__ import annotations

from otpatch.modules.contract.errors import ExpressionError
from otpatch.modules.contract.module import Module, Result


class Assert(Module):
    name = "core.assert"
    reaches_device = False  # no device: facts, expressions, time or a person
    replayable = True  # pure: facts and expressions only
    doc = ("Check conditions, Ansible-style: `that` is one expression or a list, each over "
           "facts, params and registered results; fails with fail_msg on the first false one.")
    raw_args = frozenset({"that"})  # expressions, evaluated here, not rendered beforehand
    args_schema = {
        "type": "object",
        "properties": {
            "that": {"oneOf": [{"type": "string", "minLength": 1},
                               {"type": "array", "items": {"type": "string", "minLength": 1},
                                "minItems": 1}]},
            "fail_msg": {"type": "string"},
            "success_msg": {"type": "string"},
        },
        "required": ["that"],
        "additionalProperties": False,
    }

    def run(self, args, ctx) -> Result:
        conditions = [args["that"]] if isinstance(args["that"], str) else list(args["that"])
        for condition in conditions:
            try:
                holds = bool(ctx.evaluate(condition))
            except ExpressionError as e:
                return Result(failed=True, msg=f"assertion {condition!r} cannot be evaluated: {e}")
            if not holds:
                msg = args.get("fail_msg") or f"assertion failed: {condition}"
                return Result(failed=True, msg=msg, facts={})
        return Result(msg=args.get("success_msg") or f"{len(conditions)} assertion(s) hold")
