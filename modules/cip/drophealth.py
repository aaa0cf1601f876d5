"""One remote I/O drop's connection health as public CIP shows it, read-only: the adapter's
Connection Manager counters (class 0x06, instance 1, attributes 1-8) and its Identity status
word (class 0x01, attribute 5), by Get_Attribute_Single over unconnected explicit messaging;
and what two readings say about the span between them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from otpatch.modules.cip import objects
from otpatch.modules.cip.session import CipServiceError, CipSession
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.identity import IdentityStatus

TIMEOUT_S = 2.0
# What a device that lacks the (optional) attribute answers: path destination unknown,
# service not supported, attribute not supported, object does not exist (CIP Vol. 1 App. B)
NOT_ANSWERED = frozenset({objects.PATH_UNKNOWN, objects.NOT_SUPPORTED,
                          objects.ATTRIBUTE_NOT_SUPPORTED, objects.OBJECT_DOES_NOT_EXIST})
RUN_MODE = "run"  # IdentityStatus.io of "at least one I/O connection in run mode"
# A counter that reads lower than before wrapped or was reset (the adapter restarted). A drop
# counts a few opens and closes a day, so a wrap is taken as plausible only when it implies
# at most this many events since the earlier reading; more is a reset, and the span cannot
# be judged from the counters.
PLAUSIBLE_WRAP = 1024


@dataclass(frozen=True)
class DropReading:
    """The counters (None where the adapter does not answer Connection Timeouts, and
    `unanswered` says how) and the Identity status of one adapter, read at `read_at` (the
    run's clock, ISO 8601)."""

    host: str
    counters: objects.ConnectionManagerCounters | None
    status: IdentityStatus
    read_at: str
    unanswered: str = ""


def read_drop(host: Any, now: float, timeout: float = TIMEOUT_S) -> DropReading:
    """Read one adapter: reads only, nothing written. DeviceUnreachable when it does not
    answer; CipServiceError when it refuses its Identity status (a mandatory attribute)."""
    address, port = H.endpoint(host, "enip")
    at = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds")
    with CipSession(f"{address}:{port}", host.name, timeout) as s:
        word = s.get_single(objects.IDENTITY, 5, what=f"{host.name}: CIP Identity status")
    status = IdentityStatus(int.from_bytes(word[:2], "little"))
    with CipSession(f"{address}:{port}", host.name, timeout) as s:
        timeouts, unanswered = _attribute(s, len(objects.CM_COUNTERS))
        if timeouts is None:  # no counters: the rest is not asked
            return DropReading(host.name, None, status, at, unanswered)
        found = {n: _attribute(s, n)[0] for n in range(1, len(objects.CM_COUNTERS))}
    found[len(objects.CM_COUNTERS)] = timeouts
    return DropReading(host.name, objects.ConnectionManagerCounters.from_attributes(found),
                       status, at)


def _attribute(s: CipSession, number: int) -> tuple[bytes | None, str]:
    """One counter's reply data, or (None, why) where the adapter does not answer it: a
    general status saying it has no such object, service or attribute, or a reply that
    carries no CIP response at all (cpppo's, for example)."""
    name = objects.CM_COUNTER_NAMES[objects.CM_COUNTERS[number - 1]]
    try:
        return s.get_single(objects.CONNECTION_MANAGER, number,
                            what=f"{s.who}: Connection Manager {name}"), ""
    except CipServiceError as e:
        if e.status is None:
            return None, f"no CIP reply to Get_Attribute_Single of {name}"
        if e.status in NOT_ANSWERED:
            return None, f"{name}: {objects.status_text(e.status)}"
        raise


def recorded(checkpoints: Mapping[str, Any], name: str, target: str, host: str
             ) -> tuple[objects.ConnectionManagerCounters | None, str] | None:
    """The counters a cip.connections step recorded for `host` under `target` before the
    checkpoint `name` (None inside: it recorded an attestation), and when they were read;
    None when the checkpoint holds no such step's facts."""
    entry = ((checkpoints.get(name) or {}).get(target) or {}).get(host)
    if not isinstance(entry, Mapping) or "connection_manager" not in entry:
        return None
    found = entry["connection_manager"]
    if not isinstance(found, Mapping):
        return None, str(entry.get("read_at", ""))
    values = {k: found.get(k) for k in objects.CM_COUNTERS}
    return objects.ConnectionManagerCounters(**values), str(entry.get("read_at", ""))


def problems(before: objects.ConnectionManagerCounters | None, after: DropReading,
             span: str) -> list[str]:
    """What the two readings say is wrong over the span, in words; [] if nothing is."""
    found = []
    if before is not None and after.counters is not None:
        went_back = [f"{k} {b} -> {a}" for k, b, a in _pairs(before, after.counters)
                     if a < b and (a - b) % objects.UINT_RANGE > PLAUSIBLE_WRAP]
        if went_back:
            found.append(f"{after.host}: Connection Manager counters went back ("
                         f"{', '.join(went_back)}): the adapter restarted or its counters "
                         f"wrapped; {span} cannot be judged from them")
        else:
            rose = timeouts_in(before, after.counters)
            if rose:
                found.append(f"{after.host}: {rose} connection timeout(s) {span} (Connection "
                             f"Timeouts {before.connection_timeouts} -> "
                             f"{after.counters.connection_timeouts})")
    if after.status.io != RUN_MODE:
        found.append(f"{after.host}: I/O status '{after.status.extended_name}', not 'at least "
                     f"one I/O connection in run mode' (Identity status "
                     f"0x{after.status.word:04X})")
    return found


def timeouts_in(before: objects.ConnectionManagerCounters | None,
                after: objects.ConnectionManagerCounters | None) -> int | None:
    if before is None or after is None or before.connection_timeouts is None:
        return None
    return (after.connection_timeouts - before.connection_timeouts) % objects.UINT_RANGE


def _pairs(before: objects.ConnectionManagerCounters, after: objects.ConnectionManagerCounters
           ) -> list[tuple[str, int, int]]:
    """(name, before, after) of every counter both readings have."""
    return [(k, b, a) for k, b, a in zip(objects.CM_COUNTERS, before.values(), after.values())
            if b is not None and a is not None]
