"""Does an mGuard target answer as an otpatch simulator? A dry run refuses to start unless
every target does: a typo in an inventory must never reach a real firewall."""
from __future__ import annotations

from typing import Any

from otpatch.modules.contract.errors import DeviceUnreachable, OtpatchError
from otpatch.modules.mguard.driver import CertificateRefused, MguardDriver, simulator_answer
from otpatch.modules.mguard.lab import is_mguard
from otpatch.modules.mguard.tls import TrustMissing

PROBE_TIMEOUT = (2.0, 2.0)


def probe(host: Any) -> tuple[bool, str] | None:
    """None for a host that is not an mGuard; else (answers as our simulator, detail).

    Uses the inventory's TLS trust like any other call (nothing is sent to a server whose
    certificate is not the trusted one) and no credentials: /sim/identity needs none. The
    same question each driver asks before its first simulator-only call."""
    if not is_mguard(host):
        return None
    hint = " (is `otpatch sim up` running?)" if host.simulator else ""
    try:
        with MguardDriver(host, timeout=PROBE_TIMEOUT, login=False) as driver:
            identity = driver.sim_identity()
            where = driver.base
    except DeviceUnreachable as e:
        return False, f"unreachable: {e} (within {PROBE_TIMEOUT[0]:.0f} s){hint}"
    except CertificateRefused as e:
        return False, f"refused: {e}"
    except TrustMissing as e:  # a CA file not written yet: the lab is not up
        return False, f"{e}{hint if host.vars.get('tls_ca_file') else ''}"
    except OtpatchError as e:
        return False, str(e)
    answers, detail = simulator_answer(identity, host, where)
    return answers, f"{host.name}: {detail}"
