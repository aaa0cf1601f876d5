"""CSAF 2.0 conformance beyond the JSON schema: the mandatory tests (section 6.1), as a verdict."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from otpatch.modules.advisories.schema import join_path

LOG = logging.getLogger(__name__)
PRESET = "basic"  # the csaf package's name for the mandatory tests (6.1); see check()
MESSAGE_LIMIT = 200  # a test's message can quote a whole product name or vector

# The tests matching depends on: a document that fails one is refused (skipped), because the
# products it names, their status or their score would be a guess. Every other failed test is
# a warning carried with the advisory (its metadata, revision history or profile is off, but
# which product is affected, and how badly, is still stated soundly).
REFUSED_TESTS = (
    "6.1.1",   # Missing Definition of Product ID: a status, score or remediation names a
               # product that has no name or version to match an asset against
    "6.1.2",   # Multiple Definition of Product ID: one id, two products; which one an
               # asset matches would be a guess
    "6.1.3",   # Circular Definition of Product ID: a relationship defined through itself
               # places no product that could be matched
    "6.1.4",   # Missing Definition of Product Group ID: the products a group's remediation
               # or fix is for are unknown
    "6.1.5",   # Multiple Definition of Product Group ID: which products a group means
               # would be a guess
    "6.1.6",   # Contradicting Product Status: a product both affected and not affected (or
               # fixed) has no sound verdict
    "6.1.7",   # Multiple Scores with same CVSS Version per Product: the urgency, and so the
               # due date, would depend on the order of the scores
    "6.1.8",   # Invalid CVSS: the score is no CVSS object; no urgency follows from it
    "6.1.9",   # Invalid CVSS Computation: the stated base score does not follow from the
               # vector, and the effective score is computed from the vector
    "6.1.10",  # Inconsistent CVSS: the vector and the score's properties disagree
)


@dataclass(frozen=True)
class FailedTest:
    """One CSAF test a document fails: its id and title, and its first error."""

    test_id: str  # e.g. 6.1.27
    title: str  # e.g. Profile-Based Rules
    path: str  # JSON path of the first error, $.vulnerabilities[0].product_status
    message: str  # the first error, as the csaf package words it
    more: int = 0  # further errors of the same test

    @property
    def refused(self) -> bool:
        """Whether the document cannot be used for matching (REFUSED_TESTS)."""
        return self.test_id in REFUSED_TESTS

    @property
    def label(self) -> str:
        return f"CSAF {self.test_id} ({self.title})"

    def warning(self) -> str:
        """One line: `CSAF 6.1.27 (Profile-Based Rules) failed: <path>: <message>`."""
        tail = f" (and {self.more} more)" if self.more else ""
        return f"{self.label} failed: {self.path}: {self.message}{tail}"


@dataclass(frozen=True)
class Verdict:
    """The CSAF tests a schema-valid document fails, in the order of the specification."""

    failed: tuple[FailedTest, ...] = ()

    @property
    def refusals(self) -> tuple[FailedTest, ...]:
        return tuple(t for t in self.failed if t.refused)

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per failed test that matching does not depend on."""
        return tuple(t.warning() for t in self.failed if not t.refused)


@dataclass
class Tally:
    """How many documents this process ran through the csaf package (the cache misses)."""

    documents: int = 0


TALLY = Tally()


def csaf_version() -> str:
    """The installed csaf package's version, read without importing it."""
    return metadata.version("csaf")


def check(document: dict) -> Verdict:
    """The mandatory CSAF 2.0 tests (6.1) on a document that passed our schema check.

    The csaf package's own schema run is skipped in its report (schema.py gives the precise
    messages, and a schema-invalid document never gets here). The recommended (6.2) and
    informative (6.3) tests are not run: none of them says whether a match is sound, and
    6.3.6/6.3.7 would reach the network."""
    from csaf.csaf.v20._validator import validate  # ~0.5 s to import: only on a cache miss

    TALLY.documents += 1
    report = validate(document, preset=PRESET, skip_rules=frozenset({"schema"}))
    return Verdict(tuple(_failed(r, document) for r in report.results
                         if not r.passed and not r.skipped))


def _failed(result: Any, document: dict) -> FailedTest:
    first = result.errors[0] if result.errors else None
    path = pointer_to_path(first.instance_path, document) if first else "$"
    message = _short(first.message if first else "failed, without a message")
    return FailedTest(result.id, result.title, path, message,
                      max(0, len(result.errors) - 1))


def pointer_to_path(pointer: str, document: Any) -> str:
    """A JSON pointer (/vulnerabilities/0/cwe) in our JSON-path style ($.vulnerabilities[0]
    .cwe), read against the document so that a digit key of an object stays a key."""
    path, node = "$", document
    for raw in [p for p in pointer.split("/")[1:] if p != ""]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit():
            path, node = f"{path}[{part}]", node[int(part)] if int(part) < len(node) else None
        else:
            path = join_path(path, part)
            node = node.get(part) if isinstance(node, dict) else None
    return path


def _short(message: str) -> str:
    line = " ".join(message.split())
    return line if len(line) <= MESSAGE_LIMIT else line[:MESSAGE_LIMIT - 3] + "..."
