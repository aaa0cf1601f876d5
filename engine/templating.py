"""Ansible-style argument templates: Jinja2's sandbox, strict undefined, native values.

A string that is exactly one expression (`"{{ params.firmware }}"`) renders to the value
itself (a number, a mapping, a firmware image); any other string renders to text."""
from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

_SINGLE = re.compile(r"^\{\{(?P<expr>(?:(?!\}\}).)*)\}\}$", re.S)


class TemplateProblem(ValueError):
    """A template that does not compile or does not render; message says why."""


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                         keep_trailing_newline=True)


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


_PARAM_ONLY = re.compile(r"^\{\{\s*params\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*['\"]([^'\"]+)['\"]\s*\])"
                         r"\s*\}\}$")


def single_param(value: Any) -> str | None:
    """NAME when `value` is exactly `{{ params.NAME }}` (the whole param, untouched)."""
    m = _PARAM_ONLY.match(value) if isinstance(value, str) else None
    return (m.group(1) or m.group(2)) if m else None


@lru_cache(maxsize=4096)
def _compiled(text: str):
    env = environment()
    m = _SINGLE.match(text.strip())
    if m:
        return "expr", env.compile_expression(m.group("expr").strip(), undefined_to_none=False)
    return "text", env.from_string(text)


def check(text: str) -> str | None:
    """The syntax error of a template, or None when it compiles."""
    try:
        _compiled(text)
    except TemplateSyntaxError as e:
        return f"template syntax: {e.message}"
    return None


def render(value: Any, namespace: Mapping[str, Any]) -> Any:
    """Render every template in a nested value; raises TemplateProblem."""
    if isinstance(value, Mapping):
        return {k: render(v, namespace) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(v, namespace) for v in value]
    if not is_template(value):
        return value
    try:
        kind, compiled = _compiled(value)
        if kind == "expr":
            out = compiled(**namespace)
            if hasattr(out, "_undefined_name") or type(out).__name__ == "StrictUndefined":
                raise UndefinedError(f"{value!r} is undefined")
            return out
        return compiled.render(**namespace)
    except TemplateSyntaxError as e:
        raise TemplateProblem(f"template syntax in {value!r}: {e.message}") from e
    except (UndefinedError, SecurityError) as e:
        raise TemplateProblem(f"cannot render {value!r}: {e.message or e}") from e
    except Exception as e:  # a user expression may raise anything (1/0, bad attribute)
        raise TemplateProblem(f"cannot render {value!r}: {type(e).__name__}: {e}") from e


def evaluate(expression: str, namespace: Mapping[str, Any]) -> Any:
    """Evaluate a bare expression (an `assert` condition) in the namespace."""
    return render("{{ " + expression + " }}", namespace)
