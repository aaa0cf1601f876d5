"""Real CISA advisories against a test plant: hand-checked table, other vendors, hand-made cases."""
from __future__ import annotations

from collections import defaultdict

import pytest

from conftest import FIXTURES, SHARED
from otpatch.engine.inventory import load_inventory
from otpatch.modules.advisories.load import load_advisories
from otpatch.modules.advisories.match import match

ADV = FIXTURES / "advisories"
REAL = SHARED / "data" / "csaf" / "advisories"
OURS = {"schneider-electric", "phoenix-contact"}

# (host, advisory, CVE, expected): expected None = the advisory does not affect the host at
# all; else (version certainty, fixed version or None, a word the reason or flags must hold).
HAND_CHECKED = [
    # ICSA-25-035-04: M580 "<SV4.30" (fix SV4.30 only in a *mitigation* text), safety CPUs
    # "BMEP58-S" (hyphen = wildcard) "<SV4.21", BMENOR2200H all versions.
    ("plc-a", "ICSA-25-035-04", "CVE-2024-11425",
     ("range_parsed", "SV4.30", "only remediation prose")),
    ("plc-c", "ICSA-25-035-04", None, None),  # v04.30 is not below SV4.30
    ("plc-safety", "ICSA-25-035-04", "CVE-2024-11425", ("range_parsed", "SV4.21", "BMEP58*S")),
    ("noc-1", "ICSA-25-035-04", None, None),  # BMENOC0321 is neither BMEP*/BMEH* nor BMENOR
    # ICSA-23-201-01 (vendor "Schneider Electric " with a trailing space): BMEP*/BMEH*
    # "< SV4.10" fixed by a vendor_fix; the safety CPUs BMEP58*S all versions, no fix.
    ("plc-b", "ICSA-23-201-01", "CVE-2022-45788", ("range_parsed", "SV4.10", "vendor_alias")),
    ("plc-hsby", "ICSA-23-201-01", "CVE-2022-45788", ("range_parsed", "SV4.10", "BMEH*")),
    ("plc-c", "ICSA-23-201-01", None, None),  # v04.30 >= SV4.10
    ("plc-safety", "ICSA-23-201-01", "CVE-2022-45788", ("exact", None, "BMEP58*S")),
    # ICSA-19-136-01: M580 "< 2.30", but the remediation names firmware 2.80: v02.70 lies
    # between, reported at name_only; SV3.20 is above both.
    ("plc-a", "ICSA-19-136-01", "CVE-2019-6821", ("uncertain", "2.80", "contradiction")),
    ("plc-b", "ICSA-19-136-01", None, None),
    # ICSA-21-194-02 ("Schneider Electric Software, LLC"): M580 BMEP*/BMEH* all versions;
    # EcoStruxure Control Expert exactly "15.0 SP1" (and "< 15.0 SP1").
    ("plc-a", "ICSA-21-194-02", "CVE-2021-22779",
     ("exact", None, "Schneider Electric Software, LLC")),
    ("ews-1", "ICSA-21-194-02", "CVE-2021-22778", ("exact", None, "in the version '15.0 SP1'")),
    ("plc-c", "ICSA-23-227-01", "CVE-2022-45789", ("exact", None, "all_versions")),
    # ICSA-17-054-03: "M580 CPUs with firmware" "< 2.3" (2.30): v02.70 is above it.
    ("plc-a", "ICSA-17-054-03", None, None),
    # ICSA-17-101-01 names "Modicon Modbus protocol", no device model: not matched (decided).
    ("plc-a", "ICSA-17-101-01", None, None),
    # X80 products that are not our adapter or NOC.
    ("drop-1", "ICSA-21-159-05", None, None),  # Modicon X80 BMXNOR0200H RTU
    ("noc-1", "ICSA-20-044-01", None, None),  # BMXNOR0200H Ethernet/Serial RTU module
    # mGuard (vendor "PHOENIX CONTACT, Innominate Security Technologies"), no vendor_fix at
    # all: the fix is in mitigation prose.
    ("fw-old", "ICSA-17-250-02", "CVE-2013-6466", ("range_parsed", "8.5.2", "variant")),
    ("fw-mid", "ICSA-17-250-02", None, None),  # 8.6.0 > 8.5.1
    ("fw-new", "ICSA-17-250-02", None, None),
    ("fw-rs2000", "ICSA-17-250-02", "CVE-2013-6466", ("range_parsed", "8.5.2", "RS2000")),
    ("fw-rs2000", "ICSA-17-017-01", "CVE-2017-5159", ("exact", "8.4.1", "'mGuard'")),
    ("fw-old", "ICSA-17-017-01", None, None),  # only 8.4.0 is affected
    ("fw-rs2000", "ICSA-17-131-01", "CVE-2017-7935", ("range_parsed", "8.5.0", "fix_prose")),
    ("fw-old", "ICSA-17-131-01", None, None),  # 8.1.4 is below 8.3.0
    # Engineering software: suffixes (SP, HF) and a fix given to one of several products.
    ("ews-1", "ICSA-22-223-03", "CVE-2021-21810", ("range_parsed", "V15.1 HF001", "suffix")),
    ("ews-1", "ICSA-25-037-02", "CVE-2024-2658", ("range_parsed", "V16.1", "fix_vendor_fix")),
    ("ews-1", "ICSA-23-201-01", "CVE-2022-45788", ("range_parsed", "V15.3", "'< 15.3'")),
    # ICSA-17-103-02A: SoMachine Basic "> 1.5" while the fix is V1.5SP1: an inverted range in
    # the real data; reported, at name_only, with why.
    ("ews-2", "ICSA-17-103-02A", "CVE-2017-7574", ("uncertain", "V1.5SP1", "lies inside")),
    # ICSA-21-103-01: "< 1.6 SP1"; the only version in the remediations is that of the
    # successor product (Machine Expert - Basic v1.1 SP1): flagged, not trusted.
    ("ews-2", "ICSA-21-103-01", "CVE-2018-7783", ("uncertain", "v1.1 SP1", "contradiction")),
]

AFFECTED = {  # every (host, advisory) pair the real files yield for the plant
    "plc-a": {"ICSA-19-136-01", "ICSA-21-194-02", "ICSA-23-201-01", "ICSA-23-227-01",
              "ICSA-25-035-04"},
    "plc-b": {"ICSA-21-194-02", "ICSA-23-201-01", "ICSA-23-227-01", "ICSA-25-035-04"},
    "plc-c": {"ICSA-21-194-02", "ICSA-23-227-01"},
    "plc-hsby": {"ICSA-21-194-02", "ICSA-23-201-01", "ICSA-23-227-01", "ICSA-25-035-04"},
    "plc-safety": {"ICSA-21-194-02", "ICSA-23-201-01", "ICSA-23-227-01", "ICSA-25-035-04"},
    "fw-old": {"ICSA-17-250-02"},
    "fw-rs2000": {"ICSA-17-017-01", "ICSA-17-131-01", "ICSA-17-250-02"},
    "ews-1": {"ICSA-21-194-02", "ICSA-21-259-02", "ICSA-22-223-03", "ICSA-23-201-01",
              "ICSA-23-227-01", "ICSA-25-037-02"},
    "ews-2": {"ICSA-17-103-02A", "ICSA-21-103-01"},
}


@pytest.fixture(scope="module")
def plant():
    return load_inventory(ADV / "plant.yml")


@pytest.fixture(scope="module")
def real(plant, verdict_cache):
    loaded = load_advisories([REAL], cache=verdict_cache)
    assert (loaded.files, len(loaded.advisories), loaded.skipped) == (273, 273, ())
    return loaded, match(plant, loaded.advisories)


def _by_key(matches):
    out = defaultdict(dict)
    for m in matches:
        out[m.host, m.advisory][m.cve] = m
    return out


@pytest.mark.parametrize("host, advisory, cve, expected", HAND_CHECKED,
                         ids=[f"{h}-{a}-{c or 'none'}" for h, a, c, _ in HAND_CHECKED])
def test_hand_checked_cases(real, host, advisory, cve, expected):
    found = _by_key(real[1]).get((host, advisory), {})
    if expected is None:
        assert found == {}, [m.reason for m in found.values()]
        return
    m = found[cve]
    certainty, fixed, word = expected
    assert (m.finding.certainty, m.finding.fixed_version or None) == (certainty, fixed), m.reason
    assert word in m.reason or word in m.finding.flags or word in m.finding.product.name


def test_the_hand_checked_table_is_large_enough():
    assert len(HAND_CHECKED) >= 20
    assert sum(1 for row in HAND_CHECKED if row[3] is None) >= 8


def test_the_plant_is_affected_by_exactly_these_advisories(real):
    pairs = defaultdict(set)
    for m in real[1]:
        pairs[m.host].add(m.advisory)
    assert dict(pairs) == AFFECTED


def test_advisories_of_other_vendors_match_nothing(real):
    loaded, matches = real
    others = {a.id for a in loaded.advisories
              if not any(p.vendor_keys & OURS for p in a.products.values())}
    assert len(others) > 100
    assert not others & {m.advisory for m in matches}


def test_every_match_says_how_sure_and_why(real):
    for m in real[1]:
        assert m.confidence in ("high", "medium", "low")
        assert m.finding.certainty in ("exact", "range_parsed", "uncertain")
        assert m.finding.identification in ("part_number", "part_pattern", "model", "name")
        assert m.reason and m.finding.flags
        if m.finding.fixed_source == "prose":
            assert "only remediation prose" in m.reason and "fix_prose" in m.finding.flags


DERIVED = [  # the hand-made fixtures (tests/fixtures/advisories/derived)
    ("plc-a", "ICSA-20-016-01", ("uncertain", "v3.10", "makes 2.80 the first fixed version")),
    ("plc-hsby", "ICSA-20-016-01", ("uncertain", "v3.10", "is not in the free-text range")),
    ("plc-b", "ICSA-20-016-01", None),  # SV3.20: above the range and the fix
    ("plc-c", "ICSA-20-016-01", None),
    ("drop-1", "OTPATCH-TEST-INVERTED", ("uncertain", None, "probably inverted")),
    ("fw-new", "OTPATCH-TEST-RELATIONSHIPS", ("exact", "10.4.0", "per product status")),
    ("fw-mid", "OTPATCH-TEST-RELATIONSHIPS", None),
]


@pytest.mark.parametrize("host, advisory, expected", DERIVED,
                         ids=[f"{h}-{a}" for h, a, _ in DERIVED])
def test_derived_fixtures(plant, host, advisory, expected):
    loaded = load_advisories([ADV / "derived"])
    found = [m for m in match(plant, loaded.advisories)
             if (m.host, m.advisory) == (host, advisory)]
    if expected is None:
        assert found == []
        return
    certainty, fixed, word = expected
    assert len(found) == 1
    m = found[0]
    assert (m.finding.certainty, m.finding.fixed_version or None) == (certainty, fixed)
    assert word in m.reason


def test_the_per_part_fix_lines_of_icsa_20_016_01_apply_to_their_part_only(plant):
    loaded = load_advisories([ADV / "derived" / "icsa-20-016-01-excerpt.json"])
    by_host = {m.host: m for m in match(plant, loaded.advisories)}
    assert set(by_host) == {"plc-a", "plc-hsby"}
    assert all(m.finding.fixed_source == "prose" for m in by_host.values())


SPARSE = """all:
  hosts:
    fw-unknown: {vendor: Phoenix Contact, model: FL MGUARD RS4000}
    plc-unlabelled: {vendor: Schneider Electric, model: Modicon M580, firmware: v02.70}
    mystery: {model: Modicon M580, firmware: v02.70}
"""


@pytest.mark.parametrize("host, advisory, flag", [
    ("fw-unknown", "ICSA-17-250-02", "no_firmware"),  # no firmware recorded: not compared
    ("plc-unlabelled", "ICSA-23-201-01", "no_part_number"),  # BMEP* cannot be checked
])
def test_what_the_inventory_does_not_say_lowers_confidence(tmp_path, host, advisory, flag):
    (tmp_path / "sparse.yml").write_text(SPARSE)
    loaded = load_advisories([REAL / f"{advisory.lower()}.json"])
    found = [m for m in match(load_inventory(tmp_path / "sparse.yml"), loaded.advisories)
             if m.host == host]
    assert found and all(m.confidence == "low" and flag in m.finding.flags
                         for m in found)
    assert not any(m.host == "mystery" for m in match(
        load_inventory(tmp_path / "sparse.yml"), loaded.advisories))  # no vendor: no match


def _relationships(status: dict) -> list:
    import json

    from otpatch.modules.advisories.load import read_advisory

    doc = json.loads((ADV / "derived" / "relationships.json").read_text())
    doc["vulnerabilities"][0]["product_status"] = status
    return [read_advisory(doc, "relationships.json")]


def test_under_investigation_is_reported_at_low_confidence(plant):
    found = match(plant, _relationships({"under_investigation": ["RS4000-AFFECTED"]}))
    assert [(m.host, m.confidence) for m in found] == [("fw-new", "low")]
    assert "still investigating" in found[0].reason


def test_known_not_affected_for_the_version_is_no_match(plant):
    assert match(plant, _relationships({"known_not_affected": ["RS4000-AFFECTED"]})) == []
