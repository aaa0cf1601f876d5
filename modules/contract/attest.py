"""A person's confirmation inside a guided step, in one shape for every module: the step asks
through ctx.attest (the run pauses when nobody is there to answer: PersonNeeded) and keeps
the record below in its facts."""
from __future__ import annotations

from typing import Any


def attested(ctx: Any, statement: str, role: str) -> tuple[bool, dict[str, Any]]:
    """Ask a person holding `role` to confirm `statement` (PersonNeeded: the run pauses);
    (confirmed, the record the facts keep: who, as what, when, whether simulated, and the
    public key when the answer was signed with `otpatch attest`)."""
    att = ctx.attest(statement, role, simulated_answer=True)
    record = {"person": att.person, "role": att.role, "at": att.at,
              "statement": att.statement, "confirmed": att.confirmed,
              "simulated": att.simulated}
    if att.signed:
        record["signed_by_key"] = att.signed
    return att.confirmed, record
