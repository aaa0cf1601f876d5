"""core.set_fact: record values as facts for later steps and the run record."""
from __future__ import annotations

from otpatch.modules.contract.module import Module, Result


class SetFact(Module):
    name = "core.set_fact"
    reaches_device = False  # no device: facts, expressions, time or a person
    replayable = True  # pure: facts and expressions only
    doc = "Set facts (key: value, values may be templates); they join `facts` for later steps."
    args_schema = {
        "type": "object",
        "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "minProperties": 1,
    }

    def run(self, args, ctx) -> Result:
        return Result(msg=f"set {', '.join(sorted(args))}", facts=dict(args))
