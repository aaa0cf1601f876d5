"""Reading CSAF files: parsed, validated, typed; a file that cannot be used is skipped, with why."""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import accumulate
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.contract.errors import InputError
from otpatch.modules.advisories.model import (Advisory, AdvisoryScore, Remediation, Skipped,
                                              Vulnerability)
from otpatch.modules.advisories.products import TreeTooDeep, flatten
from otpatch.modules.advisories.verdicts import VerdictCache
from otpatch.modules.risk.due import in_range
from otpatch.modules.risk.scoring import RiskError

LOG = logging.getLogger(__name__)
MAX_JSON_DEPTH = 100  # a CSAF document nests about 12 deep; branches add two per level
MAX_INT_DIGITS = 20  # 64 bits; CSAF numbers are scores and counts
_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')  # strings are skipped whole
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # the same strings, matched faster
_NOT_BRACKETS = re.compile(r'[^\[\]{}]+')
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


@dataclass(frozen=True)
class Loaded:
    """The advisories read, the files skipped (with why) and notes on the rest."""

    advisories: tuple[Advisory, ...]
    skipped: tuple[Skipped, ...]
    files: int
    notes: tuple[str, ...] = ()


def advisory_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, and every *.json under the folders named (sorted, each once).
    InputError for a path that does not exist."""
    found: dict[Path, None] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.update(dict.fromkeys(sorted(p for p in path.rglob("*.json") if p.is_file())))
        elif path.is_file():
            found[path] = None
        else:
            raise InputError(f"advisories: {given}: no such file or folder")
    return list(found)


def load_advisories(paths: Iterable[str | Path], cache: str | Path | None = None) -> Loaded:
    """Every advisory under `paths`; broken files reported in `skipped`, never raised.

    `cache`: the SQLite file of verdicts (verdicts.py) by the SHA-256 of each file's bytes,
    so a file already checked is not validated again; None checks every file (no file
    written). Either way the result is the same."""
    files = advisory_files(paths)
    read, skipped = [], []
    with VerdictCache(cache) as verdicts:
        for path in files:
            result = load_file(path, verdicts)
            (skipped if isinstance(result, Skipped) else read).append(result)
    if cache is not None:
        LOG.debug("verdicts of %d file(s): %d from %s, %d computed", len(files),
                  verdicts.hits, cache, verdicts.misses)
    advisories, notes = _newest_revisions(read)
    notes += [f"{a.file}: {note}" for a in advisories for note in a.notes + a.warnings]
    return Loaded(tuple(advisories), tuple(skipped), len(files), tuple(notes))


def load_file(path: str | Path, verdicts: VerdictCache | None = None) -> Advisory | Skipped:
    """One advisory, or why the file cannot be used: unreadable, not JSON, not valid against
    the CSAF 2.0 schema, or failing a CSAF test that matching depends on (REFUSED_TESTS).
    The other failed CSAF tests become the advisory's `warnings`."""
    file = str(path)
    parsed = _parse(path)
    if isinstance(parsed, str):
        return Skipped(file, "$", parsed)
    data, document = parsed
    verdict = (verdicts or VerdictCache(None)).verdict(sha256_hex(data), document)
    if verdict.schema:
        first = verdict.schema[0]
        return Skipped(file, first.path, f"{_schema_label(first.path)}: {first.reason}",
                       more=len(verdict.schema) - 1)
    refused = verdict.conformance.refusals
    if refused:
        return Skipped(file, refused[0].path, f"{refused[0].label}: {refused[0].message}",
                       more=sum(t.more + 1 for t in verdict.conformance.failed) - 1)
    return _read(document, file, verdict.conformance.warnings)


def _parse(path: str | Path) -> tuple[bytes, Any] | str:
    """The file's bytes and its parsed JSON, or why it cannot be read as JSON."""
    try:
        data = Path(path).read_bytes()
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return f"cannot read the file: {e}"
    trouble = _too_deep(text)
    if trouble:
        return trouble
    try:
        return data, json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as e:
        return _json_trouble(text, e)
    except ValueError as e:  # _bounded_int's refusal
        return str(e)


def _read(document: dict, file: str, warnings: tuple[str, ...]) -> Advisory | Skipped:
    try:
        return read_advisory(document, file, warnings)
    except TreeTooDeep as e:
        return Skipped(file, e.path, str(e))
    except RiskError as e:
        return Skipped(file, "$.document.tracking", str(e))
    except ValueError as e:
        return Skipped(file, "$.document.tracking", f"unreadable date: {e}")


def _schema_label(path: str) -> str:
    """What a schema error is: inside a score's CVSS object it is CSAF test 6.1.8 (Invalid
    CVSS: validation against FIRST's CVSS schemas, which the CSAF schema includes)."""
    if re.search(r"\.scores\[\d+\]\.cvss_v[23]\b", path):
        return "CSAF 6.1.8 (Invalid CVSS): not valid against FIRST's CVSS schema"
    return "not valid CSAF 2.0"


def _too_deep(text: str) -> str | None:
    """Why the JSON text nests deeper than MAX_JSON_DEPTH (None: it does not), found
    before parsing: Python's parser and the schema check recurse once per level. The
    brackets outside strings are counted by regular expressions and `accumulate` (C speed);
    only a file that is too deep is scanned again, in Python, for the line to name."""
    brackets = _NOT_BRACKETS.sub("", _STRING.sub("", text))
    if max(accumulate(map(_STEP.__getitem__, brackets)), default=0) <= MAX_JSON_DEPTH:
        return None
    return _deep_at(text)


def _deep_at(text: str) -> str | None:
    depth = 0
    for m in _BRACKETS.finditer(text):
        token = m.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                line = text.count("\n", 0, m.start()) + 1
                return f"JSON nested deeper than {MAX_JSON_DEPTH} levels (line {line})"
        elif token in "]}":
            depth -= 1
    return None


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"a number of {len(text)} digits: more than the bound of "
                         f"{MAX_INT_DIGITS}")
    return int(text)


def _json_trouble(text: str, e: json.JSONDecodeError) -> str:
    where = f"line {e.lineno} column {e.colno}"
    if not text.strip():
        return "not JSON: the file is empty"
    if e.pos >= len(text.rstrip()) - 1 and text.lstrip()[:1] in "{[":
        return f"truncated JSON: the text ends at {where} before the document is complete"
    return f"not JSON: {e.msg} at {where}"


def read_advisory(document: dict, file: str = "", warnings: tuple[str, ...] = ()) -> Advisory:
    """The typed advisory of a schema-valid CSAF document; `warnings` are the CSAF tests it
    fails that matching does not depend on (conformance.py)."""
    doc = document["document"]
    tracking = doc["tracking"]
    products, notes = flatten(document)
    groups = {g["group_id"]: tuple(g["product_ids"])
              for g in (document.get("product_tree") or {}).get("product_groups") or ()}
    vulns = tuple(_vulnerability(v, f"$.vulnerabilities[{i}]", groups)
                  for i, v in enumerate(document.get("vulnerabilities") or ()))
    publisher = doc["publisher"]
    return Advisory(id=tracking["id"], title=doc["title"], file=file,
                    initial_release=_when(tracking["initial_release_date"]),
                    current_release=_when(tracking["current_release_date"]),
                    products=MappingProxyType(products), vulnerabilities=vulns,
                    notes=tuple(notes), warnings=tuple(warnings),
                    publisher=publisher["name"], publisher_namespace=publisher["namespace"])


def _when(text: str) -> datetime:
    """A CSAF date-time; one without an offset (the schema does not check) is UTC."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return in_range(when if when.tzinfo else when.replace(tzinfo=timezone.utc),
                    "the release date")


def _vulnerability(v: dict, path: str, groups: dict) -> Vulnerability:
    status = {k: tuple(ids) for k, ids in (v.get("product_status") or {}).items()}
    return Vulnerability(
        cve=v.get("cve", ""), title=v.get("title", ""), status=MappingProxyType(status),
        scores=tuple(s for score in v.get("scores") or () for s in _scores(score)),
        remediations=tuple(_remediation(r, groups) for r in v.get("remediations") or ()),
        path=path)


def _scores(score: dict) -> list[AdvisoryScore]:
    out = []
    for key in ("cvss_v3", "cvss_v2"):
        cvss = score.get(key)
        if cvss:
            out.append(AdvisoryScore(tuple(score["products"]), cvss["version"],
                                     cvss["vectorString"], cvss.get("baseScore")))
    return out


def _remediation(r: dict, groups: dict) -> Remediation:
    ids = list(r.get("product_ids") or ())
    for group in r.get("group_ids") or ():
        ids += groups.get(group, ())
    return Remediation(r["category"], r["details"], tuple(dict.fromkeys(ids)), r.get("url", ""))


def _newest_revisions(read: list[Advisory]) -> tuple[list[Advisory], list[str]]:
    """One advisory per tracking id: the latest revision, the others named in a note."""
    best: dict[str, Advisory] = {}
    notes = []
    for adv in read:
        kept = best.get(adv.id)
        if kept is None:
            best[adv.id] = adv
            continue
        newer, older = (adv, kept) if adv.current_release > kept.current_release else (kept, adv)
        best[adv.id] = newer
        notes.append(f"{adv.id} is in {older.file} and {newer.file}: using {newer.file} "
                     f"(revised {newer.current_release.date()})")
    return list(best.values()), notes
