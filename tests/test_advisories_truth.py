"""The blind check, kept: a plant as its engineers write it against real CISA advisories (and
three derived from them), with a truth table read off the advisories by hand. Precision and
recall are printed and must be 1.0; every trap the blind check found is a row."""
from __future__ import annotations

from collections import defaultdict

import pytest

from conftest import FIXTURES, SHARED
from otpatch.engine.inventory import load_inventory
from otpatch.modules.advisories.load import load_advisories
from otpatch.modules.advisories.match import match
from otpatch.modules.advisories.sources import merge

TRUTH_DIR = FIXTURES / "advisories" / "truth"
REAL = SHARED / "data" / "csaf" / "advisories"

# (host, advisory, affected, why, as the advisory says it). Traps are marked TRAP.
TRUTH = [
    # ICSA-25-035-04: M580 BMEP*/BMEH* (not safety) <SV4.30; safety BMEP58-S/BMEH58-S <SV4.21
    ("cpu-1", "ICSA-25-035-04", True, "BMEP582040 at SV3.20 < SV4.30"),
    ("cpu-2", "ICSA-25-035-04", False, "v04.30 is not below SV4.30"),
    ("cpu-hsby", "ICSA-25-035-04", True, "BMEH586040 at SV4.10 < SV4.30"),
    ("cpu-safety", "ICSA-25-035-04", True, "safety CPU BMEP584040S at SV4.20 < SV4.21"),
    ("noc-1", "ICSA-25-035-04", False, "TRAP model says M580: BMENOC0321 is not BMEP*/BMEH*"),
    ("noc-2", "ICSA-25-035-04", False, "BMENOC0301 is not BMEP*/BMEH* nor BMENOR2200H"),
    ("drop-1", "ICSA-25-035-04", False, "an X80 adapter is named nowhere"),
    ("cpu-old", "ICSA-25-035-04", True, "v02.20 < SV4.30"),
    # ICSA-23-201-01: M580 < SV4.10; safety all; M340 BMXP34* < SV3.51; Control Expert < 15.3
    ("cpu-old", "ICSA-23-201-01", True, "v02.20 < SV4.10"),
    ("cpu-1", "ICSA-23-201-01", True, "SV3.20 < SV4.10"),
    ("cpu-2", "ICSA-23-201-01", False, "v04.30 >= SV4.10"),
    ("cpu-hsby", "ICSA-23-201-01", False, "SV4.10 is not below SV4.10"),
    ("cpu-safety", "ICSA-23-201-01", True, "safety CPUs: all versions"),
    ("m340-cpu", "ICSA-23-201-01", True, "BMXP342020 at SV3.40 < SV3.51"),
    ("m340-noc", "ICSA-23-201-01", False, "BMXNOC0401 is not an M340 CPU (BMXP34*)"),
    ("ews-1", "ICSA-23-201-01", True, "Control Expert 15.0 < 15.3"),
    ("noc-1", "ICSA-23-201-01", False, "TRAP model says M580: a NOC, not BMEP*/BMEH*"),
    # ICSA-21-194-02: M580 and M340 CPUs all versions; Control Expert < 15.0 SP1 and 15.0 SP1
    ("cpu-2", "ICSA-21-194-02", True, "M580 BMEP*: all versions"),
    ("cpu-1", "ICSA-21-194-02", True, "M580 BMEP*: all versions"),
    ("cpu-old", "ICSA-21-194-02", True, "M580 BMEP*: all versions"),
    ("cpu-hsby", "ICSA-21-194-02", True, "M580 BMEH*: all versions"),
    ("cpu-safety", "ICSA-21-194-02", True, "BMEP584040S is a BMEP*: all versions"),
    ("m340-cpu", "ICSA-21-194-02", True, "M340 BMXP34*: all versions"),
    ("noc-1", "ICSA-21-194-02", False, "TRAP model says M580: a NOC"),
    ("ews-1", "ICSA-21-194-02", True, "Control Expert 15.0 < 15.0 SP1"),
    ("ews-noc", "ICSA-21-194-02", False, "another piece of software"),
    # ICSA-19-136-01: "Modicon M580" (the CPU, a family name) < 2.30; "Modicon M340" all
    ("cpu-old", "ICSA-19-136-01", True, "an M580 CPU at v02.20 < 2.30"),
    ("cpu-1", "ICSA-19-136-01", False, "SV3.20 is not below 2.30"),
    ("noc-1", "ICSA-19-136-01", False, "TRAP family name: BMENOC0321 at v02.16 is no CPU"),
    ("noc-2", "ICSA-19-136-01", False, "TRAP family name: BMENOC0301 at v02.11 is no CPU"),
    ("m340-cpu", "ICSA-19-136-01", True, "Modicon M340 (CPU, BMXP34*): all versions"),
    ("m340-noc", "ICSA-19-136-01", False, "TRAP family name: BMXNOC0401 is no M340 CPU"),
    # ICSA-17-054-03: "M580 CPUs with firmware" prior to v2.3; "M340 CPUs" prior to v2.9
    ("cpu-old", "ICSA-17-054-03", True, "v02.20 < 2.3 (2.30)"),
    ("noc-1", "ICSA-17-054-03", False, "TRAP family name: v02.16 would be in range, but a NOC"),
    ("m340-cpu", "ICSA-17-054-03", False, "SV3.40 is not below 2.9"),
    ("m340-noc", "ICSA-17-054-03", False, "TRAP family name: v2.05 would be in range, but a NOC"),
    # ICSA-21-005-01: "BMX NOC 0401", "BMX NOR 0200H" modules, "M340 CPUs BMX P34x": all
    ("m340-noc", "ICSA-21-005-01", True, "BMX NOC 0401 (spaced) is BMXNOC0401: all versions"),
    ("m340-cpu", "ICSA-21-005-01", True, "BMX P34x means BMXP34*: all versions"),
    ("rtu-1", "ICSA-21-005-01", True, "BMX NOR 0200H: all versions"),
    ("noc-1", "ICSA-21-005-01", False, "BMENOC0321 is none of the modules named"),
    # ICSA-21-159-05: "Modicon X80 BMXNOR0200H RTU" SV1.70 IR22 and prior
    ("rtu-1", "ICSA-21-159-05", True, "BMXNOR0200H at SV1.70 IR22, and prior"),
    ("drop-1", "ICSA-21-159-05", False, "TRAP model says X80: BMECRA31210 is not the RTU"),
    # ICSA-20-044-01 and ICSA-25-035-06: the RTU module; M340 CPUs all versions
    ("rtu-1", "ICSA-20-044-01", True, "BMXNOR0200H: all versions"),
    ("rtu-1", "ICSA-25-035-06", True, "SV1.70 IR22 < SV1.70IR26"),
    ("m340-cpu", "ICSA-25-035-06", True, "BMXP34*: all versions"),
    ("m340-noc", "ICSA-25-035-06", False, "BMXNOC0401 is not BMXNOE0100/0110 nor the RTU"),
    # ICSA-18-065-02: Altivar DTMs (software) and the AltivarDtmLibrary
    ("drive-1", "ICSA-18-065-02", False, "TRAP software: a drive at V1.1.2 is not the ATV320 DTM"),
    ("ews-atv", "ICSA-18-065-02", True, "ATV320 DTM 1.1.5 < 1.1.6"),
    ("ews-dtm", "ICSA-18-065-02", True, "AltivarDtmLibrary 12.6.0 < 12.7.0"),
    # mGuard: ICSA-17-250-02 8.0.0 to 8.5.1 (full catalogue names); ICSA-17-131-01 8.3.0 to
    # 8.4.2 ("mGuard"); ICSA-17-017-01 only 8.4.0
    ("fw-1", "ICSA-17-250-02", True, "FL MGUARD RS4000 TX/TX at 8.4.2"),
    ("fw-2", "ICSA-17-250-02", False, "8.6.1 > 8.5.1"),
    ("fw-3", "ICSA-17-250-02", False, "a 4302 at 10.3.1 is not named, nor in range"),
    ("fw-1", "ICSA-17-131-01", True, "8.4.2, the last affected"),
    ("fw-2", "ICSA-17-131-01", False, "8.6.1 > 8.4.2"),
    ("fw-1", "ICSA-17-017-01", False, "only devices updated to 8.4.0"),
    # Engineering software
    ("ews-1", "ICSA-25-037-02", True, "Control Expert 15.0 < V16.1"),
    ("ews-1", "ICSA-22-223-03", True, "15.0 < V15.1 HF001"),
    ("ews-1", "ICSA-21-259-02", True, "Control Expert: all versions"),
    ("ews-noc", "ICSA-25-037-02", False, "another piece of software"),
    # ICSA-23-227-01: M580, M580 safety, M340 CPUs and Control Expert: all versions
    ("cpu-1", "ICSA-23-227-01", True, "M580 BMEP*: all versions"),
    ("cpu-2", "ICSA-23-227-01", True, "M580 BMEP*: all versions"),
    ("cpu-old", "ICSA-23-227-01", True, "M580 BMEP*: all versions"),
    ("cpu-hsby", "ICSA-23-227-01", True, "M580 BMEH*: all versions"),
    ("cpu-safety", "ICSA-23-227-01", True, "M580 safety BMEP58*S: all versions"),
    ("m340-cpu", "ICSA-23-227-01", True, "M340 BMXP34*: all versions"),
    ("ews-1", "ICSA-23-227-01", True, "Control Expert: all versions"),
    ("drive-1", "ICSA-23-227-01", False, "a drive is named nowhere"),
    ("m340-noc", "ICSA-23-227-01", False, "TRAP M340 CPU BMXP34*: a NOC is not one"),
    ("noc-1", "ICSA-23-227-01", False, "TRAP model says M580: a NOC"),
    # Derived (truth/derive.py): a tool named for a device part number, then with the device
    ("noc-1", "OTPATCH-TRUTH-TOOL", False, "TRAP software: the tool for BMENOC0321 is no NOC"),
    ("ews-noc", "OTPATCH-TRUTH-TOOL", True, "the tool at 2.1 < 2.2"),
    ("noc-1", "OTPATCH-TRUTH-TOOL-AND-NOC", True, "the document lists BMENOC0321 itself"),
    ("ews-noc", "OTPATCH-TRUTH-TOOL-AND-NOC", True, "the tool at 2.1 < 2.2"),
    # Derived: Schneider's own copy of ICSA-25-035-04 (another provider, another vector)
    ("cpu-1", "SEVD-2025-014-01", True, "SV3.20 < SV4.30, as CISA's copy says"),
    ("cpu-2", "SEVD-2025-014-01", False, "v04.30 is not below SV4.30"),
    ("cpu-old", "SEVD-2025-014-01", True, "v02.20 < SV4.30"),
    ("cpu-hsby", "SEVD-2025-014-01", True, "SV4.10 < SV4.30"),
    ("cpu-safety", "SEVD-2025-014-01", True, "safety SV4.20 < SV4.21"),
    ("noc-1", "SEVD-2025-014-01", False, "TRAP model says M580: a NOC"),
]
ADVISORIES = {row[1] for row in TRUTH}


@pytest.fixture(scope="module")
def loaded(verdict_cache):
    loaded = load_advisories([REAL, TRUTH_DIR / "advisories"], cache=verdict_cache)
    assert not loaded.skipped
    return loaded


@pytest.fixture(scope="module")
def predicted(loaded):
    """(host, advisory) -> the match shown for it, each provider's advisory counted."""
    inventory = load_inventory(TRUTH_DIR / "plant.yml")
    out = {}
    for m in merge(match(inventory, loaded.advisories), loaded.advisories):
        for source in m.sources:
            out.setdefault((m.host, source.advisory), m)
    return out


def test_precision_and_recall_are_one_on_the_hand_checked_table(predicted, capsys):
    tp = [r for r in TRUTH if r[2] and (r[0], r[1]) in predicted]
    fp = [r for r in TRUTH if not r[2] and (r[0], r[1]) in predicted]
    fn = [r for r in TRUTH if r[2] and (r[0], r[1]) not in predicted]
    precision = len(tp) / (len(tp) + len(fp)) if tp or fp else 0.0
    recall = len(tp) / (len(tp) + len(fn)) if tp or fn else 0.0
    with capsys.disabled():
        print(f"\nadvisory truth table: {len(TRUTH)} cases ({sum(r[2] for r in TRUTH)} affected,"
              f" {sum('TRAP' in r[3] for r in TRUTH)} traps): precision {precision:.2f}, "
              f"recall {recall:.2f}")
    assert (fp, fn) == ([], [])
    assert (precision, recall) == (1.0, 1.0)


def test_the_table_is_large_and_holds_every_trap():
    assert len(TRUTH) >= 40 and len({(h, a) for h, a, _, _ in TRUTH}) == len(TRUTH)
    traps = " ".join(r[3] for r in TRUTH if "TRAP" in r[3])
    for kind in ("software", "family name", "model says M580", "model says X80"):
        assert kind in traps, kind


def test_no_match_for_these_advisories_is_missing_from_the_table(predicted):
    """The table is complete for its advisories: anything else reported would be unchecked."""
    known = {(h, a) for h, a, _, _ in TRUTH}
    unchecked = {k for k in predicted if k[1] in ADVISORIES} - known
    assert unchecked == set()


@pytest.mark.parametrize("host, advisory, identification, confidence", [
    ("m340-noc", "ICSA-21-005-01", "part_number", "high"),  # the part, listed
    ("cpu-2", "ICSA-21-194-02", "part_pattern", "high"),  # BMEP*, all versions
    ("cpu-1", "ICSA-25-035-04", "part_pattern", "medium"),  # BMEP*, free-text "<SV4.30"
    ("fw-1", "ICSA-17-250-02", "model", "medium"),  # the catalogue name's model words
    ("fw-1", "ICSA-17-131-01", "name", "low"),  # "mGuard" only
    ("cpu-old", "ICSA-17-054-03", "model", "medium"),  # a family name, part number checked
])
def test_confidence_combines_identification_and_version(predicted, host, advisory,
                                                         identification, confidence):
    m = predicted[host, advisory]
    assert (m.finding.identification, m.confidence) == (identification, confidence), m.reason


def test_the_same_cve_from_two_providers_is_shown_once_naming_both(predicted):
    m = predicted["cpu-1", "ICSA-25-035-04"]
    assert m is predicted["cpu-1", "SEVD-2025-014-01"]
    assert {(s.publisher, s.advisory) for s in m.sources} == {
        ("CISA", "ICSA-25-035-04"), ("Schneider Electric", "SEVD-2025-014-01")}
    assert any(d.startswith("base score: ") and "7.5" in d and "6.5" in d
               for d in m.disagreements)
    assert any(d.startswith("vector: ") for d in m.disagreements)
    assert not any(d.startswith("fixed version") for d in m.disagreements)


def test_near_misses_say_why_for_each_trap(loaded):
    inventory = load_inventory(TRUTH_DIR / "plant.yml")
    misses = []
    match(inventory, loaded.advisories, near_misses=misses)
    flags = defaultdict(set)
    for n in misses:
        flags[n.host, n.advisory].add(n.flag)
    assert "software_product" in flags["drive-1", "ICSA-18-065-02"]
    assert "software_product" in flags["noc-1", "OTPATCH-TRUTH-TOOL"]
    assert "family_mismatch" in flags["noc-1", "ICSA-19-136-01"]
    assert "family_mismatch" in flags["m340-noc", "ICSA-17-054-03"]
    assert "not_in_range" in flags["cpu-2", "ICSA-25-035-04"]
    assert not flags["cpu-1", "ICSA-25-035-04"]  # affected: no near miss for it


@pytest.mark.parametrize("name, cpe, software", [
    ("EcoStruxure Control Expert", "", "the word 'Expert'"),
    ("ATV320 DTM", "", "the word 'DTM'"),
    ("Modicon M580 CPU (part numbers BMEP* and BMEH*)", "", ""),
    ("Control Panel X", "cpe:2.3:a:schneider-electric:control_panel_x:*:*:*:*:*:*:*:*",
     "CPE part a"),
    ("Studio Gateway", "cpe:2.3:h:schneider-electric:studio_gateway:-:*:*:*:*:*:*:*", ""),
])
def test_what_marks_a_product_as_software(name, cpe, software):
    """A name word, or the CPE's part (a: application; h and o: a device), which wins."""
    from otpatch.modules.advisories.products import flatten

    helper = {"cpe": cpe} if cpe else {}
    tree = {"product_tree": {"branches": [{"category": "vendor", "name": "Schneider Electric",
                                           "branches": [{"category": "product_name",
                                                         "name": name, "product": {
                                                             "name": name, "product_id": "P",
                                                             "product_identification_helper":
                                                             helper}}]}]}}
    product = flatten(tree)[0]["P"]
    assert product.software == software
    assert (product.part_patterns == ()) or not software  # a software name's part is the device's
