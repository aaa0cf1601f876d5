"""The setting checks of a firewall review: management access (HTTP, HTTPS, SNMPv1) and
remote syslog to the SIEM. A setting the profile does not write is read as absent (None):
only remote syslog treats absence as a finding (nothing then sends the log to the SIEM);
an absent SYSLOG_REMOTE_PORT is the manual's default, UDP 514."""
from __future__ import annotations

import ipaddress
from typing import Any, Iterator

from otpatch.modules.firewall import model as M
from otpatch.modules.firewall.checks import Hit, Scope
from otpatch.modules.firewall.finding import Location
from otpatch.modules.firewall.ruleset import NAMES

SYSLOG_DEFAULT_PORT = 514  # mGuard manual: remote syslog over UDP, port 514 unless set


def http_management_enabled(scope: Scope) -> Iterator[Hit]:
    rs = scope.ruleset
    if rs.management.http_enabled:
        yield Hit(_at("http_enable"), f"{NAMES['http_enable']} is yes: the web interface "
                                      "answers plain HTTP")


def https_management_disabled(scope: Scope) -> Iterator[Hit]:
    rs = scope.ruleset
    if rs.management.https_enabled is False:
        yield Hit(_at("https_enable"), f"{NAMES['https_enable']} is no: the web interface "
                                       "does not answer HTTPS")


def snmp_v1_enabled(scope: Scope) -> Iterator[Hit]:
    rs = scope.ruleset
    if rs.management.snmp_v1_enabled:
        yield Hit(_at("snmp_v1"), f"{NAMES['snmp_v1']} is yes: SNMPv1 answers with a "
                                  "community string sent in clear text")


def syslog_missing(scope: Scope) -> Iterator[Hit]:
    rs, policy = scope.ruleset, scope.policy
    log = rs.syslog
    if log.enabled is False:
        return  # syslog-disabled says it
    if log.enabled is None:
        yield Hit(_at("syslog_enable"), f"{NAMES['syslog_enable']} is not in the profile: "
                                        "nothing enables remote syslog", _fix(policy))
    elif not log.ip:
        yield Hit(_at("syslog_ip"), f"remote syslog is enabled but {NAMES['syslog_ip']} is "
                                    "not set: there is no collector to send to", _fix(policy))


def syslog_disabled(scope: Scope) -> Iterator[Hit]:
    rs, policy = scope.ruleset, scope.policy
    if rs.syslog.enabled is False:
        yield Hit(_at("syslog_enable"), f"{NAMES['syslog_enable']} is no: the connection "
                                        "log does not reach the SIEM", _fix(policy))


def syslog_not_to_siem(scope: Scope) -> Iterator[Hit]:
    rs, policy = scope.ruleset, scope.policy
    log = rs.syslog
    if log.enabled is False or not log.ip:
        return
    if not _within(log.ip, policy.syslog_collector):
        yield Hit(_at("syslog_ip"), f"remote syslog goes to {log.ip[:60]}, not the SIEM "
                  f"collector {policy.describe(policy.syslog_collector)}", _fix(policy))
    port = log.port if log.port is not None else SYSLOG_DEFAULT_PORT
    if port != policy.syslog_port:
        written = "" if log.port is not None else " (not set: the default)"
        yield Hit(_at("syslog_port"), f"remote syslog goes to port {port}{written}, the "
                  f"SIEM collector listens on UDP {policy.syslog_port}", _fix(policy))


def _at(name: str) -> Location:
    return Location(NAMES[name])


def _within(text: str, collector: M.Addresses) -> bool:
    try:
        address = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return False
    return M.Addresses((address,)).within(collector)


def _fix(policy: Any) -> str:
    return (f"Set {NAMES['syslog_enable']} = yes, {NAMES['syslog_ip']} = "
            f"{policy.syslog_collector_text} and {NAMES['syslog_port']} = "
            f"{policy.syslog_port} (UDP), then confirm messages arrive at the SIEM "
            "(syslog.continuity) before and after the change.")
