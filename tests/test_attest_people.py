"""People who attest: the inventory's approvers holding the role, chosen at the terminal;
the record names person, role, host and terminal; with no terminal the run pauses (exit 3)
and resume asks again. Real child processes, a real pseudo-terminal (pexpect)."""
from __future__ import annotations

import json
import shlex
import socket
import sys

import pexpect
import pytest

from otpatch.modules.contract.errors import PersonNeeded
from otpatch.engine.inventory import load_inventory
from otpatch.engine.people import Dialogue

from conftest import FIXTURES, ROOT, child_env, otpatch_child, run_json

ATTEST = str(FIXTURES / "engine" / "attest.yml")
LAB = str(ROOT / "inventory" / "lab.yml")
STATEMENT = "All PID loops are stable"
WHO = "your number or your name: "
CONFIRM = r"do you confirm it\? "

DIALOGUES = [  # id, role, what the person types, who attests, confirmed, refused names
    ("picks a number", "operator", ["2", "yes"], "Dana Okafor", True, ()),
    ("types the name", "operator", ["Chen Wei", "y"], "Chen Wei", True, ()),
    ("name in other case and spacing", "operator", ["  chen   WEI ", "yes"], "Chen Wei", True,
     ()),
    ("a name nobody has, then a number", "operator", ["Mickey Mouse", "1", "yes"], "Chen Wei",
     True, ("Mickey Mouse",)),
    ("holder of another role, then says no", "operator", ["Bernd Maier", "2", "no"],
     "Dana Okafor", False, ("Bernd Maier",)),
    ("number off the list, empty line, then a name", "process_owner",
     ["3", "", "Alice Chen", "yes"], "Alice Chen", True, ("3",)),
    ("neither yes nor no is asked again", "ot_security_officer", ["1", "maybe", "no"],
     "Bernd Maier", False, ()),
]


def scripted(answers: list[str], shown: list[str]):
    """An `ask` that answers from a script and keeps what the person was shown; EOFError
    when the script ends (the person left, or there is no terminal)."""
    script = iter(answers)

    def ask(question: str) -> str:
        shown.append(question)
        try:
            return next(script)
        except StopIteration:
            raise EOFError("no more answers") from None
    return ask


@pytest.fixture(scope="module")
def approvers():
    return load_inventory(LAB).approvers


@pytest.mark.parametrize("role,answers,person,confirmed,refused",
                         [d[1:] for d in DIALOGUES], ids=[d[0] for d in DIALOGUES])
def test_dialogue_takes_only_a_listed_holder_of_the_role(approvers, role, answers, person,
                                                         confirmed, refused):
    shown: list[str] = []
    answer = Dialogue(scripted(answers, shown), role, STATEMENT, approvers, LAB).run()
    assert (answer.person, answer.confirmed, answer.refused) == (person, confirmed, refused)
    holders = [a.name for a in approvers if role in a.roles]
    listed = "".join(f"    {n}. {name}\n" for n, name in enumerate(holders, 1))
    assert f"attestation ({role}): {STATEMENT}\n" in shown[0] and listed in shown[0]
    for name, question in zip(refused, shown[1:]):
        assert question.startswith(f"  refused: {name}")


def test_a_holder_of_another_role_is_told_which_role_they_hold(approvers):
    shown: list[str] = []
    Dialogue(scripted(["Bernd Maier", "1", "yes"], shown), "operator", STATEMENT, approvers,
             LAB).run()
    assert "refused: Bernd Maier holds ot_security_officer, not operator: pick 1-2" in shown[1]


@pytest.mark.parametrize("answers,expected", [
    ([], f"needs a person at a terminal: operator: {STATEMENT}"),
    (["1"], f"needs a person at a terminal: operator: {STATEMENT}"),  # Ctrl-D at yes/no
    (["Mickey Mouse", "Bernd Maier", "9"],
     f"needs a person at a terminal: operator: {STATEMENT} (refused 'Mickey Mouse', "
     "'Bernd Maier', '9': not approvers holding operator)"),
], ids=["no terminal", "the person leaves before yes or no", "three names nobody listed"])
def test_no_one_to_answer_is_a_pause_not_a_failure(approvers, answers, expected):
    with pytest.raises(PersonNeeded) as raised:
        Dialogue(scripted(answers, []), "operator", STATEMENT, approvers, LAB).run()
    assert str(raised.value) == expected


# -- real runs --------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def lab_signed(signed_lab, monkeypatch):
    """Execute runs need the site register signed (engine/siteregister.py): LAB is a copy
    of inventory/lab.yml whose register the lab signers signed, their keys pinned."""
    monkeypatch.setattr(sys.modules[__name__], "LAB", str(signed_lab))


def spawn(home, *args: str) -> pexpect.spawn:
    return pexpect.spawn(sys.executable, ["-m", "otpatch.engine.cli", *args], cwd=str(ROOT),
                         env=child_env(home), encoding="utf-8", timeout=30,
                         dimensions=(40, 200))


def finished(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def run_doc(home, run_id: str) -> dict:
    return run_json(otpatch_child(home, "status", run_id, "--json"))


def journal_verifies(home) -> bool:
    done = otpatch_child(home, "journal", "verify")
    return done.returncode == 0 and "hash chain intact" in done.stdout


def last_run_id(home) -> str:
    return run_json(otpatch_child(home, "status", "--json"))["runs"][-1]["run_id"]


@pytest.mark.slow
def test_execute_records_the_listed_person_role_host_and_terminal(home):
    child = spawn(home, "run", ATTEST, "-i", LAB, "--execute")
    child.expect(r"who holds operator in .*lab\.yml:\r\n    1\. Chen Wei\r\n    2\. Dana Okafor")
    child.expect(WHO)
    child.sendline("Mickey Mouse")
    child.expect("refused: Mickey Mouse is not an approver holding operator: pick 1-2")
    child.expect(WHO)
    child.sendline("2")
    child.expect(r"Dana Okafor \(operator\): " + CONFIRM)
    child.sendline("yes")
    child.expect(f"confirmed by Dana Okafor \\(operator\\): {STATEMENT}")
    assert finished(child) == 0
    doc = run_doc(home, last_run_id(home))
    assert doc["status"] == "completed" and doc["facts"]["after"] is True
    record = doc["facts"]["attestation"]
    assert {k: record[k] for k in ("person", "role", "host", "statement", "confirmed",
                                   "simulated", "refused")} == {
        "person": "Dana Okafor", "role": "operator", "host": socket.gethostname(),
        "statement": STATEMENT, "confirmed": True, "simulated": False,
        "refused": ["Mickey Mouse"]}
    assert record["terminal"].startswith("/dev/") and record["at"]
    assert journal_verifies(home)


@pytest.mark.slow
def test_a_no_from_a_listed_person_fails_the_step_and_names_them(home):
    child = spawn(home, "run", ATTEST, "-i", LAB, "--execute", "-e", "role=process_owner")
    child.expect(WHO)
    child.sendline("Alice Chen")
    child.expect(CONFIRM)
    child.sendline("no")
    child.expect(f"FAILED: Alice Chen \\(process_owner\\) answered no: {STATEMENT}")
    assert finished(child) == 1
    doc = run_doc(home, last_run_id(home))
    assert doc["status"] == "aborted" and "after" not in doc["facts"]
    record = doc["facts"]["attestation"]
    assert (record["person"], record["role"], record["confirmed"]) == (
        "Alice Chen", "process_owner", False)


@pytest.mark.slow
def test_three_names_nobody_listed_pause_the_run_for_the_right_person(home):
    child = spawn(home, "run", ATTEST, "-i", LAB, "--execute")
    for name in ("Mickey Mouse", "Bernd Maier", "Shift Supervisor"):
        child.expect(WHO)
        child.sendline(name)
    child.expect("awaiting in state confirm: needs a person at a terminal: operator")
    assert finished(child) == 3
    doc = run_doc(home, last_run_id(home))
    assert doc["status"] == "awaiting" and "attestation" not in doc["facts"]
    assert ("refused 'Mickey Mouse', 'Bernd Maier', 'Shift Supervisor': not approvers holding "
            "operator" in doc["message"])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["--execute", "--dry-run"])
def test_a_role_nobody_holds_fails_the_step_and_says_who_holds_what(home, mode):
    done = otpatch_child(home, "run", ATTEST, "-i", LAB, mode, "-e", "role=shift_supervisor")
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("FAILED: no one in " in done.stdout
            and "holds role shift_supervisor, so no one can attest as shift_supervisor "
                "(Alice Chen: process_owner; Bernd Maier: ot_security_officer; Chen Wei: "
                "operator; Dana Okafor: process_owner, operator)" in done.stdout), done.stdout


@pytest.mark.slow
def test_no_terminal_pauses_awaiting_then_resume_at_a_terminal_asks_and_goes_on(home):
    done = otpatch_child(home, "run", ATTEST, "-i", LAB, "--execute", "--json")
    assert done.returncode == 3, done.stderr
    doc = run_json(done)
    needs = f"needs a person at a terminal: operator: {STATEMENT}"
    assert (doc["status"], doc["state"], doc["message"]) == ("awaiting", "confirm", needs)
    status = otpatch_child(home, "status", doc["run_id"])
    assert status.stdout.startswith(f"run {doc['run_id']}: awaiting: {needs}")
    assert journal_verifies(home)

    again = otpatch_child(home, "resume", doc["run_id"])  # still no terminal: still awaiting
    assert again.returncode == 3 and needs in again.stdout

    child = spawn(home, "resume", doc["run_id"])
    child.expect(f"attestation \\(operator\\): {STATEMENT}")
    child.expect(WHO)
    child.sendline("1")
    child.expect(CONFIRM)
    child.sendline("yes")
    assert finished(child) == 0
    after = run_doc(home, doc["run_id"])
    assert after["status"] == "completed"
    assert [v["state"] for v in after["path"]] == ["prepare", "confirm", "after", "completed"]
    assert after["facts"]["attestation"]["person"] == "Chen Wei"
    assert journal_verifies(home)


@pytest.mark.slow
def test_json_at_a_terminal_asks_on_stderr_and_keeps_stdout_one_document(home, tmp_path):
    out = tmp_path / "run.json"
    command = shlex.join([sys.executable, "-m", "otpatch.engine.cli", "run", ATTEST, "-i", LAB,
                          "--execute", "--json"]) + f" > {shlex.quote(str(out))}"
    child = pexpect.spawn("/bin/sh", ["-c", command], cwd=str(ROOT), env=child_env(home),
                          encoding="utf-8", timeout=30)
    child.expect(WHO)
    child.sendline("Chen Wei")
    child.expect(CONFIRM)
    child.sendline("yes")
    assert finished(child) == 0
    doc = json.loads(out.read_text())
    assert doc["status"] == "completed"
    assert doc["facts"]["attestation"]["person"] == "Chen Wei"


@pytest.mark.slow
def test_dry_run_records_the_role_and_the_simulation(home):
    doc = run_json(otpatch_child(home, "run", ATTEST, "-i", LAB, "--dry-run", "--json"))
    assert doc["status"] == "completed"
    record = doc["facts"]["attestation"]
    assert {k: record[k] for k in ("person", "role", "confirmed", "simulated")} == {
        "person": "simulation", "role": "operator", "confirmed": True, "simulated": True}
