"""The base of every typed journal event (engine/events.py, engine/siteevents.py): the
Event class, the registry of kinds, and the payload checks. A module of its own so that the
runs' events and the site record's can both build on it without importing each other.

Typed journal events: one frozen dataclass per kind of entry, checked on write and on read.

The conductor writes events, never bare dicts; `decode` turns a journal entry back into its
event, so folding a run (record.py) and everything that reads the record (reports,
approvals) works on these types. A payload carries its schema version under "v" (entries
written before versions existed read as version 1). An entry that does not fit its type is
an EventError naming the field; the journal turns it into a JournalError naming the entry."""
from __future__ import annotations

import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Mapping


SCHEMA_VERSION = 1
VERSION_KEY = "v"
_JSON_TYPES = {str: (str,), int: (int,), float: (int, float), bool: (bool,), dict: (dict,),
               list: (list,)}


class EventError(ValueError):
    """A journal payload that does not fit its event type."""


@dataclass(frozen=True)
class Event:
    """Base of every journal event: its kind (the entry's event_type), SR 2.8 category, and
    the run clock when it happened (seconds; simulated in a dry run)."""

    kind: ClassVar[str] = ""
    category: ClassVar[str] = ""
    aliases: ClassVar[Mapping[str, str]] = {}  # field -> payload key, where they differ
    _checks: ClassVar[tuple] = ()
    elapsed: float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            KINDS[cls.kind] = cls

    def __post_init__(self) -> None:
        for name, types, optional in _checks_of(type(self)):
            value = getattr(self, name)
            if value is None and optional:
                continue
            if types and (not isinstance(value, types) or
                          (isinstance(value, bool) and bool not in types)):
                raise EventError(f"{self.kind}: {self.aliases.get(name, name)} must be "
                                 f"{_kind_name(types)}, not {type(value).__name__}")

    def outcome(self) -> str:
        """The entry's SR 2.8 result: success | failure | intent | refused | unknown | info."""
        return "info"

    def payload(self) -> dict[str, Any]:
        out = {key: getattr(self, name) for name, key in _keys_of(type(self))}
        out[VERSION_KEY] = SCHEMA_VERSION
        return out

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "Event":
        data = dict(payload)
        version = data.pop(VERSION_KEY, 1)
        if version != SCHEMA_VERSION:
            raise EventError(f"{cls.kind}: schema version {version!r}, this otpatch reads "
                             f"{SCHEMA_VERSION}")
        keys = {cls.aliases.get(f.name, f.name): f.name for f in fields(cls)}
        unknown = sorted(set(data) - set(keys))
        if unknown:
            raise EventError(f"{cls.kind}: unknown field(s) {', '.join(unknown)}")
        try:
            return cls(**{keys[k]: v for k, v in data.items()})
        except TypeError as e:  # a required field missing
            raise EventError(f"{cls.kind}: {_missing(e)}") from None


KINDS: dict[str, type[Event]] = {}
_KEYS: dict[type, tuple[tuple[str, str], ...]] = {}


def _keys_of(cls: type) -> tuple[tuple[str, str], ...]:
    """(field, payload key) per field, computed once per class."""
    keys = _KEYS.get(cls)
    if keys is None:
        keys = _KEYS[cls] = tuple((f.name, cls.aliases.get(f.name, f.name)) for f in fields(cls))
    return keys


def _checks_of(cls: type) -> tuple:
    """(field, accepted types, None allowed) per field, computed once per class."""
    checks = cls.__dict__.get("_checks")
    if not checks:
        hints = typing.get_type_hints(cls)
        checks = tuple((f.name, *_accepted(hints[f.name])) for f in fields(cls))
        cls._checks = checks
    return checks


def _accepted(hint: Any) -> tuple[tuple[type, ...], bool]:
    args = typing.get_args(hint)
    if hint is Any:
        return (), True
    if args and type(None) in args:  # X | None
        (inner,) = [a for a in args if a is not type(None)]
        return _accepted(inner)[0], True
    origin = typing.get_origin(hint) or hint
    return _JSON_TYPES.get(origin, (origin,)), False


def _kind_name(types: tuple[type, ...]) -> str:
    names = {str: "text", int: "an integer", float: "a number", bool: "true or false",
             dict: "an object", list: "a list"}
    return " or ".join(names.get(t, t.__name__) for t in types[:1] if t) or "a value"


def _missing(e: TypeError) -> str:
    text = str(e)
    return text[text.find("missing"):] if "missing" in text else text
