"""`otpatch report` as a user types it: a change's lab and production runs in one record,
the per-device line in `status` and `--json`, and bad input (a missing run, a run still
going, a damaged journal, an output that cannot be written): one clear line, exit 2 (1 for
a damaged journal), and no file half-written."""
from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest

from otpatch.engine import runs
from otpatch.engine.cli import main
from otpatch.engine.display import PlainDisplay

from conftest import FIXTURES, ROOT

GATED = str(FIXTURES / "engine" / "gated.yml")
MGUARD = str(ROOT / "playbooks" / "mguard-firmware-update.yml")


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def mguard_lab(tmp_path):
    """The lab, its syslog port, for dry runs of the shipped mGuard procedure."""
    from otpatch.engine.simlab import start_lab

    port = _udp_port()
    with start_lab(ROOT / "inventory" / "lab.yml", ephemeral=True, out_dir=tmp_path / "lab",
                   syslog_to=f"127.0.0.1:{port}") as lab:
        yield lab, ["-e", f"syslog_port={port}", "-e", "syslog_bind=127.0.0.1"]


def _record_of(capsys, *argv: str) -> tuple[str, str]:
    code, out, err = _cli(capsys, "run", *argv, "--dry-run", "--json")
    doc = json.loads(out)
    assert code == 0, err
    return doc["run_id"], doc["record"] if "record" in doc else _record_hash(doc["run_id"])


def _record_hash(run_id: str) -> str:
    from otpatch.engine.journal import Journal, default_home

    with Journal.open(default_home(), read_only=True) as journal:
        ended = [e for e in journal.entries(run_id) if e.event_type == "run_ended"]
    return "sha256:" + ended[-1].hash


def test_a_change_report_holds_the_lab_and_production_runs(home, capsys, mguard_lab, tmp_path):
    lab, extra = mguard_lab
    common = [MGUARD, "-i", str(lab.inventory), *extra]
    lab_run, lab_record = _record_of(capsys, *common, "--stage", "lab")
    prod_run, _ = _record_of(capsys, *common, "--stage", "production", "--evidence", lab_record)
    out_file = tmp_path / "change.json"
    code, out, err = _cli(capsys, "report", "--change", prod_run, "--format", "json",
                          "-o", str(out_file))
    assert code == 0, err
    assert out.startswith(f"{out_file}: json record of {lab_run}, {prod_run}")
    doc = json.loads(out_file.read_text())
    assert doc["change"] == {"id": prod_run, "runs": [lab_run, prod_run],
                             "status": "completed", "missing": []}
    outcome = {d["host"]: (d["run_id"], d["outcome"]) for d in doc["devices"]}
    assert outcome["lab-mguard-1"] == (lab_run, "changed_and_verified")
    assert outcome["prod-mguard-1"] == (prod_run, "changed_and_verified")
    assert doc["runs"][1]["evidence"] == [lab_record]


def test_status_and_json_add_a_line_per_device(home, capsys, mguard_lab):
    lab, extra = mguard_lab
    run_id, _ = _record_of(capsys, MGUARD, "-i", str(lab.inventory), *extra, "--stage", "lab")
    code, out, _ = _cli(capsys, "status", run_id)
    assert code == 0
    assert "  lab-mguard-1: changed and verified: firmware 8.8.1 -> 8.9.3" \
        in out.splitlines()
    assert "  prod-mguard-1: not changed: not read by this run" in out.splitlines()
    code, out, _ = _cli(capsys, "status", run_id, "--json")
    devices = {d["host"]: d for d in json.loads(out)["devices"]}
    assert devices["lab-mguard-1"]["outcome"] == "changed_and_verified"
    assert devices["lab-mguard-1"]["verified"] is True


def _awaiting(home: Path) -> str:
    progress = runs.start(GATED, None, "dry_run", {}, home, PlainDisplay(io.StringIO()))
    assert progress.status.value == "awaiting"
    return progress.run_id


def _ended(home: Path) -> str:
    change = str(FIXTURES / "engine" / "change-and-verify.yml")
    progress = runs.start(change, None, "dry_run", {"device": str(home.parent / "d.json")},
                          home, PlainDisplay(io.StringIO()))
    assert progress.status.value == "completed"
    return progress.run_id


def _damaged(home: Path) -> str:
    import sqlite3

    run_id = _awaiting(home)
    conn = sqlite3.connect(home / "journal.sqlite", isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS entries_no_update")
    conn.execute("UPDATE entries SET payload = replace(payload, 'prepared', 'unprepared') "
                 "WHERE seq = 3")
    conn.close()
    return run_id


BAD = [  # id, make the run (home -> run id), output file, exit code, words of the one line
    ("no such run", lambda home: (_awaiting(home), "r-20260101T000000-abcdef")[1], None, 2,
     "no run 'r-20260101T000000-abcdef' in "),
    ("still going", _awaiting, None, 2, "the run has not ended (awaiting at "),
    ("damaged journal", _damaged, None, 1, "is damaged: entry #3"),
    ("unwritable output", _ended, "no-such-folder/report.html", 2, "report -o"),
]


@pytest.mark.parametrize("make,output,code,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_gets_one_line_and_writes_nothing(home, capsys, tmp_path, make, output, code,
                                                    words):
    run_id = make(home)
    target = tmp_path / (output or "report.html")
    got, out, err = _cli(capsys, "report", run_id, "--format", "html", "-o", str(target))
    assert got == code and words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not target.exists() and not list(tmp_path.glob("**/*.tmp*"))


def test_an_unwritable_output_of_an_ended_run_leaves_nothing(home, capsys, tmp_path,
                                                             mguard_lab):
    lab, extra = mguard_lab
    run_id, _ = _record_of(capsys, MGUARD, "-i", str(lab.inventory), *extra, "--stage", "lab")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        got, _, err = _cli(capsys, "report", run_id, "--format", "md", "-o",
                           str(folder / "r.md"))
        if got == 0:  # root writes anywhere: then the file is whole
            assert (folder / "r.md").read_text().startswith("#")
        else:
            assert got == 2 and "report -o" in err and not list(folder.iterdir())
    finally:
        folder.chmod(0o700)
