"""core.attest: a named human confirmation ("PID loops stable"), recording who and when."""
from __future__ import annotations

from otpatch.modules.base import Module, Result


class Attest(Module):
    name = "core.attest"
    doc = ("Ask a person to confirm a statement they checked by eye (RUN LED solid green, PID "
           "loops stable). Execute mode asks at the terminal; a dry run takes the recorded "
           "simulation answer (`simulated_answer`, default yes), marked simulated.")
    args_schema = {
        "type": "object",
        "properties": {
            "statement": {"type": "string", "minLength": 1},
            "role": {"type": "string", "minLength": 1},
            "simulated_answer": {"type": "boolean"},
        },
        "required": ["statement"],
        "additionalProperties": False,
    }

    def run(self, args, ctx) -> Result:
        att = ctx.attest(args["statement"], args.get("role"),
                         bool(args.get("simulated_answer", True)))
        record = {"statement": att.statement, "confirmed": att.confirmed, "who": att.who,
                  "at": att.at, "simulated": att.simulated}
        if att.note:
            record["note"] = att.note
        sim = " (simulated)" if att.simulated else ""
        if not att.confirmed:
            return Result(failed=True, msg=f"not confirmed by {att.who}{sim}: {att.statement}",
                          facts={"attestation": record})
        return Result(msg=f"confirmed by {att.who}{sim}: {att.statement}",
                      facts={"attestation": record})
