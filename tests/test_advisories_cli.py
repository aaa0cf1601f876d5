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
    assert lines[0].split()[:4] == ["#", "DUE", "DEADLINE", "EFF"]
    table = lines[1:lines.index("")]
    dues = [line.split()[1] for line in table]
    order = {"emergency_72h": 0, "within_30d": 1, "next_cycle": 2}
    assert dues and [order[d] for d in dues] == sorted(order[d] for d in dues)
    assert "why:" in lines
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
