"""Every finding a firewall review can report, by stable id: its default severity (a site
policy may change it), what it is, why it matters in the plant and the fix. The checks that
find them are checks.py (packet filter) and checks_settings.py (management, syslog)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from otpatch.modules.firewall import checks as R
from otpatch.modules.firewall import checks_settings as S
from otpatch.modules.firewall.finding import Severity

_SYSLOG_WHY = ("The SIEM (VLAN 30) keeps the firewall's connection log: the record of who "
               "crossed the zone boundary (IEC 62443-3-3 SR 2.8 auditable events, SR 6.1 "
               "audit log accessibility), and the post-patch validation confirms it "
               "continues.")
_CLEAR_TEXT = ("Plain HTTP carries the administrator's password and session in clear text "
               "to anyone on the path between VLAN 20 and the mGuard.")


@dataclass(frozen=True)
class Check:
    id: str
    severity: Severity
    title: str
    why: str
    fix: str
    find: Callable[[R.Scope], Iterable[R.Hit]]


CHECKS: tuple[Check, ...] = (
    Check("any-to-any-accept", Severity.CRITICAL,
          "an accept rule for every protocol from any address to any address",
          "It opens every port of every host behind the firewall, S7, Modbus and EtherNet/IP "
          "included: the VLAN 10/20 boundary stops nothing, and every rule after it is dead.",
          "Remove it; accept only the flows the plant needs, each from named hosts to named "
          "hosts and ports, and end the table with a logged drop.", R.any_to_any_accept),
    Check("s7-open-into-control", Severity.HIGH,
          "S7comm (TCP 102) open into the control zone from outside it",
          "S7comm carries Siemens PG/PC programming and diagnostics without authentication; "
          "the M580s in VLAN 10 do not need it, so an open TCP 102 across the VLAN 20/10 "
          "boundary is attack surface only.",
          "Drop TCP 102 into the control zone unless Siemens PG/PC access is required; then "
          "accept it from that PG/PC's address only and name it in the policy's allow.s7.",
          R.s7_open_into_control),
    Check("modbus-open-into-control", Severity.HIGH,
          "Modbus TCP (TCP 502) open into the control zone beyond the hosts the policy allows",
          "Modbus TCP has no authentication: whoever reaches TCP 502 on the M580 reads and "
          "writes its registers. The compensating control \"the mGuard blocks TCP 502 from "
          "outside VLAN 10\" holds only while no other source reaches it.",
          "Accept TCP 502 into the control zone only from the hosts in the policy's "
          "allow.modbus; drop it from everyone else.", R.modbus_open_into_control),
    Check("enip-open-to-any", Severity.HIGH,
          "EtherNet/IP accepted from or to any address",
          "EtherNet/IP has no authentication: implicit I/O (UDP 2222) carries the X80 drops' "
          "inputs and outputs, explicit messaging (TCP 44818) reads and writes CIP objects, "
          "and UDP 44818 answers ListIdentity discovery to whoever asks. (UDP 44818 is not "
          "the I/O traffic, whatever the seed article says: implicit I/O is UDP 2222.)",
          "Restrict each rule to the M580 and X80 EIO adapter address pairs "
          "that exchange it, in both directions.", R.enip_open_to_any),
    Check("http-management-rule", Severity.HIGH,
          "an accept rule for HTTP (TCP 80) to the mGuard's own address",
          _CLEAR_TEXT + " (On the mGuard the packet filter does not govern traffic to the "
          "mGuard itself, its management access settings do: such a rule opens nothing "
          "there, or records an intent to manage it without TLS.)",
          "Remove the rule; manage the mGuard over HTTPS (TCP 443) only, with "
          "HTTPS_REMOTE_ACCESS_RULES naming the engineering workstation.",
          R.http_management_rule),
    Check("http-management-enabled", Severity.HIGH,
          "the web interface answers plain HTTP", _CLEAR_TEXT,
          "Set HTTP_REMOTE_ENABLE = no; manage over HTTPS (TCP 443) only.",
          S.http_management_enabled),
    Check("https-management-disabled", Severity.MEDIUM,
          "the web interface does not answer HTTPS",
          "Without HTTPS the mGuard is managed some other way, plain HTTP among them; the "
          "procedure's firmware update goes over HTTPS (TCP 443).",
          "Set HTTPS_REMOTE_ENABLE = yes (HTTPS_REMOTE_LISTENPORT 443), restricted by "
          "HTTPS_REMOTE_ACCESS_RULES to the engineering workstation.",
          S.https_management_disabled),
    Check("icmp-unrestricted", Severity.MEDIUM,
          "ICMP accepted from outside the control zone beyond the hosts the policy allows",
          "ICMP from anywhere lets any host map the plant network (ping sweeps, timestamp "
          "and redirect messages); the plant needs it only for the historian's checks.",
          "Accept ICMP echo-request only, from the OT historian only; drop other ICMP.",
          R.icmp_unrestricted),
    Check("snmp-v1-enabled", Severity.MEDIUM, "SNMPv1 enabled",
          "SNMPv1 authenticates with a community string sent in clear text.",
          "Set SNMP_ENABLE_V1 = no; monitor the mGuard with SNMPv3 if at all.",
          S.snmp_v1_enabled),
    Check("syslog-missing", Severity.HIGH, "remote syslog to the SIEM not configured",
          _SYSLOG_WHY, "Configure remote syslog to the SIEM collector.", S.syslog_missing),
    Check("syslog-disabled", Severity.HIGH, "remote syslog switched off", _SYSLOG_WHY,
          "Switch remote syslog on, to the SIEM collector.", S.syslog_disabled),
    Check("syslog-not-to-siem", Severity.HIGH,
          "remote syslog goes elsewhere than the SIEM collector", _SYSLOG_WHY,
          "Point remote syslog at the SIEM collector.", S.syslog_not_to_siem),
    Check("rule-shadowed-conflict", Severity.MEDIUM,
          "a rule shadowed by an earlier rule with another action",
          "First match wins: the later rule's action never applies. A drop meant to block a "
          "flow, shadowed by an earlier accept, leaves that flow open.",
          "Move the later rule above the earlier one if its action is meant, or remove it.",
          R.rule_shadowed_conflict),
    Check("rule-shadowed", Severity.LOW, "a rule that can never match",
          "An earlier rule with the same action matches every packet this one would: it is "
          "dead weight that a reviewer reads as in force.",
          "Remove the later rule, or narrow the earlier one if the later was meant to "
          "decide.", R.rule_shadowed),
    Check("unlogged-cross-zone-accept", Severity.LOW,
          "an accept rule across zones without connection logging",
          "Connection logging is what the SIEM (VLAN 30) receives: an accept without LOG "
          "leaves no trace of who crossed the boundary.",
          "Set LOG = yes on the rule (mGuard connection logging, sent to the SIEM over "
          "syslog UDP 514).", R.unlogged_cross_zone_accept),
)
BY_ID = {c.id: c for c in CHECKS}
