"""CSAF tests beyond the schema (section 6.1): OASIS's examples through the CLI, the real
advisories' warnings, and the verdict cache (a real SQLite file) by the files' SHA-256."""
from __future__ import annotations

import importlib.util
import json
import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, SHARED, otpatch_child
from otpatch.modules.advisories import conformance, verdicts
from otpatch.modules.advisories.conformance import REFUSED_TESTS, pointer_to_path
from otpatch.modules.advisories.load import load_advisories
from otpatch.modules.advisories.verdicts import VerdictCache

REAL = SHARED / "data" / "csaf" / "advisories"
PLANT = FIXTURES / "advisories" / "plant.yml"
# OASIS's examples of the mandatory tests as the csaf package ships them, found without
# importing it: oasis_csaf_tc-csaf_2_0-2021-6-1-NN[-SS]-MM.json, MM 01-09 failing
# examples of test 6.1.NN (or of 6.1.27's sub-test SS), MM 11 and up valid ones.
SUITE = Path(importlib.util.find_spec("csaf").origin).parent / "csaf/v20/data/mandatory"
NAME = re.compile(r"oasis_csaf_tc-csaf_2_0-2021-6-1-(\d\d)(?:-(\d\d))?-(\d\d)\.json")
EXAMPLES = sorted(p.name for p in SUITE.glob("*.json"))
# Failing examples refused before the CSAF tests run, and why: the CSAF 2.0 schema includes
# FIRST's CVSS schemas, and test 6.1.8 (Invalid CVSS) is validation against those same
# schemas, so its failing examples already fail our schema gate, inside the CVSS object,
# and are reported as 6.1.8.
SCHEMA_REFUSED = {f"oasis_csaf_tc-csaf_2_0-2021-6-1-08-0{n}.json": f"$.vulnerabilities[0]"
                  f".scores[0].{cvss}" for n, cvss in ((1, "cvss_v3.baseSeverity"),
                                                       (2, "cvss_v3.baseSeverity"),
                                                       (3, "cvss_v2.version"))}
# The real CISA advisories that fail a CSAF test matching does not depend on: loaded, and
# matched, with a warning naming the test.
REAL_WARNINGS = {
    "icsa-18-144-01.json": ["6.1.31"],  # "1.x (formerly Power Manager)" as product_version
    "icsa-20-175-03.json": ["6.1.31"],  # "6.0.X | 6.0.3.1 | 6.0.3.2" as product_version
    "icsa-21-068-10.json": ["6.1.11"],  # a CWE name with a trailing space
    "icsa-24-326-03.json": ["6.1.27"],  # remediations for products no status names
    "icsa-24-331-01.json": ["6.1.27"],
    "icsa-25-014-02.json": ["6.1.27"],
}


def example(name: str) -> tuple[str, bool]:
    """The test an OASIS example is for (6.1.27's sub-tests report as 6.1.27), and whether
    it is a failing example."""
    test, _sub, number = NAME.fullmatch(name).groups()
    return f"6.1.{int(test)}", int(number) < 10


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory) -> dict:
    """One `otpatch advisories match --json` over a copy of every mandatory example."""
    folder = tmp_path_factory.mktemp("oasis")
    for name in EXAMPLES:
        shutil.copy(SUITE / name, folder / name)
    home = tmp_path_factory.mktemp("home")
    result = otpatch_child(home, "advisories", "match", "-i", str(PLANT), str(folder),
                           "--json", timeout=180)
    assert (result.returncode, result.stderr) == (0, "")
    doc = json.loads(result.stdout)
    return {"doc": doc, "home": home,
            "skipped": {Path(s["file"]).name: s for s in doc["skipped"]},
            "notes": {name: [n.split(": ", 1)[1] for n in doc["notes"]
                             if n.startswith(str(folder / name) + ": ")] for name in EXAMPLES}}


def test_the_suite_is_oasis_convention_87_failing_and_60_valid_examples():
    kinds = [example(name)[1] for name in EXAMPLES]
    assert (kinds.count(True), kinds.count(False)) == (87, 60)
    for name in EXAMPLES:  # each example's title says which it is
        title = json.loads((SUITE / name).read_text())["document"]["title"]
        assert ("(failing example" in title) == example(name)[1], name


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_oasis_example_is_refused_warned_or_accepted_as_its_test_says(suite_run, name):
    test, failing = example(name)
    skipped, notes = suite_run["skipped"].get(name), suite_run["notes"][name]
    if name in SCHEMA_REFUSED:
        assert skipped["path"] == SCHEMA_REFUSED[name]
        assert skipped["reason"].startswith("CSAF 6.1.8 (Invalid CVSS): not valid against ")
    elif failing and test in REFUSED_TESTS:
        assert skipped and skipped["reason"].startswith(f"CSAF {test} (")
        assert skipped["path"].startswith("$.")
    elif failing:
        assert skipped is None
        assert any(n.startswith(f"CSAF {test} (") and " failed: $" in n for n in notes), notes
    else:  # a valid example: loaded, and no CSAF test fails on it
        assert skipped is None and not [n for n in notes if n.startswith("CSAF ")]


def test_the_suite_run_counts_refused_warned_and_accepted_examples(suite_run):
    refused = {n for n in EXAMPLES if example(n)[1] and example(n)[0] in REFUSED_TESTS}
    assert len(refused) == 20 and set(suite_run["skipped"]) == refused
    assert suite_run["doc"]["advisories"] == {"files": 147, "loaded": 127, "skipped": 20}
    warned = {n for n in EXAMPLES if suite_run["notes"][n]}
    assert len(warned) == 87 - 20 and not warned & refused
    cache = suite_run["home"] / "cache" / "csaf-verdicts.sqlite"
    assert cache.is_file()  # the CLI keeps its verdicts in $OTPATCH_HOME


def test_the_text_report_names_the_refused_and_the_warned_test(home, tmp_path):
    for name in ("06-01", "31-01"):
        shutil.copy(SUITE / f"oasis_csaf_tc-csaf_2_0-2021-6-1-{name}.json", tmp_path)
    result = otpatch_child(home, "advisories", "match", "-i", str(PLANT), str(tmp_path))
    lines = result.stdout.replace("\n    ", " ").splitlines()  # wrapped lines, joined
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert any(line.startswith("skipped: ") and "-6-1-06-01.json: $.vulnerabilities[0]"
               ".product_status: CSAF 6.1.6 (Contradicting Product Status): " in line
               for line in lines)
    assert any(line.startswith("note: ") and "-6-1-31-01.json: CSAF 6.1.31 (Version Range "
               "in Product Version) failed: $.product_tree." in line for line in lines)


@pytest.mark.slow  # the csaf tests on 273 files, about 7 s
def test_every_real_advisory_loads_and_only_the_known_ones_warn():
    loaded = load_advisories([REAL])
    assert (loaded.files, len(loaded.advisories), loaded.skipped) == (273, 273, ())
    warned = {Path(a.file).name: [w.split(" ", 2)[1] for w in a.warnings]
              for a in loaded.advisories if a.warnings}
    assert warned == REAL_WARNINGS
    assert all(w.startswith(f"CSAF {tests[0]} (") and " failed: $." in w
               for a in loaded.advisories if a.warnings
               for tests in [REAL_WARNINGS[Path(a.file).name]] for w in a.warnings)
    assert sum(": CSAF 6.1." in n for n in loaded.notes) == len(REAL_WARNINGS)


POINTERS = [
    ("/vulnerabilities/0/cwe/name", "$.vulnerabilities[0].cwe.name"),
    ("/product_tree/branches/0/branches/3", "$.product_tree.branches[0].branches[3]"),
    ("/document/a~1b/c~0d", "$.document['a/b']['c~d']"),
    ("/document/7", "$.document['7']"),  # a digit key of an object is a key
    ("/", "$"),
    ("", "$"),
]


@pytest.mark.parametrize("pointer, path", POINTERS, ids=[p[1] for p in POINTERS])
def test_json_pointers_become_our_json_paths(pointer, path):
    document = {"vulnerabilities": [{"cwe": {"name": "x"}}],
                "product_tree": {"branches": [{"branches": [{}, {}, {}, {}]}]},
                "document": {"a/b": {"c~d": 1}, "7": 0}}
    assert pointer_to_path(pointer, document) == path


# --- the verdict cache: a real SQLite file --------------------------------------------------

KINDS = {  # one file of each verdict: refused, warned, schema-invalid, clean
    "refused.json": SUITE / "oasis_csaf_tc-csaf_2_0-2021-6-1-01-01.json",
    "warned.json": REAL / "icsa-20-175-03.json",
    "invalid.json": FIXTURES / "advisories" / "broken" / "no-title.json",
    "clean.json": REAL / "icsa-25-035-04.json",
}


@pytest.fixture
def folder(tmp_path) -> Path:
    out = tmp_path / "advisories"
    out.mkdir()
    for name, source in KINDS.items():
        shutil.copy(source, out / name)
    return out


def _load(folder: Path, cache: Path | None):
    """The load, and how many documents the csaf package validated for it."""
    before = conformance.TALLY.documents
    loaded = load_advisories([folder], cache=cache)
    return loaded, conformance.TALLY.documents - before


def test_a_second_load_takes_every_verdict_from_the_cache(folder, tmp_path):
    cache = tmp_path / "home" / "cache" / "csaf-verdicts.sqlite"
    first, ran = _load(folder, cache)
    assert ran == 3 and cache.is_file()  # the schema-invalid file never reaches the tests
    second, ran_again = _load(folder, cache)
    assert ran_again == 0 and second == first


def test_cached_verdicts_give_exactly_the_loaded_of_no_cache(folder, tmp_path):
    cache = tmp_path / "verdicts.sqlite"
    _load(folder, cache)
    cached, ran = _load(folder, cache)
    uncached, _ = _load(folder, None)
    assert ran == 0 and cached == uncached
    assert {Path(s.file).name for s in cached.skipped} == {"refused.json", "invalid.json"}
    assert [Path(a.file).name for a in cached.advisories if a.warnings] == ["warned.json"]


def test_a_file_changed_by_one_byte_is_validated_again(folder, tmp_path):
    cache = tmp_path / "verdicts.sqlite"
    _load(folder, cache)
    data = bytearray((folder / "clean.json").read_bytes())
    data[data.index(b"{") + 1:data.index(b"{") + 1] = b" "  # one byte of white space
    (folder / "clean.json").write_bytes(bytes(data))
    loaded, ran = _load(folder, cache)
    assert ran == 1 and len(loaded.advisories) == 2


def test_another_verdict_format_is_not_read(folder, tmp_path, monkeypatch):
    cache = tmp_path / "verdicts.sqlite"
    _load(folder, cache)
    monkeypatch.setattr(verdicts, "VERDICT_FORMAT", verdicts.VERDICT_FORMAT + 1)
    assert _load(folder, cache)[1] == 3 and _load(folder, cache)[1] == 0


@pytest.mark.parametrize("damage", [
    lambda p: p.write_bytes(b"this is not a SQLite database\n" * 100),
    lambda p: p.mkdir(),
    lambda p: p.parent.rmdir() or p.parent.write_text("a file where the folder should be"),
], ids=["corrupt-file", "a-folder", "parent-is-a-file"])
def test_an_unusable_cache_warns_once_and_the_run_validates_without_it(folder, tmp_path,
                                                                       caplog, damage):
    cache = tmp_path / "cache" / "verdicts.sqlite"
    cache.parent.mkdir()
    damage(cache)
    with caplog.at_level(logging.WARNING, logger="otpatch.modules.advisories.verdicts"):
        loaded, ran = _load(folder, cache)
    assert ran == 3 and loaded == _load(folder, None)[0]
    warned = [r.getMessage() for r in caplog.records if r.name.endswith("verdicts")]
    assert len(warned) == 1 and str(cache) in warned[0] and "without the cache" in warned[0]


def test_a_damaged_row_is_validated_again_and_rewritten(folder, tmp_path):
    import sqlite3

    cache = tmp_path / "verdicts.sqlite"
    _load(folder, cache)
    with sqlite3.connect(cache) as db:
        db.execute("UPDATE verdicts SET verdict = '{\"schema\": 7}'")
    db.close()
    assert _load(folder, cache)[1] == 3 and _load(folder, cache)[1] == 0


def test_two_processes_share_one_cache_at_once(folder, tmp_path):
    cache = tmp_path / "verdicts.sqlite"
    code = ("import sys; from otpatch.modules.advisories.load import load_advisories; "
            "l = load_advisories([sys.argv[1]], cache=sys.argv[2]); print(len(l.advisories))")
    runs = [subprocess.Popen([sys.executable, "-c", code, str(folder), str(cache)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert outputs == [("2\n", "")] * 2  # no warning: the second writer waited its turn
    assert _load(folder, cache)[1] == 0


def test_no_cache_writes_no_file(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OTPATCH_HOME", raising=False)
    _load(folder, None)
    assert not (tmp_path / ".otpatch").exists()


def test_the_version_key_names_the_format_the_csaf_package_and_the_schema():
    key = verdicts.version_key()
    assert key.startswith(f"{verdicts.VERDICT_FORMAT}/csaf-{conformance.csaf_version()}/")
    assert re.fullmatch(r"\d+/csaf-\S+/schema-[0-9a-f]{16}", key)


def test_closing_an_unused_cache_creates_nothing(tmp_path):
    with VerdictCache(tmp_path / "c" / "v.sqlite"):
        pass
    assert not (tmp_path / "c").exists()
