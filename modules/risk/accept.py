"""Accepting a risk register decision: a person's Ed25519 signature over the entry's binding,
written into the register and journaled in the site record; and checking one again.

What is signed is decisions.py `acceptance_body` (asset, advisory at its revision, CVEs,
scores, controls, decision, rationale, owner, deadline, review date, plan), as RFC 8785
canonical JSON with the approver's key, as approvals are: the engine's signing, reached
through the contract's Host (`canonical`, `signing_key`, `signature_valid`, `approver_key`,
`record_decision`), so this package never imports the engine.
The acceptor must be an inventory approver holding an accepting role (decisions.py
ACCEPTING_ROLES) and not the entry's owner. The register is rewritten atomically with its
comments and layout kept (ruamel round trip), after the new text is loaded and checked; the
signed document goes into the site record as a DecisionRecorded (engine/siterecord.py)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from otpatch.modules.contract.errors import InputError, clip
from otpatch.modules.risk.decisions import NEEDS_ACCEPTANCE, acceptance_body, acceptor_problem
from otpatch.modules.risk.register import Decision, RegisterEntry, RiskRegister

MAX_REGISTER = 4 * 1024 * 1024  # bytes of a register file


@dataclass(frozen=True)
class Accepted:
    """What `accept` did: the entry as accepted, the signed document, the site record id."""

    entry: RegisterEntry
    number: int
    document: dict
    record_id: str
    revision_said: str = ""  # how the revision decided on was checked against the advisory


def signed_document(entry: RegisterEntry) -> dict[str, Any] | None:
    """The signed acceptance the entry carries, as it was signed (None: none)."""
    a = entry.accepted
    if a is None:
        return None
    body = acceptance_body(entry, by=a.by, role=a.role, at=a.at, key=a.key)
    return {**body, "signature": a.signature}


def signature_problem(entry: RegisterEntry, approvers: Iterable[Any], host: Any) -> str:
    """"" when the entry's acceptance verifies over the entry as it is now, with the key the
    inventory gives the person named; else why not (a re-open reason)."""
    doc = signed_document(entry)
    if doc is None:
        return ""
    body = {k: v for k, v in doc.items() if k != "signature"}
    if not host.signature_valid(doc["key"], doc["signature"], host.canonical(body)):
        return "signature no longer matches the entry (changed since it was accepted)"
    person = next((p for p in approvers if p.name == entry.accepted.by), None)
    key = host.approver_key(person) if person else None
    if key != entry.accepted.key:
        return (f"signed with key {entry.accepted.key[:12]}…, but the inventory gives "
                f"{entry.accepted.by} " + (f"key {key[:12]}…" if key else "no key"))
    return ""


def acceptor_problems(register: RiskRegister, approvers: Sequence[Any]) -> list[Any]:
    """A located Problem for each acceptance the inventory cannot stand behind: an unknown
    approver, a role not held or not accepting, the owner accepting their own decision."""
    from otpatch.modules.contract.errors import Problem

    out = []
    for entry in register.entries:
        a = entry.accepted
        if a is None:
            continue
        person = next((p for p in approvers if p.name == a.by), None)
        why = acceptor_problem(entry, a.role, person)
        if why:
            file, line, col = a.where.rsplit(":", 2)
            out.append(Problem(file, int(line), int(col), "register-acceptor",
                               f"{entry.label}: accepted.by {clip(a.by)} as "
                               f"{clip(a.role)}: {why}"))
    return out


def find_entry(register: RiskRegister, ref: str, file: str) -> tuple[int, RegisterEntry]:
    """The entry `ref` names: its 1-based number, or ASSET:ADVISORY (or ASSET:CVE)."""
    entries = register.entries
    if ref.isdigit():
        n = int(ref)
        if not 1 <= n <= len(entries):
            raise InputError(f"{file}: no entry {n} (it has {len(entries)})")
        return n, entries[n - 1]
    asset, _, what = ref.partition(":")
    found = [(n, e) for n, e in enumerate(entries, 1)
             if e.asset == asset and what and (e.advisory == what or what in e.cves)]
    if len(found) != 1:
        known = ", ".join(f"{n} ({e.asset}:{e.advisory or e.cves[0]})"
                          for n, e in enumerate(entries, 1))
        many = "several entries" if found else "no entry"
        raise InputError(f"{file}: {many} named {clip(ref)} (give N or ASSET:ADVISORY; "
                         f"entries: {known or 'none'})")
    return found[0]


def readiness_problem(entry: RegisterEntry) -> str:
    """What the entry lacks before it can be accepted; "" when nothing."""
    if entry.decision not in NEEDS_ACCEPTANCE:
        return f"a {entry.decision.value} decision needs no acceptance (only defer, mitigate)"
    missing = [name for name, ok in (
        ("review_by", entry.review_by is not None),
        ("advisory_revision", entry.advisory_revision or not entry.advisory),
        ("plan", entry.plan or entry.decision is not Decision.MITIGATE)) if not ok]
    if missing:
        return (f"give {', '.join(missing)} first: a {entry.decision.value} decision is "
                "accepted with them, and its signature binds them")
    return ""


def accept(path: str, ref: str, inventory: Any, key: Any, role: str, now: datetime,
           host: Any, *, trackings: Mapping[str, Any]) -> Accepted:
    """Sign entry `ref` of the register at `path` as the inventory approver whose key this
    is (host.signing_key), in `role`; write the acceptance into the file; journal it in the
    site record. `trackings`: advisory id -> cycle.py Tracking of the advisories given; the
    entry's advisory_revision must be its advisory's revision at `now`. InputError (exit 2)
    for anything that would not stand: nothing written."""
    from otpatch.modules.contract.files import read_regular, write_atomic
    from otpatch.modules.risk.register import parse_register

    raw = read_regular(path, MAX_REGISTER, "risk register")
    register = parse_register(raw, path)
    number, entry = find_entry(register, ref, path)
    where = f"{path}: entry {number} ({entry.label})"
    person = next((a for a in inventory.approvers
                   if host.approver_key(a) == key.public_key), None)
    if person is None:
        raise InputError(f"{where}: key {key.path} is no approver's in the inventory")
    why = readiness_problem(entry) or acceptor_problem(entry, role, person)
    if why:
        raise InputError(f"{where}: {person.name} as {clip(role)}: {why}")
    said = revision_checked(entry, trackings, now, where)
    body = acceptance_body(entry, by=person.name, role=role, at=now, key=key.public_key)
    document = {**body, "signature": key.sign(host.canonical(body))}
    text = _with_acceptance(raw, number - 1, document)
    accepted = parse_register(text, path).entries[number - 1]
    if signature_problem(accepted, inventory.approvers, host):  # the file says what was signed
        raise InputError(f"{where}: the written entry would not verify: not written")
    write_atomic(path, text, "risk register")
    record = host.record_decision(document, inventory=inventory, operator=person.name,
                                  source=f"approver:{key.public_key[:12]}", register=str(path),
                                  entry=number, asset=entry.asset, advisory=entry.advisory)
    return Accepted(accepted, number, document, record, said)


def revision_checked(entry: RegisterEntry, trackings: Mapping[str, Any], at: datetime,
                     where: str) -> str:
    """How the entry's advisory_revision stands against its advisory at `at` (the
    revision then current: the newest of its revision_history dated no later, else its
    tracking version); InputError when the advisory is not among those given or the entry
    was decided on another revision (a decision on a superseded revision is re-decided,
    never signed)."""
    if not entry.advisory:
        return "no advisory named: the entry's CVEs are accepted as listed"
    tracking = trackings.get(entry.advisory)
    if tracking is None:
        raise InputError(f"{where}: {entry.advisory} is not among the advisories given "
                         "(--advisories): its revision cannot be checked; nothing signed")
    then = [r for r in tracking.history if r.date <= at]
    current = then[-1].number if then else tracking.version
    if current != entry.advisory_revision:
        newer = [r for r in tracking.history if r.number == current]
        what = f" ({newer[0].date.date().isoformat()}: {clip(newer[0].summary)})" \
            if newer and newer[0].summary else ""
        raise InputError(f"{where}: decided on revision {entry.advisory_revision} of "
                         f"{entry.advisory}, which was at revision {current}{what} on "
                         f"{at.date().isoformat()}: re-decide on the current revision "
                         "(advisory_revision) first; nothing signed")
    return f"advisory {entry.advisory} at revision {current} on {at.date().isoformat()}, " \
           "as decided on"


def _with_acceptance(raw: bytes, index: int, document: dict) -> bytes:
    """The register text with entries[index].accepted set from the signed document,
    comments and layout kept."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.util import load_yaml_guess_indent

    text = raw.decode("utf-8")
    _, indent, offset = load_yaml_guess_indent(text)  # keep the file's own indentation
    yaml = YAML()  # round trip
    yaml.width = 4096
    yaml.preserve_quotes = True
    indent, offset = indent or 2, offset or 0  # "  - asset:" is sequence 4, offset 2
    yaml.indent(mapping=max(2, indent - offset), sequence=indent, offset=offset)
    data = yaml.load(text)
    accepted = CommentedMap()
    for field in ("by", "role", "at", "key", "signature"):
        accepted[field] = document[field]
    data["entries"][index]["accepted"] = accepted
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue().encode("utf-8")
