"""What changed between two site registers, in words (`host prod-plc-1: stage production ->
lab`, `approver Mallory Fake added`): what a refusal names, so the signers see what they
are asked to sign again, or what someone changed behind their back."""
from __future__ import annotations

from typing import Any

SECTIONS = (("approvers", "approver"), ("hosts", "host"), ("journal_hosts", "journal host"))
LABELS = {"public_key": "public key", "part_number": "part number"}


def same(a: Any, b: Any) -> bool:
    """Whether two values are the same JSON (RFC 8785 bytes: 1 is not true, as in Python)."""
    from otpatch.engine.approvals import canonical

    try:
        return canonical(a) == canonical(b)
    except (TypeError, ValueError):  # rfc8785's CanonicalizationError is a ValueError
        return False


def differences(old: Any, new: dict[str, Any]) -> list[str]:
    """Each change from `old` (as read from a file: any shape) to `new`, in words, in the
    register's order: approvers, hosts, journal hosts, time policy."""
    old = old if isinstance(old, dict) else {}
    out: list[str] = []
    for key, what in SECTIONS:
        out += _entries(what, _by_name(old.get(key)), _by_name(new.get(key)))
    if not same(old.get("time_sync"), new.get("time_sync")):
        out.append(f"time_sync: {_policy(old.get('time_sync'))} -> "
                   f"{_policy(new.get('time_sync'))}")
    unnamed = set(old) ^ set(new)
    out += [f"{key}: {'added' if key in new else 'removed'}" for key in sorted(unnamed)
            if key not in ("time_sync", *(k for k, _ in SECTIONS))]
    return out or ["the same entries written differently (e.g. 1 for true)"]


def _by_name(entries: Any) -> dict[str, dict]:
    if not isinstance(entries, list):
        return {}
    return {str(e.get("name")): e for e in entries if isinstance(e, dict)}


def _entries(what: str, old: dict[str, dict], new: dict[str, dict]) -> list[str]:
    out = [f"{what} {name} removed" for name in old if name not in new]
    for name, entry in new.items():
        if name not in old:
            out.append(f"{what} {name} added")
            continue
        out += [f"{what} {name}: {LABELS.get(field, field)} {_value(field, old[name].get(field))}"
                f" -> {_value(field, entry.get(field))}"
                for field in sorted((set(old[name]) | set(entry)) - {"name"})
                if not same(old[name].get(field), entry.get(field))]
    return sorted(out, key=lambda line: line.split(":")[0])


def _value(field: str, value: Any) -> str:
    from otpatch.engine.keys import short
    from otpatch.modules.contract.errors import clip

    if value is None or value == "":
        return "(none)"
    if field == "public_key" and isinstance(value, str):
        return short(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return clip(str(value), 60)


def _policy(value: Any) -> str:
    if not isinstance(value, dict):
        return "none"
    required = "required" if value.get("required") is True else "not required"
    return f"{required}, max_error {value.get('max_error')}s"
