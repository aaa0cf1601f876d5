"""The patch sources a site tracks (NERC CIP-007 R2.1: "a source or sources that the
Responsible Entity tracks for the release of cyber security patches"), each evaluated every
cycle (R2.2: at least once every 35 calendar days) by `otpatch risk cycle`.

A source is an advisory publisher, named by the CSAF `document.publisher.namespace` of what
it publishes (CISA's ICS advisories: https://www.cisa.gov/; a vendor PSIRT's own CSAF feed),
and the product vendors the site follows from it. An advisory belongs to the sources whose
publisher published it and whose vendors make one of its products. A YAML file validated by
schemas/patch-sources.schema.json; every problem at once, each as file:line:col."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from otpatch.modules.contract.errors import PlaybookError

RULES = {"source-duplicate-id": "two sources with the same id in one file"}


@dataclass(frozen=True)
class PatchSource:
    id: str
    name: str
    publisher: str  # CSAF document.publisher.namespace
    vendors: tuple[str, ...] = ()  # () : every vendor
    url: str = ""
    notes: str = ""
    where: str = field(default="", compare=False)

    def publishes(self, namespace: str) -> bool:
        """Whether a document of this publisher namespace is this source's (a trailing slash
        and the letter case of the host do not count)."""
        return _norm(namespace) == _norm(self.publisher)


@dataclass(frozen=True)
class PatchSources:
    sources: tuple[PatchSource, ...]
    file: str = ""


def load_sources(path: str | Path) -> PatchSources:
    """The patch sources of a YAML file; PlaybookError carrying every problem otherwise."""
    from otpatch.modules.contract.schemas import schema_problems
    from otpatch.modules.contract.yamlsrc import read_yaml

    source = read_yaml(path)
    problems = schema_problems(source, "patch-sources")
    if problems:
        raise PlaybookError(problems)
    seen: dict[str, int] = {}
    out = []
    for i, body in enumerate(source.data["sources"]):
        line, col = source.locate(("sources", i))
        if body["id"] in seen:
            problems.append(source.problem(
                ("sources", i, "id"), "source-duplicate-id", f"sources[{i}].id: source id "
                f"{body['id']!r} is already defined on line {seen[body['id']]}"))
        seen.setdefault(body["id"], line)
        out.append(PatchSource(id=body["id"], name=body["name"], publisher=body["publisher"],
                               vendors=tuple(body.get("vendors", ())), url=body.get("url", ""),
                               notes=body.get("notes", ""),
                               where=f"{source.file}:{line}:{col}"))
    if problems:
        raise PlaybookError(problems)
    return PatchSources(tuple(out), source.file)


def _norm(url: str) -> str:
    scheme, sep, rest = str(url).strip().partition("://")
    host, slash, tail = rest.partition("/")
    return f"{scheme.lower()}{sep}{host.lower()}{slash}{tail}".rstrip("/")
