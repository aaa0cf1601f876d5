"""`otpatch modules [NAME]`: each registered module's documentation, read from its declarations."""
from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap
from collections.abc import Mapping
from typing import Any

from otpatch.modules import registry
from otpatch.modules.contract.errors import InputError
from otpatch.modules.contract.module import ANY_ASPECT
from otpatch.modules.schema_defs import DURATION

WIDTH = 88  # where the detail's prose wraps
TYPE_WORDS = {"array": "list", "boolean": "true or false"}
PLURAL = re.compile(r"\b(string|integer|number|object|list)\b")  # "list of integers"
NON_EMPTY = ("minLength", "minItems")  # a bound of 1 reads "non-empty"
BOUNDS = (("minimum", ">= {}"), ("exclusiveMinimum", "> {}"), ("maximum", "<= {}"),
          ("exclusiveMaximum", "< {}"), ("minLength", "at least {} characters"),
          ("maxLength", "at most {} characters"), ("minItems", "at least {} items"),
          ("maxItems", "at most {} items"), ("pattern", "matching {}"))
MARKS = {  # the engine's schema markers, in words
    "x-otpatch-target": lambda v: "the name of a playbook target",
    "x-otpatch-param": lambda v: f"the name of a {v} param" if isinstance(v, str)
                                 else "the name of a param",
    "x-otpatch-image": lambda v: "a firmware param's value, written {{ params.NAME }}",
}
REAL_DEVICE = {  # what `on_real_device()` means, as the detail says it
    "none": "none: it sends nothing to any device",
    "sourced": "sourced: only interfaces a public source documents (see Sources)",
    "guided": "guided: on a host that is no simulator a person performs the change in the "
              "vendor's tool and attests it, then the step reads back through public "
              "interfaces (see Sources)",
    "site": "site: the site's own automation; its interfaces are the site's to stand behind",
    "simulator": "simulator: the otpatch simulator's own interface, refused on a real device "
                 "(`otpatch validate -i` reports such a step: simulator-interface)",
}


def register(sub: Any) -> None:
    """Add `modules [NAME] [--json]` to the CLI's sub-parsers."""
    p = sub.add_parser("modules", help="list the modules a playbook can call, or document one")
    p.add_argument("name", nargs="?", metavar="NAME", help="a module name, e.g. m580.status")
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(func=modules_command)


def modules_command(args: Any) -> int:
    """Print the module list, or one module's documentation; InputError for an unknown name."""
    if args.name is None:
        rows = [summary(name, cls) for name, cls in sorted(registry.modules().items())]
        return _show({"modules": rows}, args.json, lambda: format_list(rows))
    try:
        cls = registry.get(args.name)
    except registry.UnknownModule as e:
        raise InputError(e.message) from None
    doc = module_doc(cls)
    return _show(doc, args.json, lambda: format_detail(doc))


# -- what is said about a module (the text and the JSON say the same) ---------------------

def summary(name: str, cls: Any) -> dict[str, Any]:
    """One module's row of the list."""
    first_line = (cls.doc.strip().splitlines() or [""])[0]
    return {"name": name, "changes_device": cls.changes_device,
            "changes": list(cls.changed_aspects()), "supports_dry_run": cls.supports_dry_run,
            "real_device": cls.on_real_device(),
            "summary": re.split(r"(?<=[.!?])\s+(?=[A-Z`'\"])", first_line, maxsplit=1)[0]}


def module_doc(cls: Any) -> dict[str, Any]:
    """A module's full documentation."""
    return {"name": cls.name, "doc": cls.doc.strip(),
            "arguments": arguments(cls.args_schema),
            "other_arguments": other_arguments(cls.args_schema),
            "supports_dry_run": cls.supports_dry_run, "changes_device": cls.changes_device,
            "reaches_device": cls.reaches_device, "replayable": cls.replayable,
            "changes": list(cls.changed_aspects()),
            "verifies": {aspect: list(needs) for aspect, needs in cls.verifies.items()},
            "read_back_doc": cls.read_back_doc, "real_device": cls.on_real_device(),
            "sources": list(cls.sources)}


def arguments(schema: Mapping[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Each declared argument, in schema order; an object's own keys follow it as a.b."""
    required = set(schema.get("required", ()))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        rows.append(_argument(prefix + name, prop, name in required))
        if isinstance(prop.get("properties"), Mapping):
            rows += arguments(prop, f"{prefix}{name}.")
    return rows


def _argument(name: str, prop: Mapping[str, Any], required: bool) -> dict[str, Any]:
    words = [kind(prop)] + [say(prop[key]) for key, say in MARKS.items() if prop.get(key)]
    row = {"name": name, "required": required, "type": "; ".join(words)}
    if "default" in prop:
        row["default"] = prop["default"]
    if prop.get("description") and prop["description"] != DURATION["description"]:
        row["description"] = prop["description"]  # the shared duration words are in `type`
    return row


def kind(prop: Mapping[str, Any]) -> str:
    """What values an argument takes, in words (from type, enum, const, oneOf, bounds)."""
    if prop.get("x-otpatch-duration"):
        return DURATION["description"]
    if "const" in prop or len(prop.get("enum", ())) == 1:
        return f"exactly {_shown(prop['const'] if 'const' in prop else prop['enum'][0])}"
    if "enum" in prop:
        return "one of " + ", ".join(_shown(v) for v in prop["enum"])
    for key in ("oneOf", "anyOf"):
        if key in prop:
            return " or ".join(kind(branch) for branch in prop[key])
    types = prop.get("type", ())
    types = [types] if isinstance(types, str) else list(types)
    words = " or ".join(TYPE_WORDS.get(t, t) for t in types) or "any value"
    if isinstance(prop.get("items"), Mapping):
        words = "list of " + PLURAL.sub(r"\1s", kind(prop["items"]), count=1)
    return _bounded(words, prop)


def _bounded(words: str, prop: Mapping[str, Any]) -> str:
    skip = {key for key in NON_EMPTY if prop.get(key) == 1}
    words, bits = (f"non-empty {words}" if skip else words), []
    if "minimum" in prop and "maximum" in prop:
        bits, skip = [f"{prop['minimum']} to {prop['maximum']}"], skip | {"minimum", "maximum"}
    bits += [text.format(prop[key]) for key, text in BOUNDS if key in prop and key not in skip]
    if prop.get("uniqueItems"):
        bits.append("no repeats")
    return f"{words} ({', '.join(bits)})" if bits else words


def other_arguments(schema: Mapping[str, Any]) -> str | None:
    """What the schema accepts beyond its declared arguments (None: nothing)."""
    if schema.get("additionalProperties") is False:
        return None
    if schema.get("properties"):
        return "other argument names are accepted too"
    pattern = schema.get("propertyNames", {}).get("pattern")
    names = f"any argument names matching {pattern}" if pattern else "any argument names"
    least = schema.get("minProperties")
    return names + (f", at least {least}" if least else "") + ", each of any value"


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# -- text --------------------------------------------------------------------------------

def format_list(rows: list[dict[str, Any]]) -> str:
    """One aligned line per module; on a terminal the summary is cut to its width."""
    table = [("MODULE", "CHANGES DEVICE", "DRY RUN", "REAL DEVICE", "SUMMARY")] + [
        (r["name"], _changes(r["changes"], brief=True),
         "yes" if r["supports_dry_run"] else "no", r["real_device"], r["summary"])
        for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    room = shutil.get_terminal_size().columns - sum(widths) - 8 if sys.stdout.isatty() else 0
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)) + "  " +
                     _cut(line[4], room) for line in table)


def format_detail(doc: dict[str, Any]) -> str:
    """A module's documentation: its doc, its arguments, its contract with the engine."""
    paragraphs = [_wrapped("  ", p) for p in re.split(r"\n\s*\n", doc["doc"])]
    out = [doc["name"], "", "\n\n".join(paragraphs), "", "Arguments"]
    out += _argument_lines(doc["arguments"])
    if doc["other_arguments"] or not doc["arguments"]:
        out.append(_wrapped("  ", doc["other_arguments"] or "none"))
    out += ["", "Contract"] + [_wrapped(f"  {label:<16}", text)
                               for label, text in _contract(doc)]
    if doc["sources"]:
        out += ["", "Sources"] + [_wrapped("  - ", source) for source in doc["sources"]]
    return "\n".join(out)


def _argument_lines(rows: list[dict[str, Any]]) -> list[str]:
    width = max((len(r["name"]) for r in rows), default=0)
    out = []
    for r in rows:
        default = f"; default {_shown(r['default'])}" if "default" in r else ""
        head = f"  {r['name']:<{width}}  {'required' if r['required'] else 'optional'}  "
        out.append(_wrapped(head, r["type"] + default))
        if "description" in r:
            out.append(_wrapped(" " * (width + 6), r["description"]))
    return out


def _contract(doc: dict[str, Any]) -> list[tuple[str, str]]:
    reaches = "yes" if doc["reaches_device"] else ("no: sends nothing to a device (files, "
                                                   "facts, a person, or the inventory's "
                                                   "record of its target)")
    replay = ("yes: acts on nothing outside the run; after a crash it simply runs again"
              if doc["replayable"] else "no")
    dry_run = "supported" if doc["supports_dry_run"] else "no: a dry run does not call it"
    return [("dry run", dry_run),
            ("changes device", _changes(doc["changes"])), ("reaches device", reaches),
            ("replayable", replay), ("verifies", _verifies(doc["verifies"])),
            ("after a crash", doc["read_back_doc"]),
            ("real device", REAL_DEVICE.get(doc["real_device"], doc["real_device"]))]


def _changes(aspects: list[str], brief: bool = False) -> str:
    if not aspects:
        return "no"
    if aspects == [ANY_ASPECT] and not brief:
        return f"yes: {ANY_ASPECT} (any aspect: the module names none)"
    return "yes: " + ", ".join(aspects)


def _verifies(verifies: Mapping[str, list[str]]) -> str:
    if not verifies:
        return "nothing: it reads nothing back to check"
    return "; ".join(f"{aspect}: " + (f"when {' or '.join(needs)} is given" if needs
                                       else "always") for aspect, needs in verifies.items())


def _wrapped(head: str, text: str) -> str:
    return textwrap.fill(text, max(WIDTH, len(head) + 40), initial_indent=head,
                         subsequent_indent=" " * len(head), break_on_hyphens=False,
                         break_long_words=False)  # a pattern stays whole


def _cut(text: str, room: int) -> str:
    """`text`, or as much of it as `room` characters hold (0: no limit)."""
    return text if room <= 0 or len(text) <= room else text[:max(room - 1, 20)] + "…"


def _show(doc: Any, as_json: bool, text: Any) -> int:
    """Print `doc` as JSON, or the text `text()` makes of it."""
    if as_json:
        json.dump(doc, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        print(text())
    return 0
