"""Validate a parsed YAML document against one of schemas/*.json; every error a located Problem.

Two schema annotations shape messages, each applying to every error raised directly by the
subschema that carries it (so such subschemas are kept single-purpose):
`x-otpatch-message` (what the value should be) and `x-otpatch-rule` (a rule id other than
`schema`); `x-otpatch-allowed` words the allowed keys of an object in unknown-key errors."""
from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from otpatch.modules.contract.errors import Problem
from otpatch.modules.contract.yamlsrc import YamlSource, display_path

MAX_SHOWN = 60  # characters of a user's value quoted in a message


@lru_cache(maxsize=None)
def schema(name: str) -> dict:
    """The schema document `name` (e.g. "playbook"), from package otpatch.schemas."""
    text = resources.files("otpatch.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def validator(name: str) -> Any:
    """The compiled Draft 2020-12 validator of schema `name`, built once."""
    from jsonschema import Draft202012Validator

    document = schema(name)
    return Draft202012Validator(_inline_refs(document, document.get("$defs", {})))


def _inline_refs(node: Any, defs: dict, stack: tuple = ()) -> Any:
    """The schema with each bare `{"$ref": "#/$defs/X"}` replaced by X itself (recursive
    ones stay references): the same meaning, validated about twice as fast."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        name = ref.removeprefix("#/$defs/")
        if len(node) == 1 and ref.startswith("#/$defs/") and name in defs and ref not in stack:
            return _inline_refs(defs[name], defs, stack + (ref,))
        return {k: _inline_refs(v, defs, stack) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, defs, stack) for v in node]
    return node


def schema_problems(source: YamlSource, name: str) -> list[Problem]:
    """Every schema error of the document, located at the node it concerns."""
    problems: list[Problem] = []
    for err in validator(name).iter_errors(source.data):
        problems.extend(_problems(source, err))
    return sorted(set(problems), key=lambda p: (p.line, p.col, p.message))


def _problems(source: YamlSource, err: Any) -> list[Problem]:
    if err.validator in ("oneOf", "anyOf") and not _annotation(err, "message"):
        return _problems(source, _deepest(err))
    path = tuple(err.absolute_path)
    if err.validator in ("additionalProperties", "unevaluatedProperties"):
        return [_unknown_key(source, err, path, key) for key in _extra_keys(err)]
    if "propertyNames" in err.absolute_schema_path:
        path = path + (err.instance,)
        return [_problem(source, err, path, f"name {_show(err.instance)}: {_message(err)}")]
    return [_problem(source, err, path, _message(err))]


def _problem(source: YamlSource, err: Any, path: tuple, message: str) -> Problem:
    where = display_path(path) or "top level"
    rule = _annotation(err, "rule") or "schema"
    line, col = source.locate(path)
    return Problem(source.file, line, col, rule, f"{where}: {message}")


def _annotation(err: Any, what: str) -> str | None:
    sub = err.schema if isinstance(err.schema, dict) else {}
    return sub.get(f"x-otpatch-{what}")


def _deepest(err: Any) -> Any:
    """Of a oneOf/anyOf's alternatives, the error that went deepest into the value."""
    from jsonschema.exceptions import best_match

    return best_match(err.context) if err.context else err


def _extra_keys(err: Any) -> list[str]:
    sub = err.schema
    known = set(sub.get("properties", {}))
    patterns = [re.compile(p) for p in sub.get("patternProperties", {})]
    return [k for k in err.instance
            if k not in known and not any(p.search(k) for p in patterns)]


def _unknown_key(source: YamlSource, err: Any, path: tuple, key: str) -> Problem:
    allowed = err.schema.get("x-otpatch-allowed") or ", ".join(
        sorted(err.schema.get("properties", {}))) or "none"
    return _problem(source, err, path + (key,),
                    f"unknown key {_show(key)} (allowed: {allowed})")


def _message(err: Any) -> str:
    custom = _annotation(err, "message")
    if custom:
        secret = isinstance(err.schema, dict) and err.schema.get("writeOnly")
        shown = _is_scalar(err.instance) and not secret
        return f"{custom} (got {_show(err.instance)})" if shown else custom
    v, expected = err.validator, err.validator_value
    if v == "required":
        missing = [k for k in expected if k not in err.instance]
        return "missing required key " + ", ".join(_show(k) for k in missing)
    if v == "type":
        names = expected if isinstance(expected, list) else [expected]
        return f"expected {' or '.join(names)}, got {_type_name(err.instance)}" + (
            f" {_show(err.instance)}" if _is_scalar(err.instance) else "")
    if v == "enum":
        return f"must be one of {', '.join(map(str, expected))} (got {_show(err.instance)})"
    if v == "const":
        return f"must be {_show(expected)} (got {_show(err.instance)})"
    if v == "pattern":
        return f"{_show(err.instance)} does not match {expected}"
    return _shorten(err.message)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _type_name(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", bool: "a boolean",
             int: "an integer", float: "a number", type(None): "nothing (null)"}
    return names.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def _shorten(message: str) -> str:
    return message if len(message) <= 200 else message[:197] + "..."
