"""A saved mGuard profile (ATV text, or the ECS `.tar.gz` carrying it) read into a typed
Ruleset (model.py). The mGuard simulator exports the same format, so a real profile and a
simulated one go through this same code.

Setting names: the confirmed ones and the assumed ones are in NAMES (with those the mGuard
package already reads, modules/mguard/profile.py), so a real export corrects them in one
place. A rule's action is read from TARGET (before 8.1) or TARGET_REF (8.1 renamed it, and it
may name a rule set: GriffinPlus/mguard-config-tool's migrations); both are read. A value
that does not parse is a RulesetError naming its file and line, never a rule guessed; a
field that is absent means what the mGuard's defaults say (any address, any port)."""
from __future__ import annotations

import ipaddress
from typing import Any

from otpatch.modules.firewall import model as M
from otpatch.modules.mguard.atv import AtvError, Document, Row, Table, text_of
from otpatch.modules.mguard.profile import NAMES as PROFILE_NAMES
from otpatch.modules.mguard.profile import ProfileUnreadable, load

NAMES = {
    **PROFILE_NAMES,
    # assumed (the web UI's columns and menu names; no public export confirms them)
    "rule_protocol": "PROTOCOL", "rule_src_ip": "SRC_IP", "rule_src_port": "SRC_PORT",
    "rule_dst_ip": "DST_IP", "rule_dst_port": "DST_PORT", "rule_log": "LOG",
    "http_enable": "HTTP_REMOTE_ENABLE", "ssh_enable": "SSH_REMOTE_ENABLE",
    "access_from": "FROM_IP", "access_action": "TARGET",
    # confirmed names (the tool's grammar and the manual's menu)
    "https_enable": "HTTPS_REMOTE_ENABLE", "https_port": "HTTPS_REMOTE_LISTENPORT",
    "https_access": "HTTPS_REMOTE_ACCESS_RULES", "ssh_access": "SSH_REMOTE_ACCESS_RULES",
    "snmp_v1": "SNMP_ENABLE_V1", "snmp_access": "SNMP_ACCESS_RULES",
}
MAX_RULES = 100_000  # rules in one profile: far above any real mGuard


class RulesetError(ValueError):
    """A profile that cannot be read as a ruleset: one line with its file and line."""


def read(data: bytes, source: str) -> M.Ruleset:
    """The ruleset of a saved profile; RulesetError (one line) for one that is truncated,
    malformed, encrypted or not a profile."""
    try:
        loaded = load(data, source)
    except AtvError as e:
        raise RulesetError(str(e)) from None
    except ProfileUnreadable as e:
        raise RulesetError(str(e)) from None
    where = f"{source}!aca/cfg" if loaded.container == "ecs" else source
    return ruleset(loaded.document, where)


def ruleset(doc: Document, source: str) -> M.Ruleset:
    tables = _tables(doc, source)
    if sum(len(t) for t in tables.values()) > MAX_RULES:
        raise RulesetError(f"{source}: more than {MAX_RULES} firewall rules: not an mGuard "
                           "profile this review reads")
    return M.Ruleset(source, doc.version, tables, _management(doc, source),
                     _syslog(doc, source), _vlans(doc, source), _tunnels(doc))


# -- packet-filter rules -------------------------------------------------------------------

def _rows(value: Any) -> list[Row]:
    return value.rows if isinstance(value, Table) else []


def _tables(doc: Document, source: str) -> dict[str, tuple[M.Rule, ...]]:
    out: dict[str, tuple[M.Rule, ...]] = {}
    for kind in ("incoming", "outgoing"):
        name = NAMES[f"fw_{kind}"]
        out[kind] = _rules(_rows(doc.settings.get(name)), kind, name, source)
    for i, conn in enumerate(_rows(doc.settings.get(NAMES["vpn_connections"]))):
        key = (text_of(conn.settings.get(NAMES["vpn_name"])) or conn.rid
               or f"{NAMES['vpn_connections']}.{i}")
        for kind in ("incoming", "outgoing"):
            name = NAMES[f"fw_{kind}"]
            out[f"vpn:{key}:{kind}"] = _rules(
                _rows(conn.settings.get(name)), f"vpn:{key}:{kind}",
                f"{NAMES['vpn_connections']}.{i}.{name}", source)
    return out


def _rules(rows: list[Row], table: str, path: str, source: str) -> tuple[M.Rule, ...]:
    return tuple(_rule(row, table, n, f"{path}.{n}", source) for n, row in enumerate(rows))


def _rule(row: Row, table: str, index: int, path: str, source: str) -> M.Rule:
    def field(key: str) -> str | None:
        return text_of(row.settings.get(NAMES[key]))

    where = f"{source}:{row.line}" if row.line else f"{source} {path}"
    action, setting = _action(row, where)
    return M.Rule(table=table, position=index + 1,
                  protocol=protocol(field("rule_protocol"), where),
                  source=addresses(field("rule_src_ip"), where),
                  source_port=ports(field("rule_src_port"), where),
                  destination=addresses(field("rule_dst_ip"), where),
                  destination_port=ports(field("rule_dst_port"), where),
                  action=action, log=flag(field("rule_log"), where) is True,
                  comment=field("rule_comment") or "", path=path, line=row.line,
                  action_setting=setting)


def _action(row: Row, where: str) -> tuple[str, str]:
    """TARGET (before 8.1) or TARGET_REF (8.1+: an action, or a rule set's row id)."""
    for key in ("rule_action_ref", "rule_action"):
        value = text_of(row.settings.get(NAMES[key]))
        if value is not None:
            return value.strip().lower() if value.strip().lower() in M.ACTIONS \
                else value.strip(), NAMES[key]
        meta = row.settings.get(NAMES[key])
        if meta is not None and getattr(meta, "attrs", {}).get("rowref"):
            return meta.attrs["rowref"], NAMES[key]
    raise RulesetError(f"{where}: a firewall rule without an action ({NAMES['rule_action']} "
                       f"or {NAMES['rule_action_ref']})")


def protocol(text: str | None, where: str) -> str:
    value = (text or "all").strip().lower()
    value = {"any": "all", "*": "all"}.get(value, value)
    if value not in M.PROTOCOLS:
        raise RulesetError(f"{where}: protocol {value[:20]!r} is not one of "
                           f"{', '.join(M.PROTOCOLS)}")
    return value


def addresses(text: str | None, where: str) -> M.Addresses:
    """`any`, `0.0.0.0/0`, an address, a network, a range `a-b`, or a comma list."""
    value = (text or "any").strip()
    if value.lower() in ("any", "*", ""):
        return M.ANY_ADDRESS
    nets: list[M.Network] = []
    for part in (p.strip() for p in value.split(",")):
        try:
            if "-" in part:
                lo, hi = (ipaddress.ip_address(x.strip()) for x in part.split("-", 1))
                nets += ipaddress.summarize_address_range(lo, hi)
            else:
                nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise RulesetError(f"{where}: {part[:40]!r} is not an IP address, network or "
                               "range") from None
    return M.Addresses(tuple(nets))


def ports(text: str | None, where: str) -> M.Ports:
    """`any`, a port, a range `lo:hi` or `lo-hi`, or a comma list."""
    value = (text or "any").strip().lower()
    if value in ("any", "*", ""):
        return M.ANY_PORT
    ranges = []
    for part in (p.strip() for p in value.split(",")):
        lo, _, hi = part.replace("-", ":").partition(":")
        if not (lo.isdigit() and (hi.isdigit() or not hi)) or len(part) > 11:
            raise RulesetError(f"{where}: port {part[:20]!r} is not a port or a range")
        low, high = int(lo), int(hi or lo)
        if not 0 <= low <= high <= 65535:
            raise RulesetError(f"{where}: port range {part!r} is outside 0-65535")
        ranges.append((low, high))
    return M.Ports(tuple(ranges))


def flag(text: str | None, where: str) -> bool | None:
    if text is None:
        return None
    value = text.strip().lower()
    if value not in ("yes", "no", "1", "0", "true", "false"):
        raise RulesetError(f"{where}: {value[:20]!r} is not yes or no")
    return value in ("yes", "1", "true")


# -- the rest: management, syslog, VLANs, tunnels ------------------------------------------

def _setting(doc: Document, key: str) -> str | None:
    return text_of(doc.settings.get(NAMES[key]))


def _management(doc: Document, source: str) -> M.Management:
    port = _setting(doc, "https_port")
    access = []
    for service, key in (("https", "https_access"), ("ssh", "ssh_access"),
                         ("snmp", "snmp_access")):
        for row in _rows(doc.settings.get(NAMES[key])):
            where = f"{source}:{row.line}"
            access.append(M.Access(service, addresses(
                text_of(row.settings.get(NAMES["access_from"])), where),
                (text_of(row.settings.get(NAMES["access_action"])) or "accept").lower(),
                row.line))
    return M.Management(
        https_enabled=flag(_setting(doc, "https_enable"), source),
        https_port=int(port) if port and port.isdigit() else None,
        http_enabled=flag(_setting(doc, "http_enable"), source),
        ssh_enabled=flag(_setting(doc, "ssh_enable"), source),
        snmp_v1_enabled=flag(_setting(doc, "snmp_v1"), source), access=tuple(access))


def _syslog(doc: Document, source: str) -> M.Syslog:
    port = _setting(doc, "syslog_port")
    return M.Syslog(flag(_setting(doc, "syslog_enable"), source), _setting(doc, "syslog_ip"),
                    int(port) if port and port.isdigit() else None)


def _vlans(doc: Document, source: str) -> tuple[M.Vlan, ...]:
    out = []
    for row in _rows(doc.settings.get(NAMES["vlans"])):
        raw = text_of(row.settings.get(NAMES["vlan_id"]))
        ip = text_of(row.settings.get(NAMES["vlan_ip"]))
        try:
            network = ipaddress.ip_interface(ip).network if ip else None
        except ValueError:
            raise RulesetError(f"{source}:{row.line}: VLAN address {ip[:40]!r} is not an "
                               "interface address (10.10.10.1/24)") from None
        out.append(M.Vlan(int(raw) if raw and raw.isdigit() else None,
                          text_of(row.settings.get(NAMES["vlan_interface"])), network,
                          row.line))
    return tuple(out)


def _tunnels(doc: Document) -> tuple[M.Tunnel, ...]:
    from otpatch.modules.mguard.profile import tunnels

    rows = _rows(doc.settings.get(NAMES["vpn_connections"]))
    return tuple(M.Tunnel(t["name"] or t["rid"] or t["path"], t["started"],
                          tuple((n["local"], n["remote"]) for n in t["networks"]), row.line)
                 for t, row in zip(tunnels(doc), rows))
