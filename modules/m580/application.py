"""m580.application_backup: the CPU's application saved as part of the as-found, in the run's
change store, so a rollback across 4.20 (the special downgrade erases it: FAQ000272937) can
put it back. And what the application modules share: where a backup is kept and found."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.attest import attested
from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.errors import InputError
from otpatch.modules.contract.files import read_regular
from otpatch.modules.contract.module import Module, Result
from otpatch.modules.contract.platform import create_private, on_windows
from otpatch.modules.m580 import appstore
from otpatch.modules.m580.appobject import checksum_text, crc32
from otpatch.modules.m580.common import driver, schema
from otpatch.modules.m580.driver import CIP_IDENTITY_SOURCE, FC43_SOURCE, M580Driver
from otpatch.modules.m580.engineering_link import ARCHIVE_FILES, FAQ000272937
from otpatch.modules.m580.guided import application_name, is_guided, read_cpu
from otpatch.modules.m580.transfer_args import ROLE, role_of
from otpatch.modules.schema_defs import LABEL, SHA256

FOLDER = "m580"  # <run_dir>/m580/: the application backups of the run
ARCHIVE_LIMIT = 512 * 1024 * 1024  # an application archive read back at most this large
DEFAULT_LABEL = "as_found"
LABEL_ARG = {**LABEL, "default": DEFAULT_LABEL,
             "description": "names the backup in the facts (default as_found)"}
FC43_APPLICATION_NAME = (
    "Modbus Application Protocol Specification V1.1b3, section 6.21, object 0x06 "
    "UserApplicationName (a regular object, optional: a device may not answer it), "
    "https://modbus.org/docs/Modbus_Application_Protocol_V1_1b3.pdf")
SOURCES = (ARCHIVE_FILES, FAQ000272937, FC43_APPLICATION_NAME, FC43_SOURCE,
           CIP_IDENTITY_SOURCE)


# A stored backup put back instead of the run's own (the restore test of `otpatch backup`):
# its file, and the SHA-256 it must still have. Both or neither.
ARCHIVE_ARGS = {
    "archive": {"type": "string", "minLength": 1,
                "description": "the file of a stored application backup (otpatch backup) to "
                               "use instead of the one m580.application_backup took in this "
                               "run; `sha256` with it"},
    "sha256": {**SHA256, "description": "the SHA-256 the `archive` file must have"},
    "name": {"type": "string", "maxLength": 64,
             "description": "with `archive`: the application's name as its backup recorded "
                            "it (FC 43 object 0x06), compared where the CPU shows one"}}
ARCHIVE_PAIR = {"archive": ["sha256"], "sha256": ["archive"], "name": ["archive"]}


def label_of(args: Mapping[str, Any]) -> str:
    return str(args.get("label") or DEFAULT_LABEL)


def stamp(ctx: Any) -> str:
    """The run clock's now as 20261126T014500Z (virtual in a dry run), for file names."""
    return datetime.fromtimestamp(ctx.clock.now(), timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def save_private(folder: Path, name: str, data: bytes) -> Path:
    """A new file (never over an existing one: -2, -3 ... appended), owner-only."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix, n = Path(name).stem, Path(name).suffix, 1
    while True:
        path = folder / (name if n == 1 else f"{stem}-{n}{suffix}")
        try:
            fd = create_private(path)
            break
        except FileExistsError:
            n += 1
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return path


def recorded_backup(ctx: Any, target: str, label: str) -> Mapping[str, Any] | None:
    """The backup m580.application_backup recorded for the target under `label`."""
    facts = (getattr(ctx, "facts", None) or {}).get(target) or {}
    found = ((facts.get("application") or {}) if isinstance(facts, Mapping) else {}).get(label)
    return found if isinstance(found, Mapping) else None


def backup_bytes(ctx: Any, target: str, label: str, who: str,
                 args: Mapping[str, Any] | None = None
                 ) -> tuple[Mapping[str, Any], bytes] | str:
    """(the recorded backup, its file's bytes with the SHA-256 recorded), or why not. With
    `archive` in args: that stored file instead, checked against the `sha256` given."""
    if args and args.get("archive"):
        return stored_archive(args)
    backup = recorded_backup(ctx, target, label)
    if backup is None:
        return (f"no application backup labelled {label} for {who}: run "
                "m580.application_backup first")
    try:
        data = read_regular(str(backup.get("path", "")), ARCHIVE_LIMIT, "application backup")
    except InputError as e:  # gone, unreadable, too large
        return str(e)
    if sha256_hex(data) != backup.get("sha256"):
        return (f"the application backup {Path(backup['path']).name} changed since it was "
                f"saved: SHA-256 {sha256_hex(data)}, recorded {backup.get('sha256')}")
    return backup, data


def stored_archive(args: Mapping[str, Any]) -> tuple[Mapping[str, Any], bytes] | str:
    """The `archive` file as a backup: its bytes, which must hash to `sha256`, and what the
    simulator's CPU would show for it (the image's CRC-32; a real CPU's checksum is not
    publicly readable, so a guided step never compares it)."""
    try:
        data = read_regular(str(args["archive"]), ARCHIVE_LIMIT, "application backup")
    except InputError as e:
        return str(e)
    wanted, actual = str(args["sha256"]).lower().removeprefix("sha256:"), sha256_hex(data)
    if actual != wanted:
        return (f"the application backup {Path(args['archive']).name} has SHA-256 {actual}, "
                f"{wanted} was asked for: not used")
    return {"path": str(args["archive"]), "sha256": actual, "size": len(data),
            "name": str(args.get("name") or ""), "checksum": checksum_text(crc32(data)),
            "stored": True}, data


class ApplicationBackup(Module):
    name = "m580.application_backup"
    doc = ("As found: save the CPU's application in the run's change store (<run_dir>/m580/, "
           "owner-only), its SHA-256 in the facts and the journal, so a rollback can put it "
           "back (a special downgrade across 4.20 erases it: FAQ000272937). On a simulator "
           "the application image and its CRC-32 are read from the CPU (the simulator's "
           "application store) and checked against each other. On a real CPU a guided step: "
           "`role` (default operator) saves the application archive from EcoStruxure Control "
           "Expert (File > Save Archive, .STA) to the path the step names; the step waits "
           "(awaiting) until the file is there, then asks the person to attest the file's "
           "SHA-256. Facts: application.<label> {name (FC 43 object 0x06 where the CPU "
           "answers it), checksum (the CRC where the device shows one, else empty), path, "
           "sha256, size, source}.")
    args_schema = schema(label=LABEL_ARG, role=ROLE)
    real_device = "guided"
    sources = SOURCES

    def run(self, args, ctx) -> Result:
        drv = driver(ctx, args, self.name)
        if is_guided(drv):
            return self._guided(drv, args, ctx)
        store = appstore.for_simulator(drv, self.name)
        status = store.status()
        who = drv.host.name
        if not status.present:
            return Result(failed=True, msg=f"{who}: no application in the CPU (NOCONF): "
                                           "nothing to back up")
        image = store.upload(status.size)
        if crc32(image) != status.crc32:
            return Result(failed=True, msg=(
                f"{who}: the uploaded image's CRC-32 is {crc32(image):08x}, the CPU shows "
                f"{status.crc32:08x}: not saved"))
        label = label_of(args)
        path = save_private(Path(ctx.run_dir) / FOLDER, f"{who}-{label}-{stamp(ctx)}.app", image)
        return _saved(ctx, drv, label, path, image, name=status.name,
                      checksum=status.checksum,
                      source="the CPU (the simulator's application store, CIP class 0x66)")

    def _guided(self, drv: M580Driver, args, ctx) -> Result:
        """A real CPU: the person saves the archive from Control Expert where the step says;
        the file is hashed and its SHA-256 attested."""
        who, role, label = drv.host.name, role_of(args), label_of(args)
        before = read_cpu(drv)
        path = _incoming(ctx, who, label)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            return Result(awaiting=(
                f"{who}: {role}: in EcoStruxure Control Expert, connected to {who} (CIP "
                f"serial {before.serial_or(drv.host)}), upload the application from the CPU "
                f"and save its archive (File > Save Archive, .STA) as {path}; then resume the "
                "run"), msg=f"waiting for {path}")
        data = read_regular(path, ARCHIVE_LIMIT, "application archive")
        confirmed, record = attested(ctx, (
            f"{who} (CIP serial {before.serial_or(drv.host)}): {path.name} is the application "
            "archive I saved from EcoStruxure Control Expert, uploaded from this CPU for this "
            f"step; SHA-256 {sha256_hex(data)}"), role)
        if not confirmed:
            return Result(failed=True, msg=f"{record['person']} did not confirm that "
                                           f"{path.name} is {who}'s application: not recorded")
        if not on_windows():
            os.chmod(path, 0o600)
        return _saved(ctx, drv, label, path, data, name=application_name(drv), checksum="",
                      source="an EcoStruxure Control Expert archive a person saved (guided)",
                      attestation=record)


def _incoming(ctx: Any, who: str, label: str) -> Path:
    """Where the person saves the archive: named by host and label (and the state's visit
    from the second on, so a state entered again asks for a new file)."""
    visit = (getattr(ctx, "step_at", None) or {}).get("visit") or 1
    again = f"-v{visit}" if visit > 1 else ""
    return Path(ctx.run_dir) / FOLDER / f"{who}-{label}{again}.sta"


def _saved(ctx: Any, drv: M580Driver, label: str, path: Path, data: bytes, **what: Any
           ) -> Result:
    saved = {"name": what.pop("name"), "checksum": what.pop("checksum"), "path": str(path),
             "sha256": sha256_hex(data), "size": len(data), "label": label, **what}
    ctx.record("application_saved", {"host": drv.host.name, **saved})
    named = f" {saved['name']}" if saved["name"] else ""
    shown = f", {saved['checksum']}" if saved["checksum"] else ""
    return Result(facts={"application": {label: saved}}, msg=(
        f"{drv.host.name}: application{named} saved as {path.name}{shown}; SHA-256 "
        f"{saved['sha256']}"))
