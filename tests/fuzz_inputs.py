"""Mutations for the fuzz test (tests/test_fuzz.py): a file's text with characters inserted,
deleted and replaced, or its parsed data restructured, as hypothesis strategies."""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

from hypothesis import strategies as st
from ruamel.yaml import YAML

SPECIAL = [":", "-", " ", "\n", "\t", "[", "]", "{", "}", ",", "&a", "*a", "!!binary", "|", ">",
           "'", '"', "#", "%", "@", "`", "?", "\\", "0", "9", ".", "e", "_", "\x00", "\ufeff",
           "\u2028", "\x85", "\udcff", "é", "١٢٣", "{{", "}}", "{%", "%}", "<<: *a", "---",
           "...", "~", "null", "1_000", "0x1f", "1e400", "-1", "9" * 40, "'a' * 10",
           "1" * 5000, "[" * 1500 + "]" * 1500, '{"a":' * 300 + "1" + "}" * 300]
INSERTED = st.sampled_from(SPECIAL) | st.text(max_size=6)
EDITS = st.lists(st.tuples(st.sampled_from(("insert", "delete", "replace")),
                           st.integers(0, 10**7), st.integers(1, 60), INSERTED),
                 min_size=1, max_size=5)


def edited(text: str, edits) -> str:
    """text with characters inserted, deleted and replaced at the drawn positions."""
    for op, where, length, piece in edits:
        i = where % (len(text) + 1)
        if op == "insert":
            text = text[:i] + piece + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + length:]
        else:
            text = text[:i] + piece + text[i + len(piece):]
    return text


# Values a hand-written file could hold, one class per failure otpatch must meet cleanly.
VALUES = [None, True, False, 0, -1, 1.5, 2**63, 10**40, "", " ", "x" * 20_000, "١٢٣", "1_000",
          "0o17", "NaN", "-inf", "9999-12-31", "0001-01-01", "2026-02-29", "1h30m", "-5m", "0s",
          "{{ params.nope }}", "{{ 1/0 }}", "{{ ''.__class__.__mro__ }}", "{% for %}", "../x",
          "/dev/null", "/proc/self/status", "a\x00b.yml", "firmware/a\x00.bin", "core.nope",
          "completed", "rolled_back", "lab",
          "production", [], {}, [None], {"": None}, {"waive": [{"rule": "x", "reason": ""}]}]
VALUES += ["1" * 400 + "s", "1e400", "1e308h", 1e308, "9" * 4000]  # durations
VALUES += ["{{ 'a' * 10**9 }}", "{{ range(10**9) | list }}", "{{ 'a' * 10**5 }}"]  # templates
# Stand-ins put into the text after dumping (the dumpers would recurse or refuse).
HUGE = {"__DEEP__": "[" * 1500 + "]" * 1500, "__DEEPMAP__": '{"a": ' * 400 + "1" + "}" * 400,
        "__BIGINT__": "1" * 5000,
        "__BRANCHES__": '{"category": "product_family", "name": "f", "branches": [' * 200
                        + '{"category": "product_name", "name": "p", "product": {"product_id":'
                          ' "P1", "name": "p"}}' + "]}" * 200}
VALUES += sorted(HUGE)
VALUE = st.sampled_from(VALUES) | st.integers() | st.text(max_size=12)
STRUCTURE = st.lists(st.tuples(st.sampled_from(("replace", "delete", "add", "wrap", "copy")),
                               st.integers(0, 10**6), VALUE), min_size=1, max_size=4)


def paths(node):
    """Every (container, key) in parsed data, outermost first."""
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, child in list(items):
        yield node, key
        yield from paths(child)


def restructured(data, edits):
    """data with values replaced, keys deleted or added, values wrapped in a list or copied
    to another place (ids, states and hosts meet their twins)."""
    for op, where, drawn in edits:
        value = copy.deepcopy(drawn)  # the drawn values are shared: a list must not hold itself
        spots = list(paths(data))
        if not spots:
            return value
        container, key = spots[where % len(spots)]
        if op == "replace":
            container[key] = value
        elif op == "delete":
            del container[key]
        elif op == "add" and isinstance(container, dict):
            container[str(value)[:20] or "x"] = value
        elif op == "add":
            container.insert(key, value)
        elif op == "wrap":
            container[key] = [container[key]]
        else:
            other, other_key = spots[(where * 7 + 3) % len(spots)]
            if other is not container or other_key != key:
                container[key] = json.loads(json.dumps(other[other_key], default=str))
    return data


def yaml_text(data) -> str:
    stream = io.StringIO()
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.dump(data, stream)
    return stream.getvalue()


def parsed(path: Path):
    """The file's data, as plain JSON-able values (dates as text)."""
    data = YAML(typ="safe", pure=True).load(path.read_text()) if path.suffix != ".json" \
        else json.loads(path.read_text())
    return json.loads(json.dumps(data, default=str))


def mutated(source: Path, text_edits, data_edits, *, as_json: bool = False) -> str:
    """A mutation of the file: its text edited, or its parsed data restructured."""
    if text_edits is not None:
        return edited(source.read_text(), text_edits)
    data = restructured(parsed(source), data_edits)
    text = json.dumps(data) if as_json else yaml_text(data)
    for stand_in, huge in HUGE.items():
        text = text.replace(f'"{stand_in}"', huge).replace(stand_in, huge)
    return text


def mutation(sources):
    """(source file, text edits or None for a structural change, structural edits)."""
    return st.tuples(st.sampled_from(sources), st.none() | EDITS, STRUCTURE)
