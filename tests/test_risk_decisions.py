"""A register decision's lifecycle through `otpatch risk cycle --json` on the shipped lab
data (inventory/lab.yml, lab-risk-register.yml, lab-patch-sources.yml, lab-controls.yml, the
real CISA CSAF files): a deferred decision re-opens on a new advisory revision, on a CVE
joining the advisory, on a control's credit withdrawn by the firewall review of an edited
lab mGuard profile, when its review date passes and when its signed entry is changed; a
plan step's progress does not void the acceptance."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest

from otpatch.engine.cli import main
from otpatch.modules.risk.decisions import AdvisoryNow, Status, judge
from otpatch.modules.risk.register import load_register

from conftest import ROOT, SHARED
from profile_edits import HISTORIAN, change, insert, profile_text, rule

ADVISORIES = SHARED / "data" / "csaf" / "advisories"
INVENTORY = str(ROOT / "inventory" / "lab.yml")
REGISTER = ROOT / "inventory" / "lab-risk-register.yml"
DEFERRED = 11  # prod-plc-1 ICSA-25-035-04: deferred, accepted by Alice Chen, in the cycle
MITIGATED = 6  # prod-plc-1 ICSA-23-201-01: mitigate, plan step 2 late on 2025-03-01


@pytest.fixture(scope="module")
def cycle_home(tmp_path_factory):
    """One OTPATCH_HOME for the module: its CSAF verdict cache is filled once."""
    return tmp_path_factory.mktemp("cycle-home")


def cycle(capsys, monkeypatch, home, *extra: str, register=REGISTER, advisories=()):
    monkeypatch.setenv("OTPATCH_HOME", str(home))
    code = main(["risk", "cycle", "-i", INVENTORY, "--register", str(register),
                 "--advisories", str(ADVISORIES), *[a for p in advisories
                                                    for a in ("--advisories", str(p))],
                 "--as-of", "2025-03-01", "--json", *extra])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, json.loads(out.out)


def revised(tmp_path, new_cve: str | None = None):
    """ICSA-25-035-04 as if CISA had revised it on 2025-02-20 (revision 1 -> 2), optionally
    with a CVE joined: the TEST bumps tracking.version and revision_history of a copy of the
    real file; CISA has published no such revision."""
    doc = json.loads((ADVISORIES / "icsa-25-035-04.json").read_text())
    tracking = doc["document"]["tracking"]
    tracking["version"] = "2"
    tracking["current_release_date"] = "2025-02-20T00:00:00.000000Z"
    tracking["revision_history"].append({"date": "2025-02-20T00:00:00.000000Z", "number": "2",
                                         "summary": "Update A (written by the test)"})
    if new_cve:
        joined = copy.deepcopy(doc["vulnerabilities"][0])
        joined["cve"] = new_cve
        doc["vulnerabilities"].append(joined)
    folder = tmp_path / "revised"
    folder.mkdir()
    (folder / "icsa-25-035-04.json").write_text(json.dumps(doc))
    return folder


def profile(tmp_path, *edits):
    path = tmp_path / "prod-mguard-1.atv"
    path.write_text(profile_text(*edits))
    return f"prod-mguard-1={path}"


def edited_register(tmp_path, old: str, new: str, count: int = 1):
    text = REGISTER.read_text()
    assert text.count(old) == count, old
    path = tmp_path / "register.yml"
    path.write_text(text.replace(old, new))
    return path


def flipped_signature(number: int) -> tuple[str, str]:
    """The entry's signature and the same with its first character changed."""
    signature = load_register(REGISTER).entries[number - 1].accepted.signature
    return signature, ("B" if signature[0] == "A" else "A") + signature[1:]


def decision(doc, number):
    return next(d for d in doc["decisions"] if d["entry"] == number)


def test_on_the_shipped_data_the_deferred_decision_stands(capsys, monkeypatch, cycle_home):
    code, doc = cycle(capsys, monkeypatch, cycle_home)
    assert code == 1  # the lab is behind elsewhere (test_risk_cycle.py)
    deferred = decision(doc, DEFERRED)
    assert (deferred["status"], deferred["reasons"]) == ("decided", [])
    assert deferred["accepted"] == {"by": "Alice Chen", "role": "process_owner",
                                    "at": "2025-02-11T14:30:00+00:00"}


REOPEN = [  # id, how the inputs change, entry, status, reason code, text in the reason
    ("a new advisory revision",
     lambda tmp: {"advisories": [revised(tmp)]}, DEFERRED, "re-opened", "new-revision",
     "ICSA-25-035-04 revised: revision 1 -> 2 (2 of 2025-02-20: Update A (written by the "
     "test))"),
    ("a new CVE joined the advisory",
     lambda tmp: {"advisories": [revised(tmp, "CVE-2025-0001")]}, DEFERRED, "re-opened",
     "new-cve", "CVE-2025-0001 joined ICSA-25-035-04 and affects prod-plc-1: not in the "
                "decision"),
    ("the historian's rule widened to its VLAN: credit withdrawn",
     lambda tmp: {"extra": ["--profile", profile(tmp, change(
         "FW_INCOMING", HISTORIAN, "SRC_IP", "10.20.20.0/24"))]}, DEFERRED, "re-opened",
     "credit-withdrawn", "control mguard-blocks-modbus: credit withdrawn by the firewall "
                         "review of prod-mguard-1 ("),
    ("all of VLAN 20 let in to Modbus: credit withdrawn",
     lambda tmp: {"extra": ["--profile", profile(tmp, insert("FW_INCOMING", 0, rule(
         "VLAN 20 to Modbus", "tcp", "10.20.20.0/24", "10.10.10.0/24", "502")))]},
     DEFERRED, "re-opened", "credit-withdrawn", "accepts tcp from 10.20.20.0/24"),
    ("the review date passed (and with it the deadline counts again)",
     lambda tmp: {"extra": ["--as-of", "2025-06-02"]}, DEFERRED, "overdue", "review-passed",
     "review date 2025-05-31 passed"),
    ("the signed rationale edited",
     lambda tmp: {"register": edited_register(
         tmp, "patch in the planned cycle after the lab and staging runs",
         "patch when convenient")}, DEFERRED, "re-opened", "signature-invalid",
     "acceptance by Alice Chen: signature no longer matches the entry (changed since it was "
     "accepted)"),
    ("the signature itself tampered with",
     lambda tmp: {"register": edited_register(tmp, *flipped_signature(DEFERRED))},
     DEFERRED, "re-opened", "signature-invalid", "signature no longer matches the entry"),
    ("a mitigation plan step late",
     lambda tmp: {}, MITIGATED, "overdue", "plan-step-overdue",
     "plan step 2 (Update prod-plc-1 to the fixed firmware (change CR-2025-014)) due "
     "2025-02-15, not done"),
]


@pytest.mark.parametrize("change_inputs,number,status,code,text", [c[1:] for c in REOPEN],
                         ids=[c[0] for c in REOPEN])
def test_a_decision_reopens_and_says_why(tmp_path, capsys, monkeypatch, cycle_home,
                                         change_inputs, number, status, code, text):
    given = change_inputs(tmp_path)
    extra = given.pop("extra", [])
    exit_code, doc = cycle(capsys, monkeypatch, cycle_home, *extra, **given)  # last --as-of wins
    assert exit_code == 1
    judged = decision(doc, number)
    assert judged["status"] == status
    reasons = {r["code"]: r["text"] for r in judged["reasons"]}
    assert code in reasons, judged["reasons"]
    assert text in reasons[code]


def test_the_unedited_lab_profile_keeps_the_credit(tmp_path, capsys, monkeypatch, cycle_home):
    code, doc = cycle(capsys, monkeypatch, cycle_home, "--profile", profile(tmp_path))
    assert decision(doc, DEFERRED)["status"] == "decided"
    assert doc["profiles"] == [f"prod-mguard-1 ({tmp_path / 'prod-mguard-1.atv'})"]


def test_recording_a_plan_step_done_keeps_the_acceptance(tmp_path, capsys, monkeypatch,
                                                         cycle_home):
    text = REGISTER.read_text()
    step = "by: '2025-02-15T00:00:00+00:00'\n"
    assert text.count(step) == 1
    path = tmp_path / "register.yml"
    path.write_text(text.replace(step, step + "    done: 2025-02-14\n"))
    _, doc = cycle(capsys, monkeypatch, cycle_home, register=path)
    judged = decision(doc, MITIGATED)
    assert (judged["status"], judged["reasons"]) == ("decided", [])
    assert judged["plan"][1]["done"] == "2025-02-14T00:00:00+00:00"


UTC = timezone.utc
NOW = datetime(2025, 3, 1, 23, 59, 59, tzinfo=UTC)
NOW_SAYS = AdvisoryNow("ICSA-25-035-04", "1", cves=("CVE-2024-11425",))


@pytest.mark.parametrize("number,advisory,now,status,codes", [
    (DEFERRED, NOW_SAYS, NOW, Status.DECIDED, []),
    (DEFERRED, NOW_SAYS, datetime(2025, 2, 10, tzinfo=UTC), Status.OPEN, ["not-accepted"]),
    (DEFERRED, AdvisoryNow("ICSA-25-035-04", "1", cves=()), NOW, Status.CLOSED, []),
    (DEFERRED, None, NOW, Status.DECIDED, []),
    (2, None, NOW, Status.OVERDUE, ["deadline-passed"]),
    (10, None, NOW, Status.DECIDED, []),
], ids=["stands", "judged before it was accepted", "no longer affects the asset: closed",
        "advisory not given: noted", "a patch past its deadline", "a patch not yet due"])
def test_judge(number, advisory, now, status, codes):
    entry = load_register(REGISTER).entries[number - 1]
    judged = judge(entry, now, number=number, advisory=advisory)
    assert (judged.status, [r.code for r in judged.reasons]) == (status, codes)
    if advisory is None and entry.advisory:
        assert judged.notes[0].startswith(f"{entry.advisory} is not among the advisories given")


def test_without_a_profile_the_claims_are_checked_against_the_stored_backup(
        tmp_path, capsys, monkeypatch, cycle_home):
    """The control names the mGuard that enforces it (enforced_by: [prod-mguard-1]): with no
    --profile, `risk cycle` checks its claims against that mGuard's newest stored backup.
    A backup whose rules refute the claim withdraws the credit (the deferred decision
    re-opens); a newer backup that holds keeps it; with none stored, or a damaged one, the
    report names the mGuard as not checked."""
    import shutil
    from pathlib import Path

    from otpatch.modules.advisories.verdicts import CACHE_FILE
    from otpatch.modules.contract.canonical import sha256_hex

    home = tmp_path / "home"
    home.mkdir()
    if (cycle_home / CACHE_FILE).is_file():  # the verdicts of the module's earlier cycles
        (home / CACHE_FILE).parent.mkdir(parents=True)
        shutil.copy(cycle_home / CACHE_FILE, home / CACHE_FILE)

    def store(*edits) -> str:
        file = profile(tmp_path, *edits).split("=", 1)[1]
        assert main(["backup", "-i", INVENTORY, "--host", "prod-mguard-1", "--from", file,
                     "--operator", "Chen Wei"]) == 0
        capsys.readouterr()
        return sha256_hex(Path(file).read_bytes())

    monkeypatch.setenv("OTPATCH_HOME", str(home))
    _, doc = cycle(capsys, monkeypatch, home)
    assert doc["profiles"] == ["prod-mguard-1: not checked: no mguard_profile backup stored "
                               "for prod-mguard-1 (otpatch backup --host prod-mguard-1)"]
    assert decision(doc, DEFERRED)["status"] == "decided"

    widened = store(change("FW_INCOMING", HISTORIAN, "SRC_IP", "10.20.20.0/24"))
    _, doc = cycle(capsys, monkeypatch, home)
    assert doc["profiles"][0].startswith(f"prod-mguard-1 (stored backup {widened[:12]} of ")
    judged = decision(doc, DEFERRED)
    reasons = {r["code"]: r["text"] for r in judged["reasons"]}
    assert judged["status"] == "re-opened"
    assert reasons["credit-withdrawn"].startswith(
        "control mguard-blocks-modbus: credit withdrawn by the firewall review of "
        f"prod-mguard-1 (stored backup {widened[:12]} of ")

    good = store()
    _, doc = cycle(capsys, monkeypatch, home)
    assert doc["profiles"][0].startswith(f"prod-mguard-1 (stored backup {good[:12]} of ")
    assert decision(doc, DEFERRED)["status"] == "decided"

    damaged = home / "backups" / "sha256" / good[:2] / good
    damaged.chmod(0o600)
    damaged.write_bytes(damaged.read_bytes() + b"\n")
    _, doc = cycle(capsys, monkeypatch, home)
    assert doc["profiles"][0].startswith(f"prod-mguard-1: not checked: the newest "
                                         f"mguard_profile backup of prod-mguard-1, "
                                         f"{good[:12]}, cannot be used (differs): ")
