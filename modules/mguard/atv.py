"""The mGuard configuration profile (.atv) grammar: lexer, parser and writer.

Follows /work/shared/design/mguard-profile-format.md (evidence: GriffinPlus/mguard-config-tool's
lexer and grammar): `//` comments, `#name rest` pragmas (`#version` mandatory), double-quoted
strings that may span lines (escapes `\\"` and `\\\\`; any other backslash is kept as written),
`NAME = value` where value is a string, a value with metadata (`{ value = "no" access = ".." }`)
or a table (`{ attr = ".." { [ { rid = "id" } ] SETTING* } ... }`).

Profiles may carry pre-shared keys and private keys in clear text: nothing here puts a
string value into an error message or a repr."""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Iterator, Union


class AtvError(ValueError):
    """A profile that does not parse; one line: `source:line:col: message`."""

    def __init__(self, source: str, line: int, col: int, message: str):
        self.source, self.line, self.col, self.message = source, line, col, message
        super().__init__(f"{source}:{line}:{col}: {message}")


@dataclass
class Meta:
    """A value with metadata: lowercase keys only (value, uuid, access, rowref)."""

    attrs: dict[str, str] = field(repr=False)

    @property
    def value(self) -> str | None:
        return self.attrs.get("value")


@dataclass
class Row:
    """One table row: an optional row id and its own settings (which may be tables)."""

    rid: str | None
    settings: dict[str, "Value"] = field(repr=False)
    line: int = field(default=0, compare=False)  # where the row opens in its file (0: made here)


@dataclass
class Table:
    """A table setting: lowercase attributes, then rows."""

    attrs: dict[str, str] = field(repr=False)
    rows: list[Row]


Value = Union[str, Meta, Table]


@dataclass
class Document:
    """A parsed profile: pragmas in order, top-level settings in order."""

    pragmas: list[tuple[str, str]]
    settings: dict[str, Value] = field(repr=False)

    @property
    def version(self) -> str:
        return next(rest for name, rest in self.pragmas if name == "version")


def text_of(value: Value | None) -> str | None:
    """A setting's string, whether plain or carried in metadata; None for tables or absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, Meta):
        return value.value
    return None


# -- lexer ------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<comment>//[^\n]*)
  | (?P<pragma>\#[A-Za-z]+[^\n]*)
  | (?P<string>")
  | (?P<ident>[A-Za-z][A-Za-z0-9._]*)
  | (?P<punct>[={}])
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str  # pragma | string | ident | = | { | } | eof
    text: str = field(repr=False)
    line: int
    col: int


class _Lexer:
    def __init__(self, text: str, source: str):
        self.text, self.source, self.pos = text, source, 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def error(self, message: str, pos: int | None = None) -> AtvError:
        return AtvError(self.source, *self._where(self.pos if pos is None else pos), message)

    def tokens(self) -> Iterator[Token]:
        while self.pos < len(self.text):
            m = _TOKEN.match(self.text, self.pos)
            if not m:
                raise self.error(f"unexpected character {self.text[self.pos]!r}")
            kind, start = m.lastgroup, self.pos
            line, col = self._where(start)
            if kind == "string":
                yield Token("string", self._string(start), line, col)
                continue
            self.pos = m.end()
            if kind in ("ws", "comment"):
                continue
            text = m.group()
            yield Token(text if kind == "punct" else kind, text, line, col)
        yield Token("eof", "", *self._where(len(self.text)))

    def _where(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.line_starts, pos)
        return line, pos - self.line_starts[line - 1] + 1

    def _string(self, start: int) -> str:
        out, i = [], start + 1
        while i < len(self.text):
            ch = self.text[i]
            if ch == '"':
                self.pos = i + 1
                return "".join(out)
            if ch == "\\" and i + 1 < len(self.text):
                nxt = self.text[i + 1]
                out.append(nxt if nxt in '"\\' else ch + nxt)
                i += 2
                continue
            out.append(ch)
            i += 1
        raise self.error("unterminated string (opened here)", start)


# -- parser -----------------------------------------------------------------------------------

class _Parser:
    def __init__(self, text: str, source: str):
        self.lexer = _Lexer(text, source)
        self.source = source
        self.tokens = list(self.lexer.tokens())
        self.i = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def error(self, tok: Token, message: str) -> AtvError:
        return AtvError(self.source, tok.line, tok.col, message)

    def expect(self, kind: str, what: str) -> Token:
        tok = self.take()
        if tok.kind != kind:
            raise self.error(tok, f"expected {what}, found {_describe(tok)}")
        return tok

    def document(self) -> Document:
        pragmas: list[tuple[str, str]] = []
        settings: dict[str, Value] = {}
        seen: dict[str, Token] = {}
        while self.peek().kind != "eof":
            tok = self.peek()
            if tok.kind == "pragma":
                self.take()
                name, _, rest = tok.text[1:].partition(" ")
                pragmas.append((name, rest.strip()))
                continue
            self._setting_into(settings, seen, "a setting name or a #pragma")
        if not any(name == "version" for name, _ in pragmas):
            raise AtvError(self.source, 1, 1, "missing the mandatory #version pragma")
        return Document(pragmas, settings)

    def _setting_into(self, settings: dict, seen: dict, what: str) -> None:
        tok = self.take()
        if tok.kind != "ident":
            raise self.error(tok, f"expected {what}, found {_describe(tok)}")
        if tok.text in seen:
            first = seen[tok.text]
            raise self.error(tok, f"setting {tok.text} given twice (first at "
                                  f"{first.line}:{first.col})")
        self.expect("=", f"'=' after {tok.text}")
        seen[tok.text] = tok
        settings[tok.text] = self.value(tok.text)

    def value(self, name: str) -> Value:
        tok = self.take()
        if tok.kind == "string":
            return tok.text
        if tok.kind != "{":
            raise self.error(tok, f"expected a value for {name} (a \"string\" or {{ ... }}), "
                                  f"found {_describe(tok)}")
        attrs = self.attributes()
        rows = []
        while self.peek().kind == "{":
            rows.append(self.row())
        closing = self.peek()
        if closing.kind != "}":
            raise self.error(closing, f"expected '{{' (a row of {name}) or '}}', found "
                                      f"{_describe(closing)}")
        self.take()
        if attrs and not rows:
            return Meta(attrs)
        return Table(attrs, rows)

    def attributes(self) -> dict[str, str]:
        """Lowercase `key = "value"` pairs (metadata, table attributes, a row's id)."""
        attrs: dict[str, str] = {}
        while self.peek().kind == "ident" and self.peek().text[:1].islower():
            key = self.take()
            self.expect("=", f"'=' after {key.text}")
            attrs[key.text] = self.expect("string", f"a \"string\" for {key.text}").text
        return attrs

    def row(self) -> Row:
        opening = self.expect("{", "'{'")
        rid = None
        if self.peek().kind == "{":
            self.take()
            rid = self.attributes().get("rid")
            self.expect("}", "'}' closing the row id")
        settings: dict[str, Value] = {}
        seen: dict[str, Token] = {}
        while self.peek().kind != "}":
            if self.peek().kind == "eof":
                raise self.error(opening, "row opened here is not closed")
            self._setting_into(settings, seen, "a setting name or '}'")
        self.take()
        return Row(rid, settings, opening.line)


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "end of file"
    if tok.kind == "string":
        return "a string"  # never the string itself: it may be a key
    if tok.kind == "pragma":
        return "a #pragma"
    return repr(tok.text)


def parse(text: str, source: str = "<profile>") -> Document:
    """Parse profile text (CRLF read as LF); AtvError with source:line:col otherwise."""
    return _Parser(text.replace("\r\n", "\n"), source).document()


# -- writer -----------------------------------------------------------------------------------

def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_value(value: Value, indent: int) -> str:
    pad = "  " * (indent + 1)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Meta):
        return "{ " + " ".join(f"{k} = {_quote(v)}" for k, v in value.attrs.items()) + " }"
    lines = ["{"] + [f"{pad}{k} = {_quote(v)}" for k, v in value.attrs.items()]
    for row in value.rows:
        lines.append(f"{pad}{{")
        if row.rid is not None:
            lines.append(f"{pad}  {{ rid = {_quote(row.rid)} }}")
        lines.extend(_write_settings(row.settings, indent + 2))
        lines.append(f"{pad}}}")
    lines.append("  " * indent + "}")
    return "\n".join(lines)


def _write_settings(settings: dict[str, Value], indent: int) -> list[str]:
    pad = "  " * indent
    return [f"{pad}{name} = {_write_value(value, indent)}" for name, value in settings.items()]


def dump(doc: Document, header: str = "mGuard Configuration Profile") -> str:
    """The profile as text; parse(dump(doc)) equals doc."""
    lines = [f"// {header}"] + [f"#{name} {rest}".rstrip() for name, rest in doc.pragmas]
    lines += _write_settings(doc.settings, 0)
    lines.append("// End of configuration profile")
    return "\n".join(lines) + "\n"
