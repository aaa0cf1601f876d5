"""`otpatch advisories match` in a child process: JSON, table order, skipped files, exit codes."""
from __future__ import annotations

import json

import pytest

from conftest import FIXTURES, SHARED, otpatch_child

ADV = FIXTURES / "advisories"
PLANT = str(ADV / "plant.yml")
REAL = SHARED / "data" / "csaf" / "advisories"
SOME = [str(REAL / f) for f in ("icsa-25-035-04.json", "icsa-17-250-02.json",
                                "icsa-21-194-02.json", "icsa-17-103-02a.json")]
BROKEN = str(ADV / "broken")


def advisories(home, *args: str):
    result = otpatch_child(home, "advisories", "match", *args, timeout=60)
    assert "Traceback" not in result.stderr
    return result


def test_json_is_one_document_with_matches_skipped_files_and_a_summary(home):
    result = advisories(home, "-i", PLANT, *SOME, BROKEN, "--controls",
                        str(ADV / "controls.yml"), "--playbooks", str(ADV / "playbooks"),
                        "--json")
    assert (result.returncode, result.stderr) == (0, "")
    doc = json.loads(result.stdout)
    assert doc["advisories"] == {"files": 8, "loaded": 4, "skipped": 4}
    assert doc["summary"]["skipped_files"] == 4 and doc["due_from"] == "initial_release_date"
    assert {s["path"] for s in doc["skipped"]} == {
        "$", "$.document.title", "$.vulnerabilities[0].product_status.known_affected"}
    first = doc["matches"][0]
    assert first["due"]["category"] == "emergency_72h" and first["confidence"]
    assert {"cve", "cvss", "fixed_version", "remediation", "playbooks", "reason"} <= set(first)
    plc = next(m for m in doc["matches"] if (m["host"], m["cve"]) == ("plc-a",
                                                                      "CVE-2024-11425"))
    assert (plc["fixed_version"], plc["fix_from_prose_only"]) == ("SV4.30", True)
    assert plc["playbooks"] == ["m580-cpu@2.0.0"]
    assert doc["playbooks"]["loaded"] == ["m580-cpu@2.0.0", "mguard@1.1.0"]


def test_text_is_a_table_most_urgent_first_then_why_and_the_skipped_files(home):
    result = advisories(home, "-i", PLANT, *SOME, BROKEN)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["#", "DUE", "DEADLINE", "EFF/BASE"]
    table = lines[1:lines.index("")]
    rows = [line for line in table if line[:1].isdigit()]
    dues = [line.split()[1] for line in rows]
    order = {"emergency_72h": 0, "within_30d": 1, "next_cycle": 2}
    assert dues and [order[d] for d in dues] == sorted(order[d] for d in dues)
    # under each row: why (identification, version certainty), the fix, the playbook
    unders = [table[i + 1:i + 4] for i, line in enumerate(table) if line[:1].isdigit()]
    assert all(u[0].startswith("    why (") for u in unders)
    assert all(any(line.startswith("    fix: ") for line in table[i:i + 12])
               for i, line in enumerate(table) if line[:1].isdigit())
    assert max(len(line) for line in table) <= 120  # skipped files and notes: one line each
    skipped = [line for line in lines if line.startswith("skipped: ")]
    assert len(skipped) == 4 and all(BROKEN in line for line in skipped)
    assert "4 skipped" in result.stdout and "the exit code is 0" in result.stdout


@pytest.mark.parametrize("args, says", [
    ((str(REAL),), "the following arguments are required: -i/--inventory"),
    (("-i", PLANT), "the following arguments are required: PATH"),
    (("-i", PLANT, "no/such/dir"), "no/such/dir: no such file or folder"),
    (("-i", "no/such/plant.yml", str(REAL)), "plant.yml"),
    (("-i", PLANT, SOME[0], "--controls", str(FIXTURES / "risk" / "controls-bad-value.yml")),
     "controls-bad-value.yml"),
], ids=["no-inventory", "no-paths", "missing-path", "missing-inventory", "bad-controls"])
def test_unusable_arguments_exit_2_with_one_clear_message(home, args, says):
    result = advisories(home, *args)
    assert result.returncode == 2 and result.stdout == ""
    assert says in result.stderr


def test_only_broken_files_still_runs_and_says_so(home):
    result = advisories(home, "-i", PLANT, BROKEN, "--json")
    doc = json.loads(result.stdout)
    assert result.returncode == 0 and doc["matches"] == [] and len(doc["skipped"]) == 4


TRUTH = ADV / "truth"


def test_json_echoes_identity_remediation_sources_and_near_misses(home):
    result = advisories(home, "-i", str(TRUTH / "plant.yml"), str(TRUTH / "advisories"),
                        str(REAL / "icsa-25-035-04.json"), "--near-misses", "--json")
    assert (result.returncode, result.stderr) == (0, "")
    doc = json.loads(result.stdout)
    noc = next(m for m in doc["matches"] if m["host"] == "noc-1")
    assert noc["asset"] == {"host": "noc-1", "vendor": "Schneider Electric",
                            "model": "Modicon M580 Ethernet communication module",
                            "part_number": "BMENOC0321", "serial_number": None,
                            "device": "noc", "zone": "level1", "firmware": "v02.16"}
    assert (noc["identification"], noc["version_certainty"], noc["confidence"]) == (
        "part_number", "exact", "high")
    assert noc["remediation"]["category"] == "mitigation"
    assert "port 502/TCP" in noc["remediation"]["text"]
    cpu = next(m for m in doc["matches"] if m["host"] == "cpu-1")
    assert cpu["remediation"]["url"] is None or cpu["remediation"]["url"].startswith("http")
    assert {s["advisory"] for s in cpu["sources"]} == {"ICSA-25-035-04", "SEVD-2025-014-01"}
    assert any(d.startswith("base score") for d in cpu["disagreements"])
    misses = {(n["host"], n["advisory"], n["flag"]) for n in doc["near_misses"]}
    assert ("noc-1", "OTPATCH-TRUTH-TOOL", "software_product") in misses
    assert ("cpu-2", "ICSA-25-035-04", "not_in_range") in misses


def test_without_near_misses_the_json_says_not_asked_and_the_text_fits_120(home):
    doc = json.loads(advisories(home, "-i", str(TRUTH / "plant.yml"),
                                str(TRUTH / "advisories"), "--json").stdout)
    assert doc["near_misses"] is None
    text = advisories(home, "-i", str(TRUTH / "plant.yml"), str(TRUTH / "advisories"),
                      "--near-misses").stdout
    assert "near misses (named, judged not to affect the asset):" in text
    assert "  noc-1:" in text and "[software_product]" in text
    assert max(len(line) for line in text.splitlines() if not line.startswith("note: ")) <= 120
