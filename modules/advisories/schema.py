"""The CSAF 2.0 JSON schema, compiled once, with its CVSS references mapped to local copies."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from otpatch.modules.contract.canonical import sha256_hex

# The URLs the CSAF schema references, and the shipped copies they stand for (PROVENANCE.md).
CSAF_SCHEMA = "csaf/csaf_json_schema.json"
CVSS_SCHEMAS = {
    "https://www.first.org/cvss/cvss-v2.0.json": "csaf/first/cvss-v2.0.json",
    "https://www.first.org/cvss/cvss-v3.0.json": "csaf/first/cvss-v3.0.json",
    "https://www.first.org/cvss/cvss-v3.1.json": "csaf/first/cvss-v3.1.json",
}


@dataclass(frozen=True)
class SchemaProblem:
    """One way a document breaks the schema: where (a JSON path) and why."""

    path: str  # e.g. $.vulnerabilities[0].product_status.known_affected
    reason: str


def read_schema(name: str) -> dict:
    """A shipped schema document by its path under otpatch.schemas (e.g. CSAF_SCHEMA)."""
    return json.loads(resources.files("otpatch.schemas").joinpath(name).read_text("utf-8"))


@lru_cache(maxsize=1)
def schema_digest() -> str:
    """SHA-256 over the shipped schema files (CSAF and the CVSS ones it references): a
    verdict computed with other schema files is another verdict."""
    files = resources.files("otpatch.schemas")
    return sha256_hex(b"".join(files.joinpath(path).read_bytes()
                               for path in (CSAF_SCHEMA, *sorted(CVSS_SCHEMAS.values()))))


@lru_cache(maxsize=1)
def registry() -> Any:
    """The referenced schemas by the URLs the CSAF schema uses, from the shipped copies; it
    has no retrieve function, so an unknown URL is an error, never a download."""
    from referencing import Registry, Resource

    return Registry().with_resources(
        (url, Resource.from_contents(read_schema(path))) for url, path in CVSS_SCHEMAS.items())


@lru_cache(maxsize=1)
def validator() -> Any:
    """The Draft 2020-12 validator of CSAF 2.0, built once."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(read_schema(CSAF_SCHEMA), registry=registry())


def schema_problems(document: Any) -> list[SchemaProblem]:
    """Every schema error of a parsed document, in document order, each with its JSON path."""
    out: list[SchemaProblem] = []
    for err in validator().iter_errors(document):
        out.extend(_explain(err))
    return sorted(out, key=lambda p: (p.path, p.reason))


def _explain(err: Any) -> list[SchemaProblem]:
    if err.validator in ("oneOf", "anyOf") and err.context:
        return [p for sub in _closest_branch(err.context) for p in _explain(sub)]
    if err.validator == "required" and isinstance(err.instance, dict):
        return [SchemaProblem(join_path(err.json_path, name), "required property is missing")
                for name in err.validator_value if name not in err.instance]
    return [SchemaProblem(err.json_path, _short(err.message))]


def _closest_branch(context: list) -> list:
    """The errors of the alternative that came closest (fewest errors): for a CVSS 3.1
    score that is the 3.1 schema's complaint, not the 3.0 schema's "version must be 3.0"."""
    branches: dict[Any, list] = {}
    for sub in context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    return min(branches.values(), key=len)


def join_path(path: str, name: str) -> str:
    """`path` and an object key in our JSON-path style: $.a.b, or $.a['not an identifier']."""
    return f"{path}.{name}" if name.isidentifier() else f"{path}[{name!r}]"


def _short(message: str, limit: int = 160) -> str:
    """The validator's message, a long quoted instance cut down to size."""
    return message if len(message) <= limit else message[:limit - 3] + "..."
