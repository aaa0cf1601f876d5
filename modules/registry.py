"""The module registry: a plain dict, name -> class, and the argument check the runner and
the linter share."""
from __future__ import annotations

import importlib
import os
from functools import lru_cache
from collections.abc import Mapping
from typing import Any

from otpatch.engine.errors import InputError, clip
from otpatch.modules.ansible.playbook import AnsiblePlaybook
from otpatch.modules.base import Module
from otpatch.modules.core.assert_ import Assert
from otpatch.modules.core.attest import Attest
from otpatch.modules.core.set_fact import SetFact
from otpatch.modules.core.wait import Wait
from otpatch.modules import advisories, cip, firmware, m580, mguard, risk, syslog


class _Modules(dict):
    """name -> Module class. A device package names its classes as "module:Class"; each is
    imported the first time something asks for it, so loading a playbook imports only the
    drivers it uses."""

    def __getitem__(self, name: str) -> type[Module]:
        _ensure_plugins()
        value = dict.__getitem__(self, name)
        if isinstance(value, str):
            value = _resolve(value)
            dict.__setitem__(self, name, value)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default

    # Site plugins join on first use, not at import: an unimportable one is then an
    # InputError the CLI prints in one line, whatever imported the registry first.
    def __contains__(self, name: object) -> bool:
        _ensure_plugins()
        return dict.__contains__(self, name)

    def __iter__(self):
        _ensure_plugins()
        return dict.__iter__(self)

    def __len__(self) -> int:
        _ensure_plugins()
        return dict.__len__(self)

    def keys(self):
        _ensure_plugins()
        return dict.keys(self)

    def items(self):
        _ensure_plugins()
        return dict.items(self)

    def values(self):
        _ensure_plugins()
        return dict.values(self)


def _resolve(where: str) -> Any:
    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(module), attr)


MODULES: dict[str, type[Module]] = _Modules(
    (cls.name, cls) for cls in (Wait, Assert, SetFact, Attest, AnsiblePlaybook))
_PACKAGES = (firmware, m580, cip, mguard, syslog, risk, advisories)
for _package in _PACKAGES:
    MODULES.update(_package.MODULES)


def simulator_probe(host: Any) -> tuple[bool, str] | None:
    """Ask the device packages whether `host` answers as an otpatch simulator: None when no
    package knows this kind of host, else (answers as a simulator, what it answered)."""
    for package in _PACKAGES:
        for where in getattr(package, "SIMULATOR_PROBES", ()):
            answer = _resolve(where)(host)
            if answer is not None:
                return answer
    return None


PLUGINS_ENV = "OTPATCH_MODULE_PLUGINS"


_plugins_state: dict[str, Any] = {}  # "loaded": the spec loaded, or "error": why not


def _ensure_plugins() -> None:
    """Load OTPATCH_MODULE_PLUGINS once, the first time the registry is asked anything;
    raise the same InputError on every use when it cannot be loaded."""
    if "loaded" not in _plugins_state:
        _plugins_state["loaded"] = spec = os.environ.get(PLUGINS_ENV, "")
        try:
            _load_plugins(spec)
        except InputError as e:
            _plugins_state["error"] = e
    if "error" in _plugins_state:
        raise _plugins_state["error"]


def _load_plugins(spec: str) -> None:
    """Site-specific modules: OTPATCH_MODULE_PLUGINS names importable Python modules
    (comma-separated), each exporting MODULES, a list of Module classes."""
    for name in filter(None, (part.strip() for part in spec.split(","))):
        shown = clip(name, 200)
        try:
            plugin = importlib.import_module(name)
        except Exception as e:  # a relative name is a TypeError, a broken plugin anything
            raise InputError(f"{PLUGINS_ENV}: cannot import module {shown!r}: "
                             f"{type(e).__name__}: {clip(str(e), 200)}") from e
        for cls in getattr(plugin, "MODULES", ()):
            cls_name = getattr(cls, "name", None)
            if not isinstance(cls_name, str):
                raise InputError(f"{PLUGINS_ENV}: module {shown!r}: MODULES holds "
                                 f"{clip(repr(cls), 200)}, not a Module class with a name")
            if dict.__contains__(MODULES, cls_name) and dict.get(MODULES, cls_name) is not cls:
                raise InputError(f"{PLUGINS_ENV}: module {shown!r} redefines module "
                                 f"{cls_name!r}")
            dict.__setitem__(MODULES, cls_name, cls)


class UnknownModule(KeyError):
    def __init__(self, name: str):
        super().__init__(name)
        self.message = (f"unknown module {clip(repr(name))}; "
                        f"known: {', '.join(sorted(MODULES))}")

    def __str__(self) -> str:
        return self.message


def get(name: str) -> type[Module]:
    try:
        return MODULES[name]
    except KeyError:
        raise UnknownModule(name) from None


@lru_cache(maxsize=None)
def _validator(name: str):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(get(name).args_schema)


def arg_problems(name: str, args: Mapping[str, Any], *, templated_ok: bool = False
                 ) -> list[tuple[tuple, str]]:
    """(path inside args, message) for every argument error. With templated_ok (load time),
    values that are still templates are not type-checked: they are known only at run time."""
    from otpatch.engine.templating import is_template

    out = []
    for err in _validator(name).iter_errors(args):
        if templated_ok and _involves_template(err, is_template):
            continue
        out.append((tuple(err.absolute_path), err.message))
    return out


def _involves_template(err, is_template) -> bool:
    if is_template(err.instance):
        return True
    return any(is_template(sub.instance) for sub in (err.context or ()))


@lru_cache(maxsize=None)
def marked_args(name: str, marker: str) -> tuple[tuple[str, Any], ...]:
    """(argument name, marker value) for the module's arguments whose schema carries the
    marker: `x-otpatch-target` names a playbook target, `x-otpatch-param` a param (its value
    the param type required, e.g. "firmware")."""
    props = get(name).args_schema.get("properties", {})
    return tuple((k, v[marker]) for k, v in props.items()
                 if isinstance(v, Mapping) and v.get(marker))


def target_args(name: str) -> tuple[str, ...]:
    """Argument names that name a playbook target (checked against `targets` at load)."""
    return tuple(k for k, _ in marked_args(name, "x-otpatch-target"))


def param_args(name: str) -> tuple[tuple[str, Any], ...]:
    """(argument name, required param type or True) for arguments that name a param."""
    return marked_args(name, "x-otpatch-param")
