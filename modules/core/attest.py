"""core.attest: a named human confirmation ("PID loops stable") by a person holding a role."""
from __future__ import annotations

from otpatch.modules.contract.module import Module, Result


class Attest(Module):
    name = "core.attest"
    reaches_device = False  # no device: facts, expressions, time or a person
    doc = ("Ask a person holding `role` to confirm a statement they checked by eye (RUN LED "
           "solid green, PID loops stable). Execute mode lists the inventory's approvers who "
           "hold the role; the person picks their number (or types their name) and answers "
           "yes or no. A name that does not hold the role cannot attest: it is refused and "
           "asked again, and after three the run pauses for the right person. A 'no' fails "
           "the step; a role no approver holds fails it in every mode. With no terminal to "
           "ask at, the run pauses, awaiting 'a person at a terminal', and `otpatch resume` asks "
           "again. A dry run takes the recorded simulation answer (`simulated_answer`, "
           "default yes), marked simulated. The journal records person, role, host, "
           "terminal, time, statement and answer. Instead of a terminal, the person may sign "
           "an attestation file for the waiting step (`otpatch attest RUN_ID --role ROLE "
           "--key KEYFILE`): the resumed step takes it, and the record says so.")
    args_schema = {
        "type": "object",
        "properties": {
            "statement": {"type": "string", "minLength": 1},
            "role": {"type": "string", "minLength": 1},
            "simulated_answer": {"type": "boolean"},
        },
        "required": ["statement", "role"],
        "additionalProperties": False,
    }

    def run(self, args, ctx) -> Result:
        att = ctx.attest(args["statement"], args["role"],
                         bool(args.get("simulated_answer", True)))
        record = {"person": att.person, "role": att.role, "host": att.host,
                  "terminal": att.terminal, "at": att.at, "statement": att.statement,
                  "confirmed": att.confirmed, "simulated": att.simulated}
        if att.refused:
            record["refused"] = list(att.refused)
        if att.signed:
            record["signed_by_key"] = att.signed  # a signed attestation file, not a terminal
        who = f"{att.person} ({att.role}{', simulated' if att.simulated else ''})"
        if not att.confirmed:
            return Result(failed=True, msg=f"{who} answered no: {att.statement}",
                          facts={"attestation": record})
        return Result(msg=f"confirmed by {who}: {att.statement}", facts={"attestation": record})
