"""What a saved mGuard profile says: rule counts, VLANs, IPsec tunnels, remote syslog.

A saved profile comes in three forms, told apart by sniffing its bytes: an ECS container
(gzip'ed tar whose `aca/cfg` member is the full ATV text), an `.ecs.p7e` container (the same,
S/MIME-encrypted to the device certificate: unreadable here, and said so), or ATV text.

Every setting name below that public sources do not confirm is in NAMES, so a real export
can correct it in one place (see mguard-profile-format.md). A field that is absent is
reported absent (None), never filled with a guess. Secrets in the profile (pre-shared keys,
private keys) never reach the facts."""
from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass
from typing import Any

from otpatch.modules.contract.canonical import canonical_hash
from otpatch.modules.mguard.atv import AtvError, Document, Meta, Row, Table, parse, text_of

NAMES = {
    # confirmed by the public grammar / tool
    "vpn_connections": "VPN_CONNECTION",
    "vpn_start": "VPN_START",          # started / stopped (8.1+)
    "vpn_enabled_legacy": "VPN_ENABLED",  # yes / no (before 8.1)
    "tunnels": "TUNNEL",
    "tunnel_local": "LOCAL",
    "rule_action": "TARGET",
    "rule_action_ref": "TARGET_REF",
    "rule_comment": "COMMENT",
    # assumed (not confirmed by a public source)
    "tunnel_remote": "REMOTE",
    "vpn_name": "NAME",
    "fw_incoming": "FW_INCOMING",
    "fw_outgoing": "FW_OUTGOING",
    "rule_fields": ("PROTOCOL", "SRC_IP", "SRC_PORT", "DST_IP", "DST_PORT", "LOG"),
    "vlans": "VLAN_NETWORKS",
    "vlan_id": "VLAN_ID",
    "vlan_interface": "INTERFACE",
    "vlan_ip": "IP",
    "syslog_enable": "SYSLOG_REMOTE_ENABLE",
    "syslog_ip": "SYSLOG_REMOTE_IP",
    "syslog_port": "SYSLOG_REMOTE_PORT",
}
ECS_MEMBER = "aca/cfg"
_PKCS7_ENVELOPED_OID = bytes.fromhex("06092a864886f70d010703")  # 1.2.840.113549.1.7.3


class ProfileUnreadable(ValueError):
    """A saved profile that cannot be read here (encrypted, or not a profile at all)."""


@dataclass(frozen=True)
class LoadedProfile:
    """A parsed profile, the container it came in (`atv` or `ecs`) and its ATV text as
    stored (what a device import takes)."""

    document: Document
    container: str
    atv: bytes


def sniff(data: bytes) -> str:
    """`ecs` (gzip'ed tar), `p7e` (PKCS#7 / S/MIME), or `atv` (anything else: text)."""
    if data[:2] == b"\x1f\x8b":
        return "ecs"
    head = data[:512].lstrip()
    if head.startswith((b"MIME-Version:", b"Content-Type:", b"-----BEGIN PKCS7")):
        return "p7e"
    if head[:1] == b"\x30" and _PKCS7_ENVELOPED_OID in data[:64]:
        return "p7e"
    return "atv"


def load(data: bytes, source: str = "<profile>") -> LoadedProfile:
    """Parse a saved profile in any of its forms; AtvError or ProfileUnreadable otherwise."""
    kind = sniff(data)
    if kind == "p7e":
        raise ProfileUnreadable(f"{source}: an encrypted ECS container (.ecs.p7e, S/MIME to the "
                                "device certificate): it cannot be read here; only the device "
                                "that holds the key can")
    if kind == "ecs":
        cfg, inner = _ecs_cfg(data, source), f"{source}!{ECS_MEMBER}"
        return LoadedProfile(parse(_decode(cfg, inner), inner), "ecs", cfg)
    return LoadedProfile(parse(_decode(data, source), source), "atv", data)


def _ecs_cfg(data: bytes, source: str) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)), mode="r:") as tar:
            member = tar.extractfile(ECS_MEMBER)
            if member is None:
                raise KeyError(ECS_MEMBER)
            return member.read()
    except KeyError:
        raise ProfileUnreadable(f"{source}: an ECS container without {ECS_MEMBER} "
                                "(the configuration profile)") from None
    except (OSError, EOFError, tarfile.TarError) as e:
        raise ProfileUnreadable(f"{source}: looks like an ECS container (gzip) but cannot "
                                f"be unpacked: {e}") from e


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[:e.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise AtvError(source, line, col, "not UTF-8 text (nor an ECS container)") from None


# -- facts ------------------------------------------------------------------------------------

def _rows(value: Any) -> list[Row]:
    return value.rows if isinstance(value, Table) else []


def _rule(row: Row) -> dict[str, Any]:
    """The fields of a rule that a review or a digest needs (never secrets: rules have none);
    a TARGET_REF naming a rule set by rowref gives that row id."""
    fields = (NAMES["rule_comment"], NAMES["rule_action"], NAMES["rule_action_ref"],
              *NAMES["rule_fields"])
    return {name: _text_or_rowref(row.settings.get(name)) for name in fields}


def _text_or_rowref(value: Any) -> str | None:
    if isinstance(value, Meta) and value.value is None:
        return value.attrs.get("rowref")
    return text_of(value)


def _as_digested(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule as the digest sees it: its action under TARGET whichever setting named it.
    8.1 renamed the VPN connections' rules' TARGET to TARGET_REF (simprofile.py cites the
    migration): a profile an update migrated holds the same rules, so the same digest, and
    digests recorded before the rename (TARGET, TARGET_REF empty) keep matching."""
    action, ref = NAMES["rule_action"], NAMES["rule_action_ref"]
    return {**rule, action: rule[ref] if rule[ref] is not None else rule[action], ref: None}


def rules(doc: Document) -> dict[str, list[dict[str, Any]]]:
    """Every packet-filter rule, by table: `incoming`, `outgoing`, `vpn:<connection>:...`."""
    out = {"incoming": [_rule(r) for r in _rows(doc.settings.get(NAMES["fw_incoming"]))],
           "outgoing": [_rule(r) for r in _rows(doc.settings.get(NAMES["fw_outgoing"]))]}
    for i, conn in enumerate(_rows(doc.settings.get(NAMES["vpn_connections"]))):
        key = _connection_key(conn, i)
        for table, name in (("incoming", NAMES["fw_incoming"]),
                            ("outgoing", NAMES["fw_outgoing"])):
            out[f"vpn:{key}:{table}"] = [_rule(r) for r in _rows(conn.settings.get(name))]
    return out


def _connection_key(conn: Row, index: int) -> str:
    return (text_of(conn.settings.get(NAMES["vpn_name"])) or conn.rid
            or f"{NAMES['vpn_connections']}.{index}")


def vlans(doc: Document) -> list[int | None]:
    """The VLAN ids of VLAN_NETWORKS rows, in order (None where a row has no valid id)."""
    out: list[int | None] = []
    for row in _rows(doc.settings.get(NAMES["vlans"])):
        raw = text_of(row.settings.get(NAMES["vlan_id"]))
        out.append(int(raw) if raw and raw.isdigit() else None)
    return out


def tunnels(doc: Document) -> list[dict[str, Any]]:
    """Each VPN connection: name, row id, whether it is started, its tunnels' networks."""
    out = []
    for i, conn in enumerate(_rows(doc.settings.get(NAMES["vpn_connections"]))):
        out.append({"name": text_of(conn.settings.get(NAMES["vpn_name"])), "rid": conn.rid,
                    "path": f"{NAMES['vpn_connections']}.{i}", "started": _started(conn),
                    "networks": [{"local": text_of(t.settings.get(NAMES["tunnel_local"])),
                                  "remote": text_of(t.settings.get(NAMES["tunnel_remote"]))}
                                 for t in _rows(conn.settings.get(NAMES["tunnels"]))]})
    return out


def _started(conn: Row) -> bool | None:
    start = text_of(conn.settings.get(NAMES["vpn_start"]))
    if start is not None:
        return start == "started"
    legacy = text_of(conn.settings.get(NAMES["vpn_enabled_legacy"]))
    return None if legacy is None else legacy == "yes"


def syslog(doc: Document) -> dict[str, Any]:
    """Remote syslog settings as written (None where absent)."""
    enable = text_of(doc.settings.get(NAMES["syslog_enable"]))
    port = text_of(doc.settings.get(NAMES["syslog_port"]))
    return {"enabled": None if enable is None else enable == "yes",
            "ip": text_of(doc.settings.get(NAMES["syslog_ip"])),
            "port": int(port) if port and port.isdigit() else None}


def summary(doc: Document) -> dict[str, Any]:
    """The facts a change record keeps about a profile: counts, VLANs, tunnels, syslog,
    and a digest of the rules (any edited, added, dropped or reordered rule changes it; the
    8.1 rename of TARGET to TARGET_REF does not)."""
    tables = rules(doc)
    counts = {name: len(rows) for name, rows in tables.items()}
    vpn = sum(n for name, n in counts.items() if name.startswith("vpn:"))
    digested = {name: [_as_digested(r) for r in rows] for name, rows in tables.items()}
    return {"atv_version": doc.version,
            "rules": {"total": sum(counts.values()), "incoming": counts["incoming"],
                      "outgoing": counts["outgoing"], "vpn": vpn},
            "rules_digest": "sha256:" + canonical_hash(digested),
            "vlans": vlans(doc), "tunnels": tunnels(doc), "syslog": syslog(doc)}


def rule_count(doc: Document) -> int:
    return sum(len(rows) for rows in rules(doc).values())
