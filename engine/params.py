"""Run parameters: the playbook's declared params, their defaults and `-e name=value`.

A `backup` param names a stored backup by its SHA-256 (or a prefix); `backups`, given by
the caller that knows OTPATCH_HOME (engine/runs.py), resolves it to the stored object's
path and what it is (engine/backup_index.py param_value); without it (`plan`) only its
form is checked."""
from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any, Callable, Mapping

from otpatch.modules.contract.errors import InputError, clip
from otpatch.engine.model import FirmwareImage, ParamSpec, Playbook
from otpatch.modules.contract.durations import parse_duration
from otpatch.modules.contract.yamlsrc import MAX_INT

MAX_VALUE = 4096  # characters of one -e value: a path, a name, a duration; never a document
_INT = re.compile(r"[-+]?[0-9]{1,19}", re.ASCII)


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`-e name=value` pairs as a dict; a pair without `=` is bad input."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"-e {clip(repr(pair))}: expected name=value")
        out[name.strip()] = value
    return out


def resolve(playbook: Playbook, given: Mapping[str, str], *,
            backups: Callable[[str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Typed values for every param, as plain JSON values; every problem reported at once."""
    problems, values = [], {}
    for name in given:
        if name not in playbook.params:
            known = ", ".join(sorted(playbook.params)) or "none"
            problems.append(f"-e {name}: the playbook declares no such param (known: {known})")
    for name, spec in playbook.params.items():
        try:
            values[name] = _value(spec, given.get(name), backups)
        except ValueError as e:
            problems.append(f"-e {name}: {e}")
    if problems:
        raise InputError("; ".join(problems))
    return values


def _integer(text: str) -> int:
    """ASCII digits with an optional sign, within 64 bits: Python's int() would also take
    `1_000`, ` 12 ` and `١٢٣`."""
    if not _INT.fullmatch(text) or abs(int(text)) > MAX_INT:
        shown = repr(text) if len(text) <= 40 else f"{text[:40]!r}..."
        raise ValueError(f"{shown} is not an integer (ASCII digits only, within 64 bits)")
    return int(text)


def _value(spec: ParamSpec, text: str | None,
           backups: Callable[[str], dict[str, Any]] | None = None) -> Any:
    if text is None and spec.type == "backup" and spec.default is not None:
        text = str(spec.default)  # a default backup is resolved as one given with -e
    if text is None:
        if spec.default is None:
            if spec.required or spec.type in ("firmware", "backup"):
                raise ValueError("required, and no default: give it with -e")
            return None
        default = spec.default
        return asdict(default) if isinstance(default, FirmwareImage) else default
    if len(text) > MAX_VALUE:
        raise ValueError(f"a value of {len(text)} characters: longer than the bound of "
                         f"{MAX_VALUE}")
    if spec.type == "int":
        return _integer(text)
    if spec.type == "duration":
        return parse_duration(text)
    if spec.type == "firmware":
        # Only the file's path can be given at run time: the published hash is pinned in
        # the playbook, which is what was reviewed and approved.
        base = spec.default
        if base is None:
            raise ValueError("firmware param has no pinned algorithm and hash")
        return asdict(FirmwareImage(path=text, algorithm=base.algorithm, hash=base.hash))
    if spec.type == "backup":
        return backups(text) if backups is not None else _backup_form(text)
    return text


def _backup_form(text: str) -> dict[str, Any]:
    """A backup param checked for its form only (no store at hand: `plan`)."""
    from otpatch.engine.backupstore import plain

    try:
        return {"kind": "otpatch-backup", "sha256": plain(text, prefix_ok=True)}
    except InputError as e:
        raise ValueError(str(e)) from None
