"""Ansible-style argument templates: Jinja2's sandbox, strict undefined, native values.

A string that is exactly one expression (`"{{ params.firmware }}"`) renders to the value
itself (a number, a mapping, a firmware image); any other string renders to text."""
from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2 import sandbox
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from otpatch.modules.contract.errors import ExpressionError
from otpatch.modules.contract.values import is_template  # noqa: F401 (templating.is_template)

_SINGLE = re.compile(r"^\{\{(?P<expr>(?:(?!\}\}).)*)\}\}$", re.S)
MAX_OUTPUT = 1024 * 1024  # characters (or items) one template may render to: 1 MiB
MAX_INT_BITS = 4096  # an integer a template computes; 10**1000 needs 3,322
# Attributes a template must never name: Python's internals (`__class__`, `__globals__`,
# anything with a leading underscore) and what the sandbox itself refuses on functions,
# methods, generators and coroutines.
UNSAFE_ATTRIBUTES = frozenset({"mro"}) | sandbox.UNSAFE_FUNCTION_ATTRIBUTES \
    | sandbox.UNSAFE_METHOD_ATTRIBUTES | sandbox.UNSAFE_GENERATOR_ATTRIBUTES \
    | sandbox.UNSAFE_COROUTINE_ATTRIBUTES | sandbox.UNSAFE_ASYNC_GENERATOR_ATTRIBUTES


class TemplateProblem(ExpressionError):
    """A template that does not compile or does not render; message says why."""


def bounded_binop(operator: str, left: Any, right: Any) -> Any:
    """`left OPERATOR right` as Python computes it, refused (SecurityError) when the result
    would be larger than MAX_OUTPUT items or MAX_INT_BITS bits: `'a' * 10**9` is not built."""
    result_size = _result_size(operator, left, right)
    if result_size > MAX_OUTPUT:
        raise SecurityError(f"{operator!r} would make a value of about {result_size:,} items, "
                            f"past the template bound of {MAX_OUTPUT:,}")
    if _result_bits(operator, left, right) > MAX_INT_BITS:
        raise SecurityError(f"{operator!r} would make an integer of more than {MAX_INT_BITS} "
                            "bits, past the template bound")
    return sandbox.ImmutableSandboxedEnvironment.default_binop_table[operator](left, right)


_SIZED = (str, bytes, list, tuple)


def _result_size(operator: str, left: Any, right: Any) -> int:
    if operator == "*":
        seq, n = (left, right) if isinstance(left, _SIZED) else (right, left)
        if isinstance(seq, _SIZED) and isinstance(n, int) and not isinstance(n, bool):
            return len(seq) * max(n, 0)
    if operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
        return len(left) + len(right)
    return 0


def _result_bits(operator: str, left: Any, right: Any) -> int:
    if not (isinstance(left, int) and isinstance(right, int)):
        return 0
    if operator == "**":
        return 0 if abs(left) < 2 or right < 0 else left.bit_length() * right
    return left.bit_length() + right.bit_length() if operator == "*" else 0


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox whose `*`, `**` and `+` are bounded_binop; as intercepted
    operators they are never folded while compiling, so a constant cannot blow up validate."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%":  # `'%*s' % (10**9, x)`: a width is a size too
            _bounded_widths(right, "%")
            return super().call_binop(context, operator, left, right)
        return bounded_binop(operator, left, right)


def _bounded_widths(args: Any, what: str) -> None:
    """SecurityError when a number among a formatting call's arguments would pad past the
    template bound (center(10**9), indent(10**9), '%*s' % (10**9, x))."""
    values = args if isinstance(args, (tuple, list)) else (args,)
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT:
            raise SecurityError(f"{what}: a width of {value} is past the template bound of "
                                f"{MAX_OUTPUT:,}")


def _bounded_filter(name: str, filter_: Any) -> Any:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _bounded_widths(args[1:] + tuple(kwargs.values()), f"filter {name}")
        return filter_(*args, **kwargs)
    bounded.__wrapped__ = filter_
    for attr in ("jinja_pass_arg",):  # keep how Jinja passes the environment or context
        if hasattr(filter_, attr):
            setattr(bounded, attr, getattr(filter_, attr))
    return bounded


PADDING_FILTERS = ("center", "indent", "format", "truncate", "wordwrap")


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False,
                         keep_trailing_newline=True)
    for name in PADDING_FILTERS:
        env.filters[name] = _bounded_filter(name, env.filters[name])
    return env


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
    """Why a template would fail every run (its syntax, an attribute that leaves the
    sandbox, a constant past the size bound), or None when it compiles and stays bounded."""
    try:
        tree = environment().parse(text)
        _compiled(text)
    except TemplateSyntaxError as e:
        return f"template syntax: {e.message}"
    return _unsafe_attribute(tree) or _constant_too_large(tree)


def _unsafe_attribute(tree: nodes.Node) -> str | None:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", "")
        if isinstance(name, str) and (name.startswith("_") or name in UNSAFE_ATTRIBUTES):
            return f"template leaves the sandbox: attribute {name!r} is not allowed"
    return None


def _constant_too_large(tree: nodes.Node) -> str | None:
    """Each operator over constants computed here, bounded: what Jinja would have folded."""
    for node in tree.find_all(nodes.BinExpr):
        try:
            _constant(node)
        except SecurityError as e:
            return f"template too large: {e}"
        except (nodes.Impossible, ArithmeticError, TypeError, ValueError):
            continue
    return None


def _constant(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, (nodes.List, nodes.Tuple)):
        return [_constant(item) for item in node.items]
    if isinstance(node, nodes.Neg):
        return -_constant(node.node)
    if isinstance(node, nodes.BinExpr):
        return bounded_binop(node.operator, _constant(node.left), _constant(node.right))
    raise nodes.Impossible()


def _size(value: Any, budget: int = MAX_OUTPUT) -> int:
    """Items in a rendered value (characters of text, members of containers), counted
    only until the budget is spent."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, Mapping):
        value = [*value.keys(), *value.values()]
    if isinstance(value, (list, tuple, set, frozenset)):
        total = len(value)
        for item in value:
            if total > budget:
                break
            total += _size(item, budget - total)
        return total
    return 1


def _bounded_text(compiled: Any, namespace: Mapping[str, Any]) -> str:
    out, size = [], 0
    for piece in compiled.generate(**namespace):
        size += len(piece)
        if size > MAX_OUTPUT:
            raise SecurityError(f"renders to more than the bound of {MAX_OUTPUT:,} characters")
        out.append(piece)
    return "".join(out)


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
            if _size(out) > MAX_OUTPUT:
                raise SecurityError(f"renders to more than the bound of {MAX_OUTPUT:,} items")
            return out
        return _bounded_text(compiled, namespace)
    except TemplateSyntaxError as e:
        raise TemplateProblem(f"template syntax in {_shown(value)}: {e.message}") from e
    except (UndefinedError, SecurityError) as e:
        raise TemplateProblem(f"cannot render {_shown(value)}: {e.message or e}") from e
    except Exception as e:  # a user expression may raise anything (1/0, bad attribute)
        raise TemplateProblem(f"cannot render {_shown(value)}: {type(e).__name__}: "
                              f"{str(e)[:200]}") from e


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 80 else f"{text[:80]!r}..."


def evaluate(expression: str, namespace: Mapping[str, Any]) -> Any:
    """Evaluate a bare expression (an `assert` condition) in the namespace."""
    return render("{{ " + expression + " }}", namespace)
