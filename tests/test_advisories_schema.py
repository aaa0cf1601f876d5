"""The shipped CSAF 2.0 schema: unmodified, resolved offline, compiled once, real files checked."""
from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources

import pytest

from conftest import SHARED
from otpatch.modules.advisories import schema
from otpatch.modules.advisories.schema import CSAF_SCHEMA, CVSS_SCHEMAS, schema_problems

OFFICIAL = SHARED / "data" / "csaf" / "schema" / "csaf_2.0"
ADVISORIES = SHARED / "data" / "csaf" / "advisories"
SHIPPED = {CSAF_SCHEMA: OFFICIAL / "json_schema" / "csaf_json_schema.json",
           **{path: OFFICIAL / "referenced_schema" / "first" / path.rsplit("/", 1)[1]
              for path in CVSS_SCHEMAS.values()}}
# The real advisories that fail the schema, and why: none. Kept as data so a new file that
# fails is noticed, with its reason, instead of silently passing or failing.
KNOWN_INVALID: dict[str, str] = {}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("shipped", sorted(SHIPPED))
def test_the_shipped_schemas_are_unmodified_copies(shipped):
    ours = resources.files("otpatch.schemas").joinpath(shipped).read_bytes()
    assert _digest(ours) == _digest(SHIPPED[shipped].read_bytes())
    provenance = resources.files("otpatch.schemas").joinpath("csaf/PROVENANCE.md").read_text()
    assert _digest(ours) in provenance


def test_the_cvss_references_resolve_to_the_shipped_copies_only():
    from referencing.exceptions import Unresolvable

    resolver = schema.registry().resolver()
    for url in CVSS_SCHEMAS:
        assert resolver.lookup(url).contents["title"].startswith("JSON Schema for")
    with pytest.raises(Unresolvable):  # anything else is an error, never a download
        resolver.lookup("https://www.first.org/cvss/cvss-v4.0.json")


def test_the_validator_is_compiled_once():
    assert schema.validator() is schema.validator()


def test_every_real_advisory_validates_except_the_known_list():
    invalid = {}
    for path in sorted(ADVISORIES.glob("*.json")):
        problems = schema_problems(json.loads(path.read_text("utf-8")))
        if problems:
            invalid[path.name] = f"{problems[0].path}: {problems[0].reason}"
    assert len(list(ADVISORIES.glob("*.json"))) == 273
    assert invalid == KNOWN_INVALID


def _advisory() -> dict:
    return json.loads((ADVISORIES / "icsa-25-035-04.json").read_text("utf-8"))


BREAKAGES = [  # (how the document is broken, expected JSON path, words of the reason)
    (lambda d: d["document"].pop("title"), "$.document.title", "required property"),
    (lambda d: d["vulnerabilities"][0]["product_status"].update(known_affected="CSAFPID-1"),
     "$.vulnerabilities[0].product_status.known_affected", "is not of type 'array'"),
    (lambda d: d["vulnerabilities"][0]["product_status"].update(known_affected=[]),
     "$.vulnerabilities[0].product_status.known_affected", "should be non-empty"),
    (lambda d: d["vulnerabilities"][0]["scores"][0]["cvss_v3"].update(baseScore=11),
     "$.vulnerabilities[0].scores[0].cvss_v3.baseScore", "maximum of 10"),
    (lambda d: d["document"]["tracking"].update(status="published"),
     "$.document.tracking.status", "is not one of"),
]


@pytest.mark.parametrize("breakage, path, reason", BREAKAGES,
                         ids=["no-title", "status-not-a-list", "status-empty",
                              "cvss-base-above-10", "unknown-tracking-status"])
def test_a_broken_document_is_located_by_json_path(breakage, path, reason):
    document = copy.deepcopy(_advisory())
    breakage(document)
    problems = schema_problems(document)
    assert problems and problems[0].path == path
    assert reason in problems[0].reason
