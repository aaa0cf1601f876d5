"""Reading advisories: broken files skipped (file, JSON path, reason); vendors; product trees."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import FIXTURES, SHARED
from otpatch.modules.contract.errors import InputError
from otpatch.modules.advisories.load import load_advisories, load_file
from otpatch.modules.advisories.products import flatten, part_patterns
from otpatch.modules.advisories.vendors import vendor_keys

ADV = FIXTURES / "advisories"
REAL = SHARED / "data" / "csaf" / "advisories"

BROKEN = [  # (file, JSON path, words of the reason)
    ("not-json.json", "$", "not JSON: Expecting value at line 1 column 1"),
    ("truncated.json", "$", "truncated JSON: the text ends at line 66"),
    ("no-title.json", "$.document.title", "not valid CSAF 2.0: required property is missing"),
    ("bad-product-status.json", "$.vulnerabilities[0].product_status.known_affected",
     "not valid CSAF 2.0: 'RS4000-AFFECTED' is not of type 'array'"),
]


@pytest.mark.parametrize("name, path, reason", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_advisory_is_reported_with_file_path_and_reason(name, path, reason):
    skipped = load_file(ADV / "broken" / name)
    assert (skipped.path, skipped.file) == (path, str(ADV / "broken" / name))
    assert reason in skipped.reason
    assert "\n" not in skipped.line() and skipped.line().startswith(str(ADV / "broken" / name))


def test_broken_files_are_skipped_and_the_rest_still_load(tmp_path):
    for f in ("icsa-25-035-04.json", "icsa-17-250-02.json"):
        shutil.copy(REAL / f, tmp_path / f)
    shutil.copytree(ADV / "broken", tmp_path / "broken")
    loaded = load_advisories([tmp_path])
    assert loaded.files == 6
    assert sorted(a.id for a in loaded.advisories) == ["ICSA-17-250-02", "ICSA-25-035-04"]
    assert sorted(s.file.rsplit("/", 1)[1] for s in loaded.skipped) == sorted(
        b[0] for b in BROKEN)


def test_an_empty_file_and_one_that_is_not_utf8_are_skipped(tmp_path):
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "latin1.json").write_bytes(b'{"title": "Gr\xfc\xdfe"}')
    assert "the file is empty" in load_file(tmp_path / "empty.json").reason
    assert "cannot read the file" in load_file(tmp_path / "latin1.json").reason


def test_a_missing_path_is_an_input_error_naming_it(tmp_path):
    with pytest.raises(InputError, match="nope.json: no such file or folder"):
        load_advisories([tmp_path / "nope.json"])


def test_one_advisory_in_two_files_is_read_once_the_newest_revision(tmp_path):
    doc = json.loads((REAL / "icsa-17-250-02.json").read_text())
    (tmp_path / "a.json").write_text(json.dumps(doc))
    doc["document"]["tracking"]["current_release_date"] = "2018-01-01T00:00:00Z"
    (tmp_path / "b.json").write_text(json.dumps(doc))
    loaded = load_advisories([tmp_path])
    assert [a.file for a in loaded.advisories] == [str(tmp_path / "b.json")]
    assert "using" in loaded.notes[0] and "b.json" in loaded.notes[0]


def test_an_undefined_product_id_refuses_the_file_naming_csaf_test_6_1_1(tmp_path):
    doc = json.loads((ADV / "derived" / "relationships.json").read_text())
    doc["vulnerabilities"][0]["product_status"]["known_affected"].append("NOWHERE")
    (tmp_path / "x.json").write_text(json.dumps(doc))
    loaded = load_advisories([tmp_path])
    assert loaded.advisories == () and len(loaded.skipped) == 1
    skipped = loaded.skipped[0]
    assert skipped.reason.startswith("CSAF 6.1.1 (Missing Definition of Product ID): ")
    assert "NOWHERE" in skipped.reason
    assert skipped.path.startswith("$.vulnerabilities[0].product_status.known_affected[")


def test_the_publisher_is_read_from_the_document():
    advisory = load_file(REAL / "icsa-25-035-04.json")
    assert (advisory.publisher, advisory.publisher_namespace) == (
        "CISA", "https://www.cisa.gov/")
    assert advisory.warnings == ()


VENDORS = [
    ("Schneider Electric", {"schneider-electric"}),
    ("Schneider Electric ", {"schneider-electric"}),
    (" Schneider Electric", {"schneider-electric"}),
    ("Schneider Electric Software, LLC", {"schneider-electric"}),
    ("PHOENIX CONTACT, Innominate Security Technologies", {"phoenix-contact"}),
    ("Phoenix Contact", {"phoenix-contact"}),
    ("PHOENIX CONTACT GmbH & Co. KG", {"phoenix-contact"}),
    ("AVEVA Software, LLC and Schneider Electric Software, LLC", {"aveva",
                                                                  "schneider-electric"}),
    ("Becton, Dickinson and Company (BD)", {"becton-dickinson-and-company-bd"}),
    ("Siemens", {"siemens"}),
]


@pytest.mark.parametrize("name, keys", VENDORS, ids=[repr(v[0]) for v in VENDORS])
def test_vendor_names_reduce_to_canonical_keys(name, keys):
    assert vendor_keys(name) == keys


PARTS = [  # (product_name, full product name, model_numbers, patterns)
    ("Modicon M580 CPU (part numbers BMEP* and BMEH*)", "", (), ("BMEP*", "BMEH*")),
    ("Modicon M580 CPU (part numbers BMEP* and BMEH*, excluding M580 CPU Safety)", "", (),
     ("BMEP*", "BMEH*")),
    ("Modicon M580 CPU Safety (part numbers BMEP58-S and BMEH58-S)", "", (),
     ("BMEP58*S", "BMEH58*S")),  # ICSA-25-035-04 writes the wildcard as a hyphen
    ("Modicon MC80 (BMKC80)", "", (), ("BMKC80",)),
    ("Modicon M340 CPU", "Modicon M340 CPU (part numbers BMXP34*) All Version", ("BMXP34*",),
     ("BMXP34*",)),
    ("Modicon X80 BMXNOR0200H RTU", "", (), ("BMXNOR0200H",)),
    ("FL MGUARD RS4000 TX/TX VPN", "", (), ()),  # a model name, not a part number
    ("FL SWITCH 4012T-2GT-2FX ST", "", (), ()),
]


@pytest.mark.parametrize("name, full, models, patterns", PARTS, ids=[p[0] for p in PARTS])
def test_part_numbers_are_read_from_names_and_model_numbers(name, full, models, patterns):
    assert part_patterns(name, full, models) == patterns


def test_relationships_flatten_to_the_product_they_place():
    doc = json.loads((ADV / "derived" / "relationships.json").read_text())
    products, notes = flatten(doc)
    placed = products["RS4000-AFFECTED"]
    assert notes == []
    assert (placed.name, placed.related_names) == ("mGuard firmware", ("FL MGUARD RS4000",))
    assert placed.affected.text == "vers:generic/>=10.0.0|<10.4.0"
    assert placed.path == "$.product_tree.relationships[0]"
    assert products["HW-RS4000"].affected.kind == "none"


def test_full_product_names_flatten_without_versions():
    doc = {"product_tree": {"full_product_names": [{"name": "FL MGUARD 1102",
                                                    "product_id": "P1"}]}}
    products, _ = flatten(doc)
    assert (products["P1"].name, products["P1"].affected.kind) == ("FL MGUARD 1102", "none")


@pytest.mark.parametrize("date, skipped", [("2024-06-11", False), ("2024-06-11T10:00:00", False),
                                           ("11 June 2024", True)])
def test_release_dates_without_offset_are_utc_and_unreadable_ones_skip(tmp_path, date,
                                                                       skipped):
    doc = json.loads((ADV / "derived" / "inverted-range.json").read_text())
    doc["document"]["tracking"]["initial_release_date"] = date
    (tmp_path / "x.json").write_text(json.dumps(doc))
    result = load_file(tmp_path / "x.json")
    if skipped:
        assert result.path == "$.document.tracking" and "unreadable date" in result.reason
    else:
        assert result.initial_release.utcoffset().total_seconds() == 0
