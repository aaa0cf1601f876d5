"""The one version parser of advisories, as tables: equal spellings, order, refusals, ranges."""
from __future__ import annotations

import pytest

from otpatch.modules.advisories.ranges import parse_affected, inverted
from otpatch.modules.versions import VersionError, parse_version

SCHNEIDER = True  # decimal_minor: Schneider's SVx.yy, a one-digit minor is tenths

EQUAL = [  # (a, b, decimal_minor)
    ("v03.20", "SV3.20", SCHNEIDER),  # FC 43 answer vs advisory spelling
    ("V3.2", "SV3.20", SCHNEIDER),  # a person's spelling: 3.2 is 3.20
    ("v02.70", "2.70", SCHNEIDER),
    ("VS2.6", "SV2.60", SCHNEIDER),  # the typo in ICSA-23-201-01's Momentum fix
    ("sv4.30", "SV4.30", SCHNEIDER),
    ("8.4", "8.4.0", False),  # trailing zero parts do not count
    ("Version 8.4.1", "8.4.1", False),
    ("V1.5SP1", "1.5 SP1", False),  # suffix glued or spaced
    ("V9.9_SP9_HF99", "9.9 SP9 HF99", False),
    ("9.9-GA", "9.9", False),  # general availability is the release itself
    ("2.0 (Gold Build 123.4)", "2.0", False),  # a parenthetical remark is not the version
    ("R2.7.3", "2.7.3", False),
]

ORDERED = [  # a < b
    ("SV1.70", "SV1.70 IR22", SCHNEIDER),  # an internal release comes after its base
    ("SV1.70 IR22", "SV1.70 IR23", SCHNEIDER),
    ("SV1.70 IR22", "v01.80", SCHNEIDER),
    ("v02.70", "SV2.80", SCHNEIDER),
    ("SV4.21", "SV4.30", SCHNEIDER),
    ("4.01", "4.1", SCHNEIDER),  # 4.01 < 4.10
    ("2.13", "2.9", SCHNEIDER),  # Schneider: 2.13 < 2.90
    ("2.9", "2.13", False),  # elsewhere: parts are integers
    ("8.5.2", "8.5.10", False),
    ("15.0", "15.0 SP1", False),
    ("15.0 HF2", "15.0 SP1", False),  # a service pack outranks a hotfix
    ("15.0 SP1", "15.0 SP1 HF3", False),
    ("15.0 SP1 HF3", "15.1", False),
    ("1.0rc1", "1.0", False),  # a pre-release comes before its release
    ("1.0 beta2", "1.0rc1", False),
    ("9.99", "9.99a", False),  # a letter revision comes after
    ("5.2.11.23", "5.2.11.24", False),
]

REFUSED = ["", "august 28", "SP1", "NMC2", "CODESYS Control for Linux", "2.11 R3 2259",
           "3.1 C++ / Matlab"]


@pytest.mark.parametrize("a, b, decimal", EQUAL, ids=[f"{a}=={b}" for a, b, _ in EQUAL])
def test_spellings_of_one_version_are_equal(a, b, decimal):
    va, vb = parse_version(a, decimal), parse_version(b, decimal)
    assert va == vb and hash(va) == hash(vb) and not va < vb


@pytest.mark.parametrize("a, b, decimal", ORDERED, ids=[f"{a}<{b}" for a, b, _ in ORDERED])
def test_versions_order(a, b, decimal):
    va, vb = parse_version(a, decimal), parse_version(b, decimal)
    assert va < vb and vb > va and va != vb


@pytest.mark.parametrize("text", REFUSED, ids=[t or "empty" for t in REFUSED])
def test_text_that_is_not_a_version_is_refused_with_the_reason(text):
    with pytest.raises(VersionError, match="version"):
        parse_version(text)


def test_a_version_keeps_its_spelling_and_shows_a_normal_form():
    v = parse_version("SV1.70 IR22", SCHNEIDER)
    assert (str(v), v.normalized) == ("SV1.70 IR22", "1.70+ir22")


RANGES = [  # (text, category, decimal_minor, firmware, in the set?, kind)
    ("<SV4.30", "product_version_range", SCHNEIDER, "v02.70", True, "free_text"),
    ("<SV4.30", "product_version_range", SCHNEIDER, "v04.30", False, "free_text"),
    ("< 2.80", "product_version_range", SCHNEIDER, "V2.8", False, "free_text"),
    ("< 2.3", "product_version_range", SCHNEIDER, "v02.70", False, "free_text"),
    (">= 8.0.0 | <= 8.5.1", "product_version_range", False, "8.1.4", True, "free_text"),
    (">= 8.0.0 | <= 8.5.1", "product_version_range", False, "8.5.2", False, "free_text"),
    (">= 8.0.0 | <= 8.5.1", "product_version_range", False, "7.6.9", False, "free_text"),
    ("<= SV1.70 IR22", "product_version_range", SCHNEIDER, "SV1.70", True, "free_text"),
    ("<= SV1.70 IR22", "product_version_range", SCHNEIDER, "SV1.70 IR23", False,
     "free_text"),
    ("< 15.0 SP1", "product_version_range", False, "15.0", True, "free_text"),
    ("< 15.0 SP1", "product_version_range", False, "15.0 SP1", False, "free_text"),
    (" < 15.1 HF001  (including former Unity Pro)", "product_version_range", SCHNEIDER,
     "15.0 SP1", True, "free_text"),
    (">=V9.9_<V9.99", "product_version_range", False, "9.10", True, "free_text"),
    ("< 9.99 | 9.99.5", "product_version_range", False, "9.99.5", True, "free_text"),
    ("All versions prior to V3.2.1", "product_version_range", False, "3.2.0", True,
     "free_text"),
    ("2.0.3 (including) and 2.0.6 (excluding)", "product_version", False, "2.0.6", False,
     "free_text"),
    ("vers:all/*", "product_version_range", False, "1.0", True, "all"),
    ("vers:all/*", "product_version", False, "99", True, "all"),  # vers under product_version
    ("vers:generic/>=10.0.0|<10.4.0", "product_version_range", False, "10.3.1", True, "vers"),
    ("vers:generic/>=10.0.0|<10.4.0", "product_version", False, "10.4.0", False, "vers"),
    ("vers:all/<V2.9.4", "product_version_range", False, "2.9.3", True, "vers_nonstandard"),
    ("vers:all/>=V1.0.0<V1.2.0", "product_version_range", False, "1.1", True,
     "vers_nonstandard"),
    ("8.4.0", "product_version", False, "8.4.0", True, "exact"),
    ("15.0 SP1", "product_version", False, "15.0 SP1", True, "exact"),
    ("15.0 SP1", "product_version", False, "15.0", False, "exact"),
    ("9.2.x", "product_version", False, "9.2.17", True, "exact"),
]


@pytest.mark.parametrize("text, category, decimal, firmware, inside, kind", RANGES,
                         ids=[f"{r[3]} in {r[0].strip()!r}" for r in RANGES])
def test_affected_ranges_as_advisories_write_them(text, category, decimal, firmware, inside,
                                                  kind):
    affected = parse_affected(text, category, decimal)
    assert affected.kind == kind
    assert affected.contains(parse_version(firmware, decimal)) is inside


@pytest.mark.parametrize("text", ["< august 28", "<=A_B", "NMC2 <= 6.9.6", "< P007"])
def test_unreadable_ranges_are_unknown_not_guessed(text):
    affected = parse_affected(text)
    assert (affected.kind, affected.certainty) == ("unparsed", "uncertain")
    assert affected.contains(parse_version("1.0")) is None and affected.problem


@pytest.mark.parametrize("text, description, says", [
    (">= 1.8.0", "Product X: firmware 1.8.0 and older", "probably inverted"),
    (">= 9.99.9 | <= 9.9.1", "", "is empty"),
    ("< 2.0", "Product X: 2.0 and later", "probably inverted"),
])
def test_inverted_ranges_are_named(text, description, says):
    assert says in inverted(parse_affected(text), description)


@pytest.mark.parametrize("text, description", [
    (">=SV3.60", "Modicon M340 CPU (part numbers BMXP34*) All versions since SV3.60"),
    ("< 2.30", "Modicon M580: firmware versions prior to Version 2.30"),
    (">= 8.3.0 | <= 8.4.2", "mGuard: firmware versions 8.3.0 to 8.4.2"),
])
def test_consistent_ranges_are_not_called_inverted(text, description):
    assert inverted(parse_affected(text, decimal_minor=True), description) == ""
