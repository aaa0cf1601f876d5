"""The registry: what the packages bring, built once by `load_registry(plugins)`.

A package (a sub-package of otpatch.modules, or a site plugin) declares in its `__init__`:
  MODULES            {name: "module:Class"} (imported when first used, so `validate` stays
                     fast) or a list of Module classes (plugins)
  SIMULATOR_PROBES   ["module:function"]: probe(host) -> None | (answers as a simulator, detail)
  SIMULATORS         ["module:function"]: lab() -> (fault names, start(hosts, faults, options))
  CLI                ["module:function"]: register(subparsers, host) adds its commands
  SCHEMAS            ["file.schema.json"]: the schemas in otpatch.schemas it owns
  SENDERS            {"siem": "module:function"}: send(host, port, app, msgid, params, text)
The built-in packages are listed in otpatch.modules.PACKAGES; nothing here names one.
Nothing happens at import: the CLI (and the API's caller) calls load_registry with the
site's plugins; until then `current()` is the built-in packages alone."""
from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from otpatch.modules.contract.errors import InputError, clip
from otpatch.modules.contract.module import Module
from otpatch.modules.contract.values import is_template

KINDS = ("MODULES", "SIMULATOR_PROBES", "SIMULATORS", "CLI", "SCHEMAS", "SENDERS")


_ABSENT = object()


class _Modules(dict):
    """name -> Module class; a "module:Class" value is imported on first use."""

    def __getitem__(self, name: str) -> type[Module]:
        value = dict.__getitem__(self, name)
        if isinstance(value, str):
            value = resolve(value)
            dict.__setitem__(self, name, value)
        return value

    def get(self, name: str, default: Any = None) -> Any:
        value = dict.get(self, name, _ABSENT)
        if value is _ABSENT:
            return default
        return self[name] if isinstance(value, str) else value

    def items(self):
        return ((name, self[name]) for name in self)

    def values(self):
        return (self[name] for name in self)


@dataclass
class Registry:
    """Every package's declarations, merged; `packages` in the order they were loaded."""

    packages: tuple[str, ...] = ()
    modules: _Modules = field(default_factory=_Modules)
    probes: list[str] = field(default_factory=list)
    simulators: list[str] = field(default_factory=list)
    cli: list[str] = field(default_factory=list)
    schemas: dict[str, str] = field(default_factory=dict)  # file -> package
    senders: dict[str, str] = field(default_factory=dict)

    def add(self, package: Any, name: str, label: str) -> None:
        """Merge one package's declarations; InputError naming it for a bad one."""
        for cls_name, where in _declared_modules(package, name, label):
            known = dict.get(self.modules, cls_name)
            if known is not None and known != where:
                raise InputError(f"{label}: module {clip(name)!r} redefines module {cls_name!r}")
            dict.__setitem__(self.modules, cls_name, where)
        self.probes += _strings(package, "SIMULATOR_PROBES", name, label)
        self.simulators += _strings(package, "SIMULATORS", name, label)
        self.cli += _strings(package, "CLI", name, label)
        self.schemas.update((s, name) for s in _strings(package, "SCHEMAS", name, label))
        self.senders.update(_mapping(package, "SENDERS", name, label))
        self.packages += (name,)


_current: Registry | None = None


def load_registry(plugins: Iterable[str] = (), *, label: str = "plugins") -> Registry:
    """The built-in packages and then each plugin (an importable Python module name), made
    the process's registry. `label` names where the plugin list came from in errors (the CLI
    passes OTPATCH_MODULE_PLUGINS): a plugin that cannot be imported or declares something
    malformed is one InputError line."""
    global _current
    from otpatch.modules import PACKAGES

    registry = Registry()
    for name in PACKAGES:
        registry.add(importlib.import_module(name), name, "otpatch.modules.PACKAGES")
    for name in filter(None, (str(p).strip() for p in plugins)):
        try:
            plugin = importlib.import_module(name)
        except Exception as e:  # a relative name is a TypeError, a broken plugin anything
            raise InputError(f"{label}: cannot import module {clip(name, 200)!r}: "
                             f"{type(e).__name__}: {clip(str(e), 200)}") from e
        registry.add(plugin, name, label)
    _current = registry
    return registry


def current() -> Registry:
    """The registry load_registry made; the built-in packages alone if it was never called."""
    return _current if _current is not None else load_registry()


def resolve(where: str) -> Any:
    """The object a "module:attribute" declaration names."""
    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(module), attr)


def _declared_modules(package: Any, name: str, label: str) -> list[tuple[str, Any]]:
    declared = getattr(package, "MODULES", {})
    if isinstance(declared, Mapping):
        return [(str(k), v) for k, v in declared.items()]
    out = []
    for cls in declared:
        cls_name = getattr(cls, "name", None)
        if not isinstance(cls_name, str):
            raise InputError(f"{label}: module {clip(name, 200)!r}: MODULES holds "
                             f"{clip(repr(cls), 200)}, not a Module class with a name")
        out.append((cls_name, cls))
    return out


def _strings(package: Any, kind: str, name: str, label: str) -> list[str]:
    value = getattr(package, kind, ())
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{label}: module {clip(name, 200)!r}: {kind} must be a list of "
                         "\"module:attribute\" strings")
    return list(value)


def _mapping(package: Any, kind: str, name: str, label: str) -> dict[str, str]:
    value = getattr(package, kind, {})
    if not isinstance(value, Mapping):
        raise InputError(f"{label}: module {clip(name, 200)!r}: {kind} must be a mapping")
    return {str(k): str(v) for k, v in value.items()}


# -- what the engine asks -----------------------------------------------------------------

def modules() -> _Modules:
    """name -> Module class, every package's."""
    return current().modules


class UnknownModule(KeyError):
    def __init__(self, name: str):
        super().__init__(name)
        self.message = (f"unknown module {clip(repr(name))}; "
                        f"known: {', '.join(sorted(modules()))}")

    def __str__(self) -> str:
        return self.message


def get(name: str) -> type[Module]:
    try:
        return modules()[name]
    except KeyError:
        raise UnknownModule(name) from None


def simulator_probe(host: Any) -> tuple[bool, str] | None:
    """Ask the device packages whether `host` answers as an otpatch simulator: None when no
    package knows this kind of host, else (answers as a simulator, what it answered)."""
    for where in current().probes:
        answer = resolve(where)(host)
        if answer is not None:
            return answer
    return None


def simulator_labs() -> list[tuple[frozenset[str], Any]]:
    """(fault names, start(hosts, faults, options)) of each package with simulators."""
    return [resolve(where)() for where in current().simulators]


def sender(kind: str) -> Any:
    """The function a package declared under SENDERS[kind] (None if none did)."""
    where = current().senders.get(kind)
    return resolve(where) if where else None


@lru_cache(maxsize=None)
def _validator(module: type[Module]):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(module.args_schema)


def arg_problems(name: str, args: Mapping[str, Any], *, templated_ok: bool = False
                 ) -> list[tuple[tuple, str]]:
    """(path inside args, message) for every argument error. With templated_ok (load time),
    values that are still templates are not type-checked: they are known only at run time."""
    out = []
    for err in _validator(get(name)).iter_errors(args):
        if templated_ok and _involves_template(err):
            continue
        out.append((tuple(err.absolute_path), err.message))
    return out


def _involves_template(err: Any) -> bool:
    if is_template(err.instance):
        return True
    return any(is_template(sub.instance) for sub in (err.context or ()))


@lru_cache(maxsize=None)
def _marked(module: type[Module], marker: str) -> tuple[tuple[str, Any], ...]:
    props = module.args_schema.get("properties", {})
    return tuple((k, v[marker]) for k, v in props.items()
                 if isinstance(v, Mapping) and v.get(marker))


def marked_args(name: str, marker: str) -> tuple[tuple[str, Any], ...]:
    """(argument name, marker value) for the module's arguments whose schema carries the
    marker: `x-otpatch-target` names a playbook target, `x-otpatch-param` a param (its value
    the param type required, e.g. "firmware")."""
    return _marked(get(name), marker)


def target_args(name: str) -> tuple[str, ...]:
    """Argument names that name a playbook target (checked against `targets` at load)."""
    return tuple(k for k, _ in marked_args(name, "x-otpatch-target"))


def param_args(name: str) -> tuple[tuple[str, Any], ...]:
    """(argument name, required param type or True) for arguments that name a param."""
    return marked_args(name, "x-otpatch-param")
