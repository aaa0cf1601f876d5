"""The site register (issue 11): the part of an inventory that says whom and what to trust,
signed by two distinct people whose keys are pinned at install (engine/registerkeys.py).

The register is the approvers (name, roles, public key), every host's stage and identity
(serial, part number, vendor, model, simulator), the journal hosts whose checkpoints are
trusted and the time policy: what an operator must not be able to change alone, to add
themselves as an approver or relabel a production PLC as lab. Firmware is left out, since
patching changes it. It is a canonical value (sorted, independent of YAML layout and
comments), hashed as RFC 8785 JSON; `inventory/lab.yml` is signed in
`inventory/lab.register.json`. A register counts when that file holds exactly the current
register and two signatures that verify, by keys pinned as holding ot_security_officer and
process_owner, of different people. Execute runs, `approve`, `approvals add` and `attest`
refuse anything else; a dry run may use an unsigned register and says so.

`check_register` is pure apart from reading those two files; its verdict is one line."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from otpatch.engine.registerdiff import differences, same
from otpatch.engine.registerkeys import UNSIGNED, PinnedKeys, RegisterUnsigned, load_pinned

KIND = "otpatch/site-register"
SIGNATURE_KIND = "otpatch/site-register-signature"
VERSION = 1
SIGNING_ROLES = ("ot_security_officer", "process_owner")
MAX_FILE = 4 << 20  # bytes of a signed register file
SHOWN = 3  # differences named in a refusal

__all__ = ["RegisterStatus", "RegisterUnsigned", "SignatureVerdict", "check_register",
           "require_register", "site_register", "register_hash", "register_file",
           "read_signed", "signed_document"]


# -- the register -------------------------------------------------------------------------

def site_register(inventory: Any) -> dict[str, Any]:
    """The register part of a loaded inventory, as plain, sorted JSON values."""
    from otpatch.engine.approvals import approver_key

    ts = inventory.time_sync
    return {
        "approvers": sorted(({"name": a.name, "roles": sorted(a.roles),
                              "public_key": approver_key(a)} for a in inventory.approvers),
                            key=lambda a: a["name"]),
        "hosts": [{"name": h.name, "stage": h.stage.value, "serial": h.serial,
                   "part_number": h.part_number, "vendor": h.vendor, "model": h.model,
                   "simulator": h.simulator}
                  for h in sorted(inventory.hosts.values(), key=lambda h: h.name)],
        "journal_hosts": sorted(({"name": j.name, "public_key": j.public_key}
                                 for j in inventory.journal_hosts), key=lambda j: j["name"]),
        "time_sync": {"required": ts.required, "max_error": ts.max_error} if ts else None,
    }


def register_hash(register: Any) -> str:
    from otpatch.engine.approvals import canonical
    from otpatch.modules.contract.canonical import sha256_hex

    return "sha256:" + sha256_hex(canonical(register))


def register_file(inventory_path: str | Path) -> Path:
    """Where an inventory's signed register sits: `lab.yml` -> `lab.register.json`."""
    path = Path(inventory_path)
    return path.with_name(f"{path.stem if path.suffix else path.name}.register.json")


def signature_body(reg_hash: str, signer: str, role: str, signed_at: str) -> dict[str, str]:
    """What a register signature signs (its RFC 8785 JSON)."""
    return {"kind": SIGNATURE_KIND, "register_hash": reg_hash, "signer": signer, "role": role,
            "signed_at": signed_at}


# -- the signed file ----------------------------------------------------------------------

def read_signed(path: Path) -> dict[str, Any] | None:
    """The signed register file at path, its shape checked; None if there is none;
    RegisterUnsigned for a file that cannot be read or is not a signed register."""
    from otpatch.modules.contract.errors import InputError
    from otpatch.modules.contract.files import read_regular

    if not path.exists() and not path.is_symlink():
        return None
    try:
        text = read_regular(path, MAX_FILE, "signed register").decode("utf-8")
        doc = json.loads(text, parse_constant=_no_constant)
    except InputError as e:
        raise RegisterUnsigned(str(e)) from None
    except UnicodeDecodeError:
        raise RegisterUnsigned(f"{path}: not UTF-8 text") from None
    except ValueError as e:
        raise RegisterUnsigned(f"{path}: not JSON ({str(e)[:120]})") from None
    if not (isinstance(doc, dict) and doc.get("kind") == KIND and doc.get("version") == VERSION
            and isinstance(doc.get("register"), dict)
            and isinstance(doc.get("signatures"), list)):
        raise RegisterUnsigned(f"{path}: not an otpatch site register (version {VERSION})")
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def signed_document(previous: dict | None, register: dict, key: Any, signer: str, role: str,
                    signed_at: str) -> tuple[dict[str, Any], int, int]:
    """The signed file with this signature added: (document, signatures dropped because they
    were over another register, the signer's own earlier ones replaced: one person, one
    signature)."""
    from otpatch.engine.approvals import canonical

    reg_hash = register_hash(register)
    older = list(previous["signatures"]) if previous else []
    kept = older if previous and same(previous["register"], register) else []
    mine = [s for s in kept if isinstance(s, dict)
            and (s.get("signer") == signer or s.get("public_key") == key.public_key)]
    body = signature_body(reg_hash, signer, role, signed_at)
    signature = {"signer": signer, "role": role, "public_key": key.public_key,
                 "signed_at": signed_at, "signature": key.sign(canonical(body))}
    doc = {"kind": KIND, "version": VERSION, "register": register, "register_hash": reg_hash,
           "signatures": [s for s in kept if s not in mine] + [signature]}
    return doc, len(older) - len(kept), len(mine)


# -- the verdict --------------------------------------------------------------------------

@dataclass(frozen=True)
class SignatureVerdict:
    """One signature in the file: whom it names, and whether it counts (if not, why)."""

    signer: str
    role: str
    public_key: str
    signed_at: str
    why: str = ""  # empty: it counts

    @property
    def counts(self) -> bool:
        return not self.why


@dataclass(frozen=True)
class RegisterStatus:
    """Whether an execute run may trust the inventory (`valid`), and if not, why (`reason`,
    one line starting "site register not signed: ")."""

    valid: bool
    reason: str
    hash: str | None  # the current register's; None without an inventory
    signers: tuple[str, ...] = ()  # the two people whose signatures make it valid
    note: str = ""
    pinned_keys: str | None = None
    protection: str = ""  # the pinned keys' protection, in words
    file: str | None = None  # the signed register file
    verdicts: tuple[SignatureVerdict, ...] = ()
    approvers: tuple[dict, ...] = ()  # the register's approvers: {name, roles, public_key}

    def record(self) -> dict[str, Any]:
        """What RunStarted's `register` field keeps of it: with the approvers, so the
        record names the person behind each signature (engine/report/) from the journal."""
        out = {"hash": self.hash, "signed": self.valid and self.hash is not None,
               "signers": list(self.signers), "pinned_keys": self.pinned_keys,
               "note": self.note or None, "reason": self.reason or None}
        if self.approvers:
            out["approvers"] = [dict(a) for a in self.approvers]
        return out


def check_register(inventory: Any, pinned_keys_path: Path | None) -> RegisterStatus:
    """The verdict on the inventory's register, its signed file and the pinned keys."""
    if inventory is None or inventory.path is None:
        return RegisterStatus(True, "", None, note="no inventory: the run trusts no approver, "
                              "host or journal host, so there is no register to sign",
                              pinned_keys=_shown(pinned_keys_path))
    current = site_register(inventory)
    base = {"hash": register_hash(current), "pinned_keys": _shown(pinned_keys_path),
            "file": str(register_file(inventory.path)),
            "approvers": tuple(current["approvers"])}
    pinned, trouble = _pinned(pinned_keys_path)
    extra = {"protection": pinned.protection if pinned else _words(trouble, pinned_keys_path),
             "note": pinned.note if pinned else ""}
    try:
        doc = read_signed(Path(base["file"]))
        if doc is not None:  # keys that cannot be trusted pin nobody
            extra["verdicts"] = _verdicts(doc, current, pinned or PinnedKeys(
                base["pinned_keys"] or "(none given)", (), ""))
        _same_register(doc, current, inventory.path, base["file"])
        if trouble:
            raise trouble
        signers = _two_people(base["file"], extra["verdicts"])
    except RegisterUnsigned as e:
        return RegisterStatus(False, str(e), **base, **extra)
    return RegisterStatus(True, "", signers=signers, **base, **extra)


def require_register(inventory: Any, pinned_keys_path: Path | None,
                     mode: str) -> RegisterStatus:
    """check_register; for an execute run, RegisterUnsigned (exit 2) unless it is valid."""
    status = check_register(inventory, pinned_keys_path)
    if mode == "execute" and not status.valid:
        raise RegisterUnsigned(status.reason)
    return status


def _shown(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def _words(trouble: Any, path: Path | None) -> str:
    """Why the pinned keys cannot be used, without the refusal's own prefix."""
    return str(trouble).removeprefix(UNSIGNED).removeprefix(f"the pinned register keys {path} ")


def _pinned(path: Path | None) -> tuple[PinnedKeys | None, RegisterUnsigned | None]:
    try:
        return load_pinned(path), None
    except RegisterUnsigned as e:
        return None, e


def _same_register(doc: dict | None, current: dict, inventory: str, file: str) -> None:
    """RegisterUnsigned unless the file holds exactly the current register."""
    if doc is None:
        raise RegisterUnsigned(f"no signed register beside {inventory}: {file} does not exist "
                               f"(otpatch register sign -i {inventory} --key KEYFILE "
                               "--role ROLE)")
    if not same(doc["register"], current):
        changed = differences(doc["register"], current)
        more = f" and {len(changed) - SHOWN} more" if len(changed) > SHOWN else ""
        raise RegisterUnsigned(f"{file} was signed for another register: "
                               f"{'; '.join(changed[:SHOWN])}{more}")
    if doc.get("register_hash") != register_hash(current):
        raise RegisterUnsigned(f"{file}: its register_hash is not its register's (altered?)")


def _two_people(file: str, verdicts: tuple[SignatureVerdict, ...]) -> tuple[str, ...]:
    counting = [v for v in verdicts if v.counts]
    officers, owners = ([v for v in counting if v.role == r] for r in SIGNING_ROLES)
    for a in officers:
        for b in owners:
            if a.signer != b.signer and a.public_key != b.public_key:
                return a.signer, b.signer
    if officers and owners:
        raise RegisterUnsigned(f"{file}: {officers[0].signer} signed as both {SIGNING_ROLES[0]} "
                               f"and {SIGNING_ROLES[1]}: two distinct people must sign")
    missing = [r for r, found in zip(SIGNING_ROLES, (officers, owners)) if not found]
    said = "; ".join(f"{v.signer} as {v.role}: {v.why or 'counts'}" for v in verdicts)
    raise RegisterUnsigned(f"{file} has no signature as {' or '.join(missing)} that counts"
                           + (f" ({said})" if said else " (it holds no signature)"))


def _verdicts(doc: dict, current: dict, pinned: PinnedKeys) -> tuple[SignatureVerdict, ...]:
    """Each signature's verdict; over another register than the current one, none counts."""
    reg_hash = register_hash(current) if same(doc["register"], current) else None
    return tuple(_verdict(s, reg_hash, pinned) for s in doc["signatures"])


def _verdict(sig: Any, reg_hash: str | None, pinned: PinnedKeys) -> SignatureVerdict:
    """Whether one signature counts: it verifies, over this register, by a pinned key whose
    holder it names, in a role pinned for them that signs registers."""
    from otpatch.engine.approvals import canonical
    from otpatch.engine.keys import signature_valid

    names = ("signer", "role", "public_key", "signed_at", "signature")
    if not isinstance(sig, dict) or not all(isinstance(sig.get(n), str) for n in names):
        return SignatureVerdict("?", "?", "", "", "not a signature (signer, role, public_key, "
                                "signed_at and signature are text)")
    verdict = SignatureVerdict(sig["signer"], sig["role"], sig["public_key"], sig["signed_at"])
    if reg_hash is None:
        return replace(verdict, why="over another register (the inventory changed since)")
    body = canonical(signature_body(reg_hash, verdict.signer, verdict.role, verdict.signed_at))
    if not signature_valid(verdict.public_key, sig["signature"], body):
        why = "the signature does not verify (altered or forged?)"
    else:
        why = _not_pinned(verdict, pinned)
    return SignatureVerdict(verdict.signer, verdict.role, verdict.public_key,
                            verdict.signed_at, why)


def _not_pinned(verdict: SignatureVerdict, pinned: PinnedKeys) -> str:
    """Why a verifying signature's key, name or role is not what the pinned keys say."""
    from otpatch.engine.keys import short

    person = pinned.by_key(verdict.public_key)
    if person is None:
        return f"the key {short(verdict.public_key)} is not pinned in {pinned.path}"
    if person.name != verdict.signer:
        return f"the key is pinned for {person.name}, not {verdict.signer}"
    if verdict.role not in person.roles:
        return (f"{person.name} is pinned without {verdict.role} (pinned roles: "
                f"{', '.join(person.roles)})")
    if verdict.role not in SIGNING_ROLES:
        return f"{verdict.role} does not sign a register ({' and '.join(SIGNING_ROLES)} do)"
    return ""
