"""Does an M580 / X80 host answer as an otpatch simulator? Asked before every dry run."""
from __future__ import annotations

from typing import Any

from otpatch.modules.contract.errors import OtpatchError
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.driver import M580Driver
from otpatch.modules.m580.simidentity import answer

PROBE_TIMEOUT_S = 2.0


def probe(host: Any) -> tuple[bool, str] | None:
    """None for a host that is not an M580 CPU or X80 adapter; else (answers as an otpatch
    simulator on every endpoint it has, what was seen). The identity reads only
    (simidentity.py): the same question each driver asks before a simulator-only command."""
    if H.device_kind(host) is None:
        return None
    try:
        return answer(M580Driver(host, PROBE_TIMEOUT_S))
    except OtpatchError as e:  # unreachable, malformed endpoint
        return False, f"{e} (within {PROBE_TIMEOUT_S:.0f} s; is `otpatch sim up` running?)"
