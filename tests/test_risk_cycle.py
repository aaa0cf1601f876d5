"""`otpatch risk cycle` on the shipped lab data (the real CISA CSAF files, as of 2025-03-01):
every patch source listed, even the one with nothing in the cycle, what applies, the
decisions, the undecided and the overdue; `otpatch risk accept` end to end (the register
rewritten with its layout kept, the signed acceptance in the site record); bad input is one
located line and exit 2."""
from __future__ import annotations

import json
import shutil

import pytest

from otpatch.engine import siterecord
from otpatch.engine.cli import main
from otpatch.modules.risk.register import load_register

from conftest import FIXTURES, ROOT, SHARED, lab_keys

ADVISORIES = str(SHARED / "data" / "csaf" / "advisories")
INVENTORY = str(ROOT / "inventory" / "lab.yml")
REGISTER = ROOT / "inventory" / "lab-risk-register.yml"
LIFECYCLE = FIXTURES / "risk" / "register-lifecycle.yml"


@pytest.fixture(scope="module")
def cycle_home(tmp_path_factory):
    """One OTPATCH_HOME for the module: its CSAF verdict cache is filled once."""
    return tmp_path_factory.mktemp("cycle-home")


def run(capsys, monkeypatch, home, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("OTPATCH_HOME", str(home))
    code = main(list(args))
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def shipped_cycle(*extra: str) -> list[str]:
    return ["risk", "cycle", "-i", INVENTORY, "--advisories", ADVISORIES,
            "--as-of", "2025-03-01", *extra]


def test_the_shipped_cycle_report_lists_every_source_and_what_is_outstanding(
        capsys, monkeypatch, cycle_home):
    code, out, _ = run(capsys, monkeypatch, cycle_home, *shipped_cycle())
    assert code == 1  # something is undecided and overdue: the report says so, and exits 1
    lines = out.splitlines()
    assert lines[0] == ("patch evaluation cycle 2025-01-26 to 2025-03-01 (35 days); decisions "
                        "judged at 2025-03-01T23:59:59+00:00")
    assert "register    inventory/lab-risk-register.yml (11 entries)" in out.replace(
        str(ROOT) + "/", "")
    assert "source cisa-ics-schneider: CISA ICS advisories (CSAF), Schneider Electric " \
           "products" in lines
    assert "  evaluated: 4 advisories released or revised in the cycle" in lines
    for advisory in ("ICSA-25-035-06", "ICSA-25-035-07", "ICSA-25-037-02"):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"    {advisory} "))
        assert lines[at + 1] == "      applies to none of the 7 assets covered"
    assert "      applies to 3 assets (CVE-2024-11425)" in lines
    assert any(line.split()[:4] == ["prod-plc-1", "defer", "decided", "entry"]
               and "accepted by Alice Chen (process_owner) 2025-02-11" in line
               for line in lines)
    assert "        staging-plc-1   -         UNDECIDED [medium confidence]" in lines
    assert "  earlier advisories: 6 decisions stand, 3 need attention:" in lines
    assert "      - review date 2025-01-31 passed" in lines
    # the mGuards' source had nothing in the cycle: evaluated, and said so
    at = lines.index("source cisa-ics-phoenix: CISA ICS advisories (CSAF), Phoenix Contact "
                     "products")
    assert lines[at + 2].startswith("  16 documents of this source among the advisories "
                                    "given, newest ICSA-23-250-02 of 2023-09-07")
    assert lines[at + 3] == "  evaluated: nothing released or revised in the cycle"
    assert lines[-2] == ("result: 1 undecided; 0 not accepted; 0 re-opened; 3 overdue: needs "
                         "attention (exit 1)")
    assert lines[-1].startswith("recorded in the site record: r-")


def test_the_shipped_cycle_as_json(capsys, monkeypatch, cycle_home):
    code, out, _ = run(capsys, monkeypatch, cycle_home, *shipped_cycle("--json"))
    doc = json.loads(out)
    assert (code, doc["clean"]) == (1, False)
    assert [s["id"] for s in doc["sources"]] == ["cisa-ics-schneider", "cisa-ics-phoenix"]
    schneider, phoenix = doc["sources"]
    assert [e["advisory"] for e in schneider["evaluated"]] == [
        "ICSA-25-035-04", "ICSA-25-035-06", "ICSA-25-035-07", "ICSA-25-037-02"]
    applies = schneider["evaluated"][0]["assets"]
    assert [(a["host"], a["entries"], a["undecided"]) for a in applies] == [
        ("lab-plc-1", [10], False), ("staging-plc-1", [], True), ("prod-plc-1", [11], False)]
    assert schneider["carried"] == [2, 6, 9] and schneider["standing"] == 6
    assert (phoenix["documents"], phoenix["evaluated"], phoenix["evaluated_ok"]) == (16, [], True)
    status = {d["entry"]: d["status"] for d in doc["decisions"]}
    assert status == {1: "decided", 2: "overdue", 3: "decided", 4: "decided", 5: "decided",
                      6: "overdue", 7: "decided", 8: "decided", 9: "overdue", 10: "decided",
                      11: "decided"}
    assert {k: doc["counts"][k] for k in ("evaluated", "applies", "affected_assets",
                                          "undecided", "overdue", "not_evaluated_sources")} \
        == {"evaluated": 4, "applies": 1, "affected_assets": 3, "undecided": 1, "overdue": 3,
            "not_evaluated_sources": 0}


def test_each_cycle_is_journaled_in_the_signed_site_record(tmp_path, capsys, monkeypatch):
    """The report an auditor asks for is kept, not only printed: the whole JSON document,
    its SHA-256 and who evaluated, in the site record, which `journal verify` checks; a
    cycle in which nothing was released is recorded too, every source listed as evaluated.
    --no-record is a look and adds nothing."""
    from otpatch.engine.approvals import canonical
    from otpatch.modules.contract.canonical import sha256_hex

    home = tmp_path / "home"
    code, out, _ = run(capsys, monkeypatch, home, *shipped_cycle("--json", "--operator",
                                                                 "Bernd Maier"))
    doc = json.loads(out)
    (entry,) = siterecord.entries(home, ["cycle_evaluated"])
    assert entry.run_id == doc.pop("site_record") and entry.operator == "Bernd Maier"
    p = entry.payload
    assert (p["report"], p["report_sha256"]) == (doc, sha256_hex(canonical(doc)))
    assert (p["start"], p["days"], p["clean"]) == ("2025-01-26T00:00:00+00:00", 35, False)
    assert p["sources"] == [
        {"id": "cisa-ics-schneider", "evaluated_ok": True, "evaluated": 4, "undecided": 1},
        {"id": "cisa-ics-phoenix", "evaluated_ok": True, "evaluated": 0, "undecided": 0}]

    code, out, _ = run(capsys, monkeypatch, home, "risk", "cycle", "-i", INVENTORY,
                       "--advisories", ADVISORIES, "--as-of", "2020-06-30", "--days", "30")
    assert out.splitlines()[-1].startswith("recorded in the site record: r-")
    quiet = siterecord.entries(home, ["cycle_evaluated"])[-1].payload
    assert quiet["end"].startswith("2020-07-01") and quiet["counts"]["evaluated"] == 0
    assert [(s["evaluated_ok"], s["evaluated"]) for s in quiet["sources"]] == [(True, 0)] * 2

    code, out, _ = run(capsys, monkeypatch, home, *shipped_cycle("--no-record"))
    assert out.splitlines()[-1] == ("not recorded (--no-record): a look, not the cycle's "
                                    "record")
    assert len(siterecord.entries(home, ["cycle_evaluated"])) == 2
    code, out, _ = run(capsys, monkeypatch, home, "journal", "verify", "--json")
    assert code == 0 and json.loads(out)["site_record"]["ok"] is True, out


def test_a_source_with_no_document_is_not_evaluated(tmp_path, capsys, monkeypatch, cycle_home):
    sources = tmp_path / "sources.yml"
    sources.write_text((ROOT / "inventory" / "lab-patch-sources.yml").read_text() + (
        "  - id: phoenix-psirt\n    name: Phoenix Contact PSIRT (CERT@VDE)\n"
        "    publisher: https://cert.vde.com/\n    vendors: [Phoenix Contact]\n"))
    code, out, _ = run(capsys, monkeypatch, cycle_home, *shipped_cycle("--sources",
                                                                       str(sources)))
    assert code == 1
    assert "  NOT EVALUATED: no document of this source among the advisories given" in out
    assert "1 sources not evaluated" in out.splitlines()[-2]


def test_accept_refuses_a_decision_on_a_superseded_revision(tmp_path, capsys, monkeypatch):
    """Decided on revision 1; by the time the person signs, Update A (revision 2) is out: the
    decision is re-decided first, never signed on what the advisory no longer says."""
    register = tmp_path / "register.yml"
    before = LIFECYCLE.read_text().replace('advisory_revision: "2"', 'advisory_revision: "1"', 1)
    register.write_text(before)
    keys = lab_keys(tmp_path / "keys", ["alice-chen"])
    code, out, err = run(capsys, monkeypatch, tmp_path / "home", "risk", "accept",
                         str(register), "--entry", "1", "-i", INVENTORY, "--key",
                         str(keys["alice-chen"]), "--role", "process_owner", "--advisories",
                         f"{ADVISORIES}/icsa-21-194-02.json", "--at", "2021-08-02T09:00:00Z")
    assert (code, out) == (2, "")
    assert err.strip().endswith(
        "decided on revision 1 of ICSA-21-194-02, which was at revision 2 (2021-07-27: "
        "ICSA-21-194-02 Schneider Electric Modicon Controllers and Software (Update A)) on "
        "2021-08-02: re-decide on the current revision (advisory_revision) first; nothing "
        "signed"), err
    assert register.read_text() == before
    assert siterecord.entries(tmp_path / "home") == []


def test_accept_signs_writes_and_journals(tmp_path, capsys, monkeypatch):
    register = tmp_path / "register.yml"
    shutil.copy(LIFECYCLE, register)
    keys = lab_keys(tmp_path / "keys", ["alice-chen", "bernd-maier"])
    home = tmp_path / "home"
    code, out, _ = run(capsys, monkeypatch, home, "risk", "accept", str(register), "--entry",
                       "lab-plc-1:ICSA-25-035-04", "-i", INVENTORY, "--key",
                       str(keys["bernd-maier"]), "--role", "ot_security_officer",
                       "--at", "2025-02-11T14:30:00Z", "--advisories",
                       f"{ADVISORIES}/icsa-25-035-04.json")
    assert code == 0
    assert out.splitlines()[:2] == [
        "accepted: entry 2 (lab-plc-1 ICSA-25-035-04, defer) by Bernd Maier as "
        "ot_security_officer at 2025-02-11T14:30:00+00:00; review by 2025-05-31",
        "advisory ICSA-25-035-04 at revision 1 on 2025-02-11, as decided on"]
    text = register.read_text()
    assert text.startswith(LIFECYCLE.read_text().splitlines()[0])  # comments kept
    assert "    cves: [CVE-2024-11425]\n" in text  # and the layout
    accepted = load_register(register).entries[1].accepted
    assert (accepted.by, accepted.role) == ("Bernd Maier", "ot_security_officer")
    (entry,) = siterecord.entries(home, ["decision_recorded"])
    assert entry.payload["decision"]["signature"] == accepted.signature
    assert entry.payload["decision"]["binding"]["review_by"] == "2025-05-31T00:00:00+00:00"
    assert entry.operator == "Bernd Maier"


REFUSED = [  # id, entry, key, role, what the one line says
    ("the owner accepting their own decision", "2", "alice-chen", "process_owner",
     "Alice Chen owns this decision: the owner proposes, another person accepts"),
    ("a role that may not accept", "1", "alice-chen", "operator",
     "role operator may not accept a risk (may: process_owner, ot_security_officer)"),
    ("a role the person does not hold", "1", "alice-chen", "ot_security_officer",
     "Alice Chen does not hold the role ot_security_officer in the inventory"),
    ("a patch decision", "3", "alice-chen", "process_owner",
     "a patch decision needs no acceptance"),
    ("an entry not ready", "4", "bernd-maier", "ot_security_officer",
     "give review_by, advisory_revision first"),
    ("no such entry", "9", "bernd-maier", "ot_security_officer", "no entry 9 (it has 4)"),
    ("no such name", "prod-plc-9:ICSA-25-035-04", "bernd-maier", "ot_security_officer",
     "no entry named prod-plc-9:ICSA-25-035-04"),
    ("a revision not current then", "1", "alice-chen", "process_owner",
     "decided on revision 2 of ICSA-21-194-02, which was at revision 1 (2021-07-13: "
     "ICSA-21-194-02 Schneider Electric SCADApack RTU, Modicon Controllers, and Software) "
     "on 2021-07-20: re-decide on the current revision (advisory_revision) first; nothing "
     "signed", "2021-07-20T10:00:00Z"),
    ("an advisory not given", "2", "bernd-maier", "ot_security_officer",
     "ICSA-25-035-04 is not among the advisories given (--advisories): its revision cannot "
     "be checked; nothing signed", None, ("icsa-21-194-02.json",)),
]
ENTRIES_ADVISORIES = ("icsa-21-194-02.json", "icsa-25-035-04.json")  # the entries' own


@pytest.mark.parametrize("entry,person,role,fragment,at,advisories",
                         [(c + (None, None))[1:7] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_accept_refuses_and_writes_nothing(tmp_path, capsys, monkeypatch, entry, person, role,
                                           fragment, at, advisories):
    register = tmp_path / "register.yml"
    shutil.copy(LIFECYCLE, register)
    keys = lab_keys(tmp_path / "keys", [person])
    given = [a for f in advisories or ENTRIES_ADVISORIES
             for a in ("--advisories", f"{ADVISORIES}/{f}")]
    code, out, err = run(capsys, monkeypatch, tmp_path / "home", "risk", "accept",
                         str(register), "--entry", entry, "-i", INVENTORY, "--key",
                         str(keys[person]), "--role", role, *given,
                         *(("--at", at) if at else ()))
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith(f"otpatch: {register}: ") and fragment in line, line
    assert register.read_bytes() == LIFECYCLE.read_bytes()
    assert siterecord.entries(tmp_path / "home") == []


BAD = [  # id, text in the shipped register (its first), replaced by, what the line says
    ("an unknown approver", "    by: Alice Chen\n    role: process_owner\n    at: '2025-02-11",
     "    by: Zoe Null\n    role: process_owner\n    at: '2025-02-11",
     "[register-acceptor] prod-plc-1 ICSA-25-035-04: accepted.by Zoe Null as process_owner: "
     "nobody of that name is an approver in the inventory"),
    ("a bad date", "review_by: '2025-05-31T00:00:00+00:00'", "review_by: 2025-02-30",
     "[register-time] entries[10].review_by: review_by '2025-02-30' is not a real date: month "
     "2 has no day 30"),
    ("an unknown control", "controls:\n  - mguard-blocks-modbus\n  decision: patch",
     "controls:\n  - mguard-blocks-s7\n  decision: patch",
     "unknown control 'mguard-blocks-s7': "),
]


@pytest.mark.parametrize("old,new,fragment", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_register_is_one_located_line(tmp_path, capsys, monkeypatch, cycle_home, old,
                                            new, fragment):
    text = REGISTER.read_text()
    assert old in text, old
    path = tmp_path / "register.yml"
    path.write_text(text.replace(old, new, 1))
    code, out, err = run(capsys, monkeypatch, cycle_home,
                         *shipped_cycle("--register", str(path)))
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    file, row, col, rest = line.split(":", 3)
    assert (file, row.isdigit(), col.isdigit()) == (str(path), True, True), line
    assert fragment in rest, line


@pytest.mark.parametrize("args,fragment", [
    (("--register", "nope.yml"), "nope.yml:1:1: [yaml-unreadable] cannot read"),
    (("--sources", "nope.yml"), "nope.yml:1:1: [yaml-unreadable] cannot read"),
    (("--days", "0"), "otpatch: risk cycle --days 0: a cycle of at least one day"),
    (("--as-of", "2025-02-30"), "--as-of '2025-02-30' is not a real date"),
], ids=["missing register", "missing sources", "no days", "bad --as-of"])
def test_bad_arguments_are_one_line(capsys, monkeypatch, cycle_home, args, fragment):
    code, out, err = run(capsys, monkeypatch, cycle_home, *shipped_cycle(*args))
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert fragment in line, line


def test_missing_advisories_path(capsys, monkeypatch, cycle_home):
    code, _, err = run(capsys, monkeypatch, cycle_home, "risk", "cycle", "-i", INVENTORY,
                       "--advisories", "no-such-folder")
    assert code == 2 and "no-such-folder: no such file or folder" in err


@pytest.mark.parametrize("name,fragment", [
    ("lab-plc-1", "control mguard-blocks-modbus: enforced_by lab-plc-1: a m580, not an mGuard"),
    ("prod-mguard-9", "enforced_by prod-mguard-9: no such host in the inventory"),
])
def test_a_control_enforced_by_no_mguard_is_one_located_line(tmp_path, capsys, monkeypatch,
                                                             cycle_home, name, fragment):
    text = (ROOT / "inventory" / "lab-controls.yml").read_text()
    assert "enforced_by: [prod-mguard-1]" in text
    controls = tmp_path / "controls.yml"
    controls.write_text(text.replace("enforced_by: [prod-mguard-1]", f"enforced_by: [{name}]"))
    code, out, err = run(capsys, monkeypatch, cycle_home,
                         *shipped_cycle("--controls", str(controls), "--no-record"))
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith(f"{controls}:") and "[control-enforcer]" in line, line
    assert fragment in line, line
