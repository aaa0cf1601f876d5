"""Read one YAML file a user wrote, safely, into plain data plus the position of every node.

Parsing is ruamel.yaml's composer (libyaml's, through ruamel.yaml.clib; pure Python where
that is missing), and this module builds the values itself from the node tree, so it alone
decides what a document may hold:

- scalars resolve by the YAML 1.2 core schema (`yes`, `on`, `2026-12-01` stay text);
  mapping keys are always text, exactly as written;
- only the standard tags (str, int, float, bool, null, map, seq) and merge keys (`<<`);
- duplicate keys, more than one document, a top level that is not a mapping, files over
  1 MiB, binary bytes and alias bombs ("billion laughs", recursive aliases) are refused with
  ONE located Problem, before anything else looks at the document.

Every refusal raises PlaybookError; `YamlSource.locate(path)` maps a path like
('states', 'lab_transfer', 'do', 0) to its (line, col), 1-based.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ruamel.yaml import YAML
from ruamel.yaml.composer import ComposerError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError

from otpatch.modules.contract.canonical import canonical_hash
from otpatch.modules.contract.errors import PlaybookError, Problem
from otpatch.modules.contract.files import open_regular
from otpatch.modules.contract.errors import Where

MAX_BYTES = 1024 * 1024
MAX_REPEATS = 100_000  # nodes built again through aliases; a billion-laughs document needs 10**9
MAX_DEPTH = 100

RULES = {
    "yaml-too-large": "the file is larger than 1 MiB",
    "yaml-binary": "the file is not UTF-8 text, or holds NUL or other control characters",
    "yaml-empty": "the document is empty or only comments",
    "yaml-syntax": "the YAML does not parse (or uses an unsupported tag or key)",
    "yaml-multi-document": "the file holds more than one YAML document",
    "yaml-not-mapping": "the top level is not a mapping of keys to values",
    "yaml-too-deep": f"nodes nested deeper than {MAX_DEPTH} levels",
    "yaml-alias-bomb": "anchors and aliases that expand past a safe bound, or refer to themselves",
    "duplicate-key": "the same key twice in one mapping",
}

_STR, _MAP, _SEQ = ("tag:yaml.org,2002:" + t for t in ("str", "map", "seq"))
_MERGE = "tag:yaml.org,2002:merge"


# ruamel.yaml's composer: libyaml's, through ruamel.yaml.clib (about ten times faster than
# the round-trip loader on a 500-state playbook); pure Python where the C part is missing.
# Its resolver is YAML 1.2's core schema, so `yes`, `on` and `2026-12-01` stay text.
_PURE = False


def _tag(node: Any) -> str:
    tag = node.tag
    return tag if isinstance(tag, str) else tag.value


class _Refused(Exception):
    def __init__(self, rule: str, message: str, mark: Any = None):
        super().__init__(message)
        self.rule, self.message = rule, message
        self.line, self.col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


@dataclass(frozen=True)
class YamlSource:
    """A parsed document: plain data (dicts, lists, scalars) and where each node stood."""

    file: str
    data: dict
    positions: dict  # path -> (key line, key col, value line, value col), 1-based

    @property
    def content_hash(self) -> str:
        """`sha256:` + SHA-256 of the canonical JSON of the data: comments and layout do not
        count, only what the document says."""
        return "sha256:" + canonical_hash(self.data)

    def locate(self, path: Iterable, *, value: bool = False) -> tuple[int, int]:
        """(line, col) of the node at path: a mapping entry's key (its value with
        value=True), a sequence item; the nearest existing ancestor when path is missing."""
        path = tuple(path)
        while path and path not in self.positions:
            path = path[:-1]
        if not path:
            return 1, 1
        kline, kcol, vline, vcol = self.positions[path]
        return (vline, vcol) if value else (kline, kcol)

    def where(self, path: Iterable, *, value: bool = False) -> Where:
        path = tuple(path)
        line, col = self.locate(path, value=value)
        return Where(self.file, line, col, display_path(path))

    def problem(self, path: Iterable, rule: str, message: str, *, value: bool = False
                ) -> Problem:
        line, col = self.locate(path, value=value)
        return Problem(self.file, line, col, rule, message)


def display_path(path: Iterable) -> str:
    """('states', 'x', 'do', 0, 'args') -> `states.x.do[0].args`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def read_yaml(path: str | Path) -> YamlSource:
    """Read and parse a YAML file whose top level is a mapping; PlaybookError otherwise."""
    file = str(path)
    try:
        with open_regular(path) as f:  # no FIFO, device or directory
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise PlaybookError([Problem(file, 1, 1, "yaml-unreadable",
                                     f"cannot read: {e.strerror or e}")]) from None
    return parse_yaml(raw, file)


def parse_yaml(raw: bytes, file: str) -> YamlSource:
    """Parse bytes as one YAML document (see the module docstring for what is refused)."""
    try:
        text = _decode(raw)
        node = _compose(text)
        data, positions = _Builder().build(node)
    except _Refused as r:
        raise PlaybookError([Problem(file, r.line, r.col, r.rule, r.message)]) from None
    return YamlSource(file, data, positions)


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise _Refused("yaml-too-large", f"larger than {MAX_BYTES // 1024} KiB: refused unread")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Refused("yaml-binary", f"not UTF-8 text (byte {e.start}): binary file?") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise _Refused("yaml-binary", f"NUL character on line {line}: binary file?")
    return text.removeprefix("\ufeff")


def _compose(text: str) -> Any:
    try:
        node = YAML(typ="safe", pure=_PURE).compose(text)
    except ComposerError as e:
        if "single document" in str(e.context):
            raise _Refused("yaml-multi-document", "more than one YAML document (---): "
                           "one file holds one document", e.problem_mark) from None
        raise _Refused("yaml-syntax", _marked_message(e), e.problem_mark) from None
    except MarkedYAMLError as e:
        raise _Refused("yaml-syntax", _marked_message(e), e.problem_mark) from None
    except ReaderError as e:
        raise _Refused("yaml-binary", f"character {e.character!r} is not allowed in YAML "
                                      "text") from None
    except YAMLError as e:
        raise _Refused("yaml-syntax", str(e).splitlines()[0]) from None
    except RecursionError:
        raise _Refused("yaml-too-deep", f"nested deeper than {MAX_DEPTH} levels") from None
    if node is None:
        raise _Refused("yaml-empty", "empty document: nothing but comments or whitespace")
    if _tag(node) != _MAP:
        kind = {_SEQ: "a list"}.get(_tag(node), "a single value")
        raise _Refused("yaml-not-mapping", f"the top level is {kind}; expected a mapping "
                                           "of keys to values", node.start_mark)
    return node


def _marked_message(e: Any) -> str:
    parts = [p for p in (e.context, e.problem) if p]
    return ": ".join(parts) or str(e).splitlines()[0]


class _Builder:
    """Plain values from a node tree, counting alias expansion and recording positions."""

    def __init__(self):
        self.positions: dict[tuple, tuple[int, int, int, int]] = {}
        self.built: set[int] = set()
        self.active: set[int] = set()
        self.repeats = 0

    def build(self, root: Any) -> tuple[dict, dict]:
        self.positions[()] = (1, 1, 1, 1)
        return self.value(root, (), 0), self.positions

    def value(self, node: Any, path: tuple, depth: int) -> Any:
        key = id(node)
        if key in self.active:
            raise _Refused("yaml-alias-bomb", "an alias refers to the node that contains it",
                           node.start_mark)
        if key in self.built:
            self.repeats += 1
            if self.repeats > MAX_REPEATS:
                raise _Refused("yaml-alias-bomb", "aliases expand to more than "
                               f"{MAX_REPEATS} nodes: refused (billion laughs?)",
                               node.start_mark)
        if depth > MAX_DEPTH:
            raise _Refused("yaml-too-deep", f"nested deeper than {MAX_DEPTH} levels",
                           node.start_mark)
        self.built.add(key)
        if isinstance(node, ScalarNode):
            return _scalar(node)
        self.active.add(key)
        try:
            if _tag(node) == _SEQ:
                return self.sequence(node, path, depth)
            if _tag(node) == _MAP:
                return self.mapping(node, path, depth)
            raise _Refused("yaml-syntax", f"unsupported tag {_tag(node)}", node.start_mark)
        finally:
            self.active.discard(key)

    def sequence(self, node: Any, path: tuple, depth: int) -> list:
        out = []
        for i, item in enumerate(node.value):
            line, col = item.start_mark.line + 1, item.start_mark.column + 1
            self.positions[path + (i,)] = (line, col, line, col)
            out.append(self.value(item, path + (i,), depth + 1))
        return out

    def mapping(self, node: Any, path: tuple, depth: int) -> dict:
        out: dict[str, Any] = {}
        merges = []
        for key_node, value_node in node.value:
            if _tag(key_node) == _MERGE:
                merges.append(value_node)
                continue
            key = _key(key_node)
            if key in out:
                first = self.positions[path + (key,)][0]
                raise _Refused("duplicate-key", f"duplicate key {key!r} (first on line "
                               f"{first})", key_node.start_mark)
            self.positions[path + (key,)] = _marks(key_node, value_node)
            out[key] = self.value(value_node, path + (key,), depth + 1)
        for merged in merges:
            self.merge(out, merged, path, depth)
        return out

    def merge(self, out: dict, node: Any, path: tuple, depth: int) -> None:
        """`<<: *base` or `<<: [*a, *b]`: keys written here win, then earlier merges."""
        sources = node.value if _tag(node) == _SEQ else [node]
        for source in sources:
            if _tag(source) != _MAP:
                raise _Refused("yaml-syntax", "a merge key (<<) takes a mapping or a list "
                               "of mappings", source.start_mark)
            for key_node, value_node in source.value:
                key = _key(key_node)
                if key not in out:
                    self.positions[path + (key,)] = _marks(key_node, value_node)
                    out[key] = self.value(value_node, path + (key,), depth + 1)


def _marks(key_node: Any, value_node: Any) -> tuple[int, int, int, int]:
    k, v = key_node.start_mark, value_node.start_mark
    return k.line + 1, k.column + 1, v.line + 1, v.column + 1


def _key(node: Any) -> str:
    if not isinstance(node, ScalarNode):
        raise _Refused("yaml-syntax", "a mapping key must be plain text, not a list or "
                                      "mapping", node.start_mark)
    return node.value


def _scalar(node: Any) -> Any:
    tag, text = _tag(node), node.value
    if tag == _STR or tag.endswith(":timestamp"):  # dates stay text, as YAML 1.2 core says
        return text
    if tag.endswith(":null"):
        return None
    if tag.endswith(":bool"):
        if text.lower() not in ("true", "false"):
            raise _Refused("yaml-syntax", f"{text!r} is not true or false", node.start_mark)
        return text.lower() == "true"
    if tag.endswith(":int"):
        return _int(text, node)
    if tag.endswith(":float"):
        return _float(text, node)
    raise _Refused("yaml-syntax", f"unsupported tag {tag}", node.start_mark)


_INT = re.compile(r"[-+]?(?:[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)", re.ASCII)
MAX_INT = 2 ** 63 - 1  # what SQLite and every device register count hold; no procedure needs more


def _int(text: str, node: Any) -> int:
    """Plain ASCII digits (or 0o / 0x), within 64 bits: no `1_000`, no `١٢٣`."""
    if not _INT.fullmatch(text) or len(text) > 24:
        raise _Refused("yaml-syntax", f"{_shown(text)} is not an integer (ASCII digits only, "
                       "no underscores, within 64 bits)", node.start_mark)
    value = int(text, 0) if text.lstrip("+-").startswith(("0o", "0x")) else int(text, 10)
    if abs(value) > MAX_INT:
        raise _Refused("yaml-syntax", f"{text} is not an integer within 64 bits",
                       node.start_mark)
    return value


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:40]!r}... ({len(text)} characters)"


def _float(text: str, node: Any) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan if text.lower().endswith((".inf", ".nan")) else None
        if value is None:
            raise _Refused("yaml-syntax", f"{_shown(text)} is not a number",
                           node.start_mark) from None
    if not math.isfinite(value):
        # JSON (and so the content hash) has no infinity or NaN; no procedure needs them
        raise _Refused("yaml-syntax", f"{_shown(text)}: infinity and NaN are not allowed",
                       node.start_mark)
    return value
