"""The CLI contract as a user meets it: one clear line per problem, exit codes, --json."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, otpatch_child, run_json

READINESS = str(ROOT / "playbooks" / "patch-readiness.yml")
LAB = str(ROOT / "inventory" / "lab.yml")
CHANGE = str(FIXTURES / "engine" / "change-and-verify.yml")
GATED = str(FIXTURES / "engine" / "gated.yml")
LOCATED = r"^{file}:\d+:\d+: \[{rule}\] "

BAD_FILES = [  # id, file content (bytes), expected rule
    ("malformed YAML", b"apiVersion: otpatch/v1\nstates: [a, b\n", "yaml-syntax"),
    ("a list, not a mapping", b"- apiVersion: otpatch/v1\n- kind: Playbook\n", "yaml-not-mapping"),
    ("empty file", b"", "yaml-empty"),
    ("binary junk", bytes(range(256)) * 4, "yaml-binary"),
    ("alias bomb", b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n".encode()
        for i in range(8)), "yaml-alias-bomb"),
]


@pytest.mark.parametrize("content,rule", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_playbook_files_exit_2_with_one_located_line(tmp_path, home, content, rule):
    path = tmp_path / "bad.yml"
    path.write_bytes(content)
    done = otpatch_child(home, "validate", str(path), timeout=10)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{path}:") and f"[{rule}]" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_valid_playbooks_validate(home):
    done = otpatch_child(home, "validate", READINESS, CHANGE)
    assert done.returncode == 0, done.stderr
    assert f"{READINESS}: valid (sha256:" in done.stdout


def test_every_problem_at_once_with_json(home, tmp_path):
    path = tmp_path / "two.yml"
    path.write_text("apiVersion: otpatch/v1\nkind: Playbook\nmetadata: {name: two, version: 1.0.0}\n"
                    "initial: a\nstates:\n  a:\n    do:\n      - core.nope: {}\n    next: b\n"
                    "  c: {next: completed}\n")
    done = otpatch_child(home, "validate", "--json", str(path))
    assert done.returncode == 2
    doc = json.loads(done.stdout)
    rules = sorted(p["rule"] for p in doc["playbooks"][0]["problems"])
    assert rules == ["unknown-module", "unknown-state", "unreachable-state"]


def test_dry_run_json_is_one_document_and_exit_0(home, tmp_path):
    done = otpatch_child(home, "run", CHANGE, "--dry-run", "--json", "-e",
                         f"device={tmp_path / 'd.json'}")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "completed" and doc["simulated_clock"] is True
    assert [v["state"] for v in doc["path"]][-1] == "completed"


@pytest.mark.parametrize("extra,code,status", [
    (["-e", "verify_ok=no"], 1, "rolled_back"), ([], 0, "completed")], ids=["rolled back", "completed"])
def test_exit_code_follows_the_outcome(home, tmp_path, extra, code, status):
    done = otpatch_child(home, "run", CHANGE, "--dry-run", "--json",
                         "-e", f"device={tmp_path / 'd.json'}", *extra)
    assert (done.returncode, run_json(done)["status"]) == (code, status)


def test_refused_gate_exits_3(home):
    done = otpatch_child(home, "run", GATED, "--execute")
    assert done.returncode == 3
    assert "the run's operator is not named" in done.stdout


def test_plain_output_when_piped_names_the_record(home, lab):
    done = otpatch_child(home, "run", READINESS, "-i", str(lab.inventory), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "[sim 04:05:00] state production_readiness [production]" in done.stdout
    assert f"record: journal {home / 'journal.sqlite'}" in done.stdout


def tamper(home: Path, sql: str) -> None:
    conn = sqlite3.connect(home / "journal.sqlite")
    conn.executescript("DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;" + sql)
    conn.close()


@pytest.mark.parametrize("sql,named", [
    ("UPDATE entries SET payload = replace(payload, '\"manual\"', '\"auto\"') WHERE seq = "
     "(SELECT min(seq) FROM entries WHERE event_type = 'step_result' AND payload LIKE "
     "'%manual%')", "#7"),
    ("UPDATE entries SET ts = '2020-01-01T00:00:00.000000+00:00' WHERE seq = 5", "#5"),
    ("DELETE FROM entries WHERE seq = 7", "#7"),
    ("UPDATE entries SET seq = 100 WHERE seq = 3; UPDATE entries SET seq = 3 WHERE seq = 4;"
     "UPDATE entries SET seq = 4 WHERE seq = 100", "#3"),
], ids=["payload edited", "timestamp edited", "deleted", "reordered"])
def test_journal_verify_names_the_tampered_entry(home, tmp_path, sql, named):
    run_json(otpatch_child(home, "run", CHANGE, "--dry-run", "--json", "-e",
                           f"device={tmp_path / 'd.json'}"))
    assert otpatch_child(home, "journal", "verify").returncode == 0
    tamper(home, sql)
    done = otpatch_child(home, "journal", "verify")
    assert done.returncode == 1
    assert named in done.stderr and "Traceback" not in done.stderr


def test_status_lists_and_shows_runs(home, tmp_path):
    doc = run_json(otpatch_child(home, "run", CHANGE, "--dry-run", "--json", "-e",
                                 f"device={tmp_path / 'd.json'}"))
    listing = otpatch_child(home, "status")
    assert doc["run_id"] in listing.stdout and "completed" in listing.stdout
    detail = otpatch_child(home, "status", doc["run_id"])
    assert "path (simulated clock):" in detail.stdout
    assert "00:00:00 - 00:08:00  change  (succeed)" in detail.stdout


@pytest.mark.parametrize("args,message", [
    (["resume", "nope"], "otpatch: bad run id 'nope'"),
    (["resume", "r-20260101T000000-abcdef"], "otpatch: no journal at"),
    (["run", "missing.yml", "--dry-run"], "missing.yml"),
    (["run", CHANGE, "--dry-run", "-e", "nonsense"], "otpatch: -e 'nonsense': expected name=value"),
    (["run", READINESS, "--dry-run"], "give an inventory with -i"),
    (["firewall", "review", "missing.atv"], "otpatch: profile missing.atv: cannot read"),
    (["journal", "verify"], "otpatch: no journal at"),
], ids=["bad run id", "no journal", "missing playbook", "bad -e", "no inventory",
        "missing profile", "verify without journal"])
def test_bad_arguments_exit_2_with_one_line(home, args, message):
    done = otpatch_child(home, *args)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_that_is_not_a_journal_is_one_clear_line(home):
    home.mkdir(parents=True)
    (home / "journal.sqlite").write_bytes(b"this is not sqlite" * 100)
    done = otpatch_child(home, "status")
    assert done.returncode != 0 and len(done.stderr.splitlines()) == 1
    assert "journal.sqlite" in done.stderr and "Traceback" not in done.stderr


def test_graph_writes_dot_to_a_file(home, tmp_path):
    out = tmp_path / "g.dot"
    done = otpatch_child(home, "graph", CHANGE, "--format", "dot", "-o", str(out))
    assert done.returncode == 0
    assert "change -> restore" in out.read_text()
