"""A run's inventory as an evidence bundle carries it: reduced to the hosts the run
targeted, their groups and the site variables its record needs, every secret-looking
key removed, and the list of the keys removed."""
from __future__ import annotations

import re
from typing import Any

INVENTORY_KIND = "otpatch-bundle-inventory/1"
# keys whose values are secrets or say where one is (the inventory refuses the first kind
# inline, schemas/inventory.schema.json; the bundle drops both, and SNMP and VPN ones)
SECRET_KEY = re.compile(r"passw|secret|token|api_?key|private_?key|psk|community|(^|_)pass$",
                        re.IGNORECASE)
SITE_VARS = ("approvers", "journal_hosts", "maintenance_windows", "siem", "time_sync")
REDUCED = ("reduced for the evidence bundle: only the hosts the run targeted, their groups, "
           "and the site variables its record needs (approvers with their public keys, "
           "journal_hosts, maintenance_windows, siem, time_sync); every secret-looking key "
           "removed (listed in `removed`)")


def reduced_inventory(data: dict[str, Any], hosts: set[str], inventory: Any) -> dict[str, Any]:
    """The inventory's groups holding the targeted hosts, only those hosts, and the site
    variables the record needs (approvers with their keys resolved); secrets not yet
    removed (`scrubbed` does, so `secret_paths` can name what it removes)."""
    out = {}
    for name, body in data.items():
        group = _group(body, hosts)
        if group is not None or name == "all":
            out[name] = group or {}
    site = ((data.get("all") or {}).get("vars") or {})
    kept = {k: site[k] for k in SITE_VARS if k in site}
    if inventory.approvers:
        from otpatch.engine.approvals import approver_key

        kept["approvers"] = [{"name": a.name, "roles": list(a.roles),
                              "public_key": approver_key(a)} for a in inventory.approvers]
    out["all"] = {**{k: v for k, v in out["all"].items() if k != "vars"},
                  **({"vars": kept} if kept else {})}
    return out


def _group(body: Any, hosts: set[str]) -> dict[str, Any] | None:
    """A group with only the targeted hosts and the children holding them; None if empty."""
    body = body if isinstance(body, dict) else {}
    own = {h: v for h, v in (body.get("hosts") or {}).items() if h in hosts}
    children = {c: g for c, b in (body.get("children") or {}).items()
                if (g := _group(b, hosts)) is not None}
    if not own and not children:
        return None
    out = {k: v for k, v in (("vars", body.get("vars")), ("hosts", own),
                             ("children", children)) if v}
    return out


def scrubbed(doc: Any) -> Any:
    """The document without its secret-looking keys, at any depth."""
    if isinstance(doc, dict):
        return {k: scrubbed(v) for k, v in doc.items() if not SECRET_KEY.search(str(k))}
    if isinstance(doc, list):
        return [scrubbed(v) for v in doc]
    return doc


def secret_paths(doc: Any, path: str = "") -> list[str]:
    """Where a document holds a secret-looking key (dotted paths)."""
    if isinstance(doc, dict):
        return [p for k, v in doc.items()
                for p in ([f"{path}{k}"] if SECRET_KEY.search(str(k))
                          else secret_paths(v, f"{path}{k}."))]
    if isinstance(doc, list):
        return [p for n, v in enumerate(doc) for p in secret_paths(v, f"{path}{n}.")]
    return []
