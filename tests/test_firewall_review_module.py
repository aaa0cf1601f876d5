"""firewall.review as a playbook step (modules/firewall/review_module.py): facts and a
journaled record of the findings, the semantic diff against the as-found profile failing
the verification when rules were lost, bad input one clear message; and the shipped mGuard
procedure reviewing before and after its update."""
from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from otpatch.engine import runs
from otpatch.engine.clock import VirtualClock
from otpatch.engine.context import RunContext
from otpatch.engine.display import PlainDisplay
from otpatch.engine.simlab import start_lab
from otpatch.modules import registry
from otpatch.modules.firewall.review_module import FirewallReview
from otpatch.modules.mguard.simprofile import SIM_PSK

from conftest import FIXTURES, ROOT

PROFILES = FIXTURES / "firewall" / "review"
MGUARD = ROOT / "playbooks" / "mguard-firmware-update.yml"


def context(records: list) -> RunContext:
    return RunContext(mode="dry_run", clock=VirtualClock(), run_id="r-20261126T000000-000000",
                      run_dir=PROFILES / "unused", inventory=None, playbook_dir=PROFILES,
                      targets={}, facts={}, namespace={},
                      recorder=lambda kind, data: records.append((kind, data)))


def run(args: dict) -> tuple:
    records: list = []
    return FirewallReview().run(args, context(records)), records


def test_the_module_reads_files_only():
    assert registry.get("firewall.review") is FirewallReview
    assert FirewallReview.supports_dry_run and not FirewallReview.changes_device
    assert not FirewallReview.reaches_device


def test_facts_and_the_journal_record_say_counts_and_findings():
    result, records = run({"profile": "s7-open.atv", "label": "lab_before"})
    assert not result.failed and not result.changed
    assert result.msg == ("lab_before: 8 firewall rules in s7-open.atv; findings: 1 high")
    facts = result.facts["firewall"]["lab_before"]
    assert facts["counts"] == {"incoming": 6, "outgoing": 1, "vpn:remote-service:incoming": 1,
                               "vpn:remote-service:outgoing": 0, "total": 8}
    assert facts["findings"] == [{
        "id": "s7-open-into-control", "severity": "high",
        "location": {"table": "incoming", "position": 5, "path": "FW_INCOMING.4", "line": 61},
        "message": "accepts S7comm (TCP 102) from all of zone operations (10.20.20.0/24) to "
                   "all of zone control (10.10.10.0/24); the policy allows it from no host"}]
    assert facts["policy"] == "default" and len(facts["sha256"]) == 64
    ((kind, data),) = records
    assert kind == "firewall_review" and data["label"] == "lab_before"
    assert data["findings"] == facts["findings"] and data["diff"] is None


def lose_a_rule(tmp_path: Path) -> Path:
    """clean.atv with its second incoming rule gone (what update_drops_rule does)."""
    text = (PROFILES / "clean.atv").read_text()
    start = text.index("  {\n    COMMENT = \"Engineering workstation")
    end = text.index("  }\n", start) + 4
    after = tmp_path / "after.atv"
    after.write_text(text[:start] + text[end:])
    return after


@pytest.mark.parametrize("fail_on_lost_rules", [True, False])
def test_a_lost_rule_fails_the_verification_only_when_asked(tmp_path, fail_on_lost_rules):
    after = lose_a_rule(tmp_path)
    result, records = run({"profile": str(after), "compare_to": "clean.atv",
                           "fail_on_lost_rules": fail_on_lost_rules, "label": "lab_after"})
    assert result.failed is fail_on_lost_rules
    assert ("against clean.atv: 1 rule(s) lost (0 of them changed in meaning): incoming "
            "rule 2 (FW_INCOMING.1, line 35)") in result.msg
    diff = result.facts["firewall"]["lab_after"]["diff"]
    assert (diff["lost"], diff["changed"]) == (1, 0)
    assert diff["compared_to"] == str(PROFILES / "clean.atv")
    assert records[0][1]["diff"]["lost"][0]["path"] == "FW_INCOMING.1"


def test_an_unchanged_profile_passes_and_a_new_finding_is_named():
    same, _ = run({"profile": "clean.atv", "compare_to": "clean.atv",
                   "fail_on_lost_rules": True})
    assert not same.failed and same.msg.endswith("against clean.atv: no rule lost or changed")
    reset, _ = run({"profile": "syslog-disabled.atv", "compare_to": "clean.atv",
                    "fail_on_lost_rules": True, "label": "after"})
    assert not reset.failed  # a setting, not a rule: said, and the next check catches it
    assert reset.facts["firewall"]["after"]["new_findings"] == ["syslog-disabled"]
    assert reset.msg.endswith("no rule lost or changed; new findings: syslog-disabled")


BAD = [  # id, args, words of the one message
    ("missing profile", {"profile": "nope.atv"}, "profile "),
    ("truncated profile", {"profile": "truncated.atv"},
     "truncated.atv:44:3: row opened here is not closed"),
    ("encrypted profile", {"profile": "encrypted.ecs.p7e"}, "an encrypted ECS container"),
    ("bad earlier profile", {"profile": "clean.atv", "compare_to": "malformed.atv"},
     "malformed.atv:6:16: expected '='"),
    ("bad policy", {"profile": "clean.atv", "policy": "clean.atv"},
     "clean.atv:4:1: [yaml-syntax]"),
]


@pytest.mark.parametrize("args,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_fails_the_step_with_one_clear_message(args, words):
    result, records = run(args)
    assert result.failed and words in result.msg and "\n" not in result.msg
    assert records == [] and not result.facts


@pytest.mark.parametrize("args,where", [
    ({}, ()), ({"profile": "p.atv", "label": "After"}, ("label",)),
    ({"profile": "p.atv", "fail_on_lost_rules": "yes"}, ("fail_on_lost_rules",)),
    ({"profile": "p.atv", "compare": "q.atv"}, ()),
], ids=["no profile", "bad label", "flag not a boolean", "unknown argument"])
def test_arguments_are_checked_before_the_step_runs(args, where):
    problems = registry.arg_problems("firewall.review", args)
    assert [path for path, _ in problems] == [where]


# -- the shipped procedure ------------------------------------------------------------------

def dry_run(tmp_path: Path, faults: tuple[str, ...] = (), home: Path | None = None):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with start_lab(ROOT / "inventory" / "lab.yml", faults, ephemeral=True,
                   out_dir=tmp_path / "lab", syslog_to=f"127.0.0.1:{port}") as lab:
        return runs.start(str(MGUARD), str(lab.inventory), "dry_run",
                          {"syslog_port": str(port), "syslog_bind": "127.0.0.1"},
                          home or tmp_path / "home", PlainDisplay(io.StringIO()))


def test_the_procedure_completes_with_a_relative_otpatch_home(tmp_path, monkeypatch):
    """`make demo` runs with the default OTPATCH_HOME, ./.otpatch: the saved profiles' paths
    are absolute, so the review (which resolves a relative path against the playbook's
    folder) finds them."""
    monkeypatch.chdir(tmp_path)
    progress = dry_run(tmp_path, home=Path(".otpatch"))
    assert progress.status.value == "completed", progress.message
    saved = progress.facts["lab_fw"]["profiles"]["as_found"]["path"]
    assert Path(saved).is_absolute() and Path(saved).is_file()


def test_the_procedure_reviews_before_and_after_and_loses_nothing(tmp_path):
    progress = dry_run(tmp_path)
    assert progress.status.value == "completed", progress.message
    reviews = progress.facts["firewall"]
    assert set(reviews) == {"lab_before", "lab_after", "production_before", "production_after"}
    assert reviews["lab_before"]["by_severity"]["high"] == 5
    for label in ("lab_after", "production_after"):
        assert (reviews[label]["diff"]["lost"], reviews[label]["new_findings"]) == (0, [])
    evidence = progress.facts["lab_evidence"]
    as_found = progress.facts["lab_fw"]["profiles"]["as_found"]
    assert evidence["profile_sha256"] == as_found["sha256"]
    assert evidence["findings_after"] == reviews["lab_after"]["by_severity"]
    journal = (tmp_path / "home" / "journal.sqlite").read_bytes()
    assert SIM_PSK.encode() not in journal and b"firewall_review" in journal


def test_a_rule_the_update_drops_is_rolled_back_to_the_as_found_profile(tmp_path):
    progress = dry_run(tmp_path, ("update_drops_rule",))
    assert progress.status.value == "rolled_back", progress.message
    # the review runs first after the update and names the rule the update lost
    assert "lab_verify failed: firewall.review: lab_after" in progress.message
    assert "1 rule(s) lost (0 of them changed in meaning): incoming rule 2 (FW_INCOMING.1, " \
           "line 40)" in progress.message and "new findings" not in progress.message
    lab_fw = progress.facts["lab_fw"]
    assert lab_fw["import"]["path"] == lab_fw["profiles"]["as_found"]["path"]
    assert lab_fw["checks"]["restored"]["ok"]


def test_a_maintenance_rule_the_update_leaves_is_a_post_change_finding(tmp_path):
    """The simulated update leaves the service engineer's temporary SSH rule behind. The
    review after the update names it (rules added by the change) in the record's
    post-change check; mguard.check then finds the rules differ from the as-found ones, and
    the run rolls back to the as-found profile, which has no such rule."""
    import contextlib
    import json

    from otpatch.engine.cli import main

    progress = dry_run(tmp_path, ("maintenance_rule_left",))
    assert progress.status.value == "rolled_back", progress.message
    assert "17 firewall rules active, expected 16" in progress.message
    added = progress.facts["firewall"]["lab_after"]["diff"]["added"]
    assert len(added) == 1 and "TEMPORARY maintenance access" in added[0], added
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("OTPATCH_HOME", str(tmp_path / "home"))
        assert main(["report", progress.run_id, "--format", "json"]) == 0
    rows = json.loads(out.getvalue())["runs"][0]["post_change"]
    assert {(r["state"], r["check"]) for r in rows} == {("lab_verify", "firewall.lab_after")}
    assert rows[0]["finding"] == (
        "rule added by the change: incoming rule 9 (FW_INCOMING.8, line 110): accept tcp "
        "from 10.20.20.0/24 to 10.10.10.0/24 port 22 \"TEMPORARY maintenance access for the "
        "firmware update\"")
    new = [r["finding"].rsplit(": ", 1)[1] for r in rows[1:]]
    assert "unlogged-cross-zone-accept" in new, rows  # and the review says why it is bad
