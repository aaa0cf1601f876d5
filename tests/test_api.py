"""The run API alone (engine/api.py): no CLI, no child process, no environment. Dry runs
and a rollback on the stand-in device, a plan, and an execute run whose attestation is
answered, or not, by a scripted prompter; status agrees with what each run returned."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from otpatch.engine import api
from otpatch.engine import events as E
from otpatch.engine.journal import Journal
from otpatch.engine.record import RunStatus
from otpatch.modules.contract.errors import InputError

from conftest import FIXTURES

CHANGE = FIXTURES / "engine" / "change-and-verify.yml"
ATTEST = FIXTURES / "engine" / "attest.yml"
STATEMENT = "All PID loops are stable"


class ScriptedPrompter:
    """Answers from a script and keeps every question; EOFError when the script ends (the
    person left, or nobody was there)."""

    def __init__(self, answers: list[str]) -> None:
        self.answers, self.asked = list(answers), []

    def ask(self, question: str) -> str:
        self.asked.append(question)
        if not self.answers:
            raise EOFError("no more answers")
        return self.answers.pop(0)


@pytest.fixture(scope="module", autouse=True)
def registry():
    """The site's plugins, loaded once by the caller: here the stand-in device."""
    return api.load_registry(["tests.plugins.logdevice"])


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "otpatch-home"


def entries(home: Path, run_id: str | None = None) -> list:
    with Journal.open(home, read_only=True) as journal:
        return journal.entries(run_id)


def states(progress) -> list[str]:
    return [visit.state for visit in progress.path]


# -- dry runs ---------------------------------------------------------------------------------

def test_a_dry_run_completes_and_reports_the_journal_head(home, tmp_path, capsys):
    device = tmp_path / "plc.json"
    outcome = api.run(api.RunRequest(CHANGE, params={"device": str(device)}, home=home))
    assert (outcome.status, outcome.state, outcome.message) == (
        RunStatus.COMPLETED, "completed", "")
    assert states(outcome.progress) == ["prepare", "change", "verify", "completed"]
    assert json.loads(device.read_text()) == {"mode": "manual", "firmware": "v2"}
    last = entries(home)[-1]
    assert (outcome.head.seq, outcome.head.hash) == (last.seq, last.hash)
    assert last.run_id == outcome.run_id and last.event_type == "run_ended"
    assert capsys.readouterr().out == ""  # the default observer shows nothing

    viewed = api.status(home, outcome.run_id)
    assert (viewed.status, viewed.state, states(viewed)) == (
        outcome.status, outcome.state, states(outcome.progress))
    assert [p.run_id for p in api.status(home)] == [outcome.run_id]


def test_a_failed_verification_rolls_back(home, tmp_path):
    device = tmp_path / "plc.json"
    outcome = api.run(api.RunRequest(CHANGE, params={"device": str(device), "verify_ok": "no"},
                                     home=home))
    assert outcome.status is RunStatus.ROLLED_BACK and outcome.state == "rolled_back"
    assert states(outcome.progress) == ["prepare", "change", "verify", "restore",
                                        "rolled_back"]
    assert json.loads(device.read_text())["firmware"] == "v1"
    assert api.status(home, outcome.run_id).status is RunStatus.ROLLED_BACK


def test_an_observer_is_told_each_state_and_the_end(home, tmp_path):
    seen: list[str] = []

    class Watcher:
        def attach_clock(self, clock): seen.append("clock")
        def started(self, progress, playbook, resumed=False): seen.append("started")
        def state(self, state, progress): seen.append(state.name)
        def gate(self, dest, req, verdict): seen.append(f"gate {dest}")
        def step(self, state, index, step): pass
        def result(self, state, index, step, result, duration): pass
        def ended(self, progress): seen.append(f"ended {progress.status.value}")

    api.run(api.RunRequest(CHANGE, params={"device": str(tmp_path / "d.json")}, home=home),
            observer=Watcher())
    assert seen == ["clock", "started", "prepare", "change", "verify", "ended completed"]


def test_no_status_without_a_journal(home):
    assert api.status(home) == []


# -- plan -------------------------------------------------------------------------------------

def test_a_plan_through_the_api_touches_nothing(home, tmp_path):
    device = tmp_path / "plc.json"
    plan = api.plan(api.PlanRequest(CHANGE, params={"device": str(device)}))
    assert (plan.name, plan.version) == ("change-and-verify", "1.0.0")
    assert [s.name for s in plan.path] == ["prepare", "change", "verify"]
    assert [(r.state, r.rollback, r.walk.states, r.walk.end) for r in plan.rollbacks] == [
        ("change", "restore", ("restore",), "rolled_back")]
    assert plan.walk.expected == 8 * 60  # the change's expect_duration
    assert not device.exists() and not home.exists()


def test_a_plan_refuses_an_undeclared_param():
    with pytest.raises(InputError, match="-e colour: the playbook declares no such param"):
        api.plan(api.PlanRequest(CHANGE, params={"device": "d", "colour": "red"}))


# -- execute: a person attests ----------------------------------------------------------------

def test_an_attestation_answered_by_the_prompter_completes_the_run(home, signed_lab,
                                                                   site_register):
    prompter = ScriptedPrompter(["Mickey Mouse", "2", "yes"])
    outcome = api.run(api.RunRequest(ATTEST, signed_lab, mode="execute", operator="Chen Wei",
                                     home=home, register_keys=site_register.pinned),
                      prompter=prompter)
    assert outcome.status is RunStatus.COMPLETED, outcome.message
    record = outcome.progress.facts["attestation"]
    assert (record["person"], record["role"], record["confirmed"], record["refused"]) == (
        "Dana Okafor", "operator", True, ["Mickey Mouse"])
    assert record["terminal"] is None and not record["simulated"]  # no terminal: a script
    assert f"attestation (operator): {STATEMENT}" in prompter.asked[0]
    assert prompter.asked[1].startswith("  refused: Mickey Mouse is not an approver")
    started = entries(home, outcome.run_id)[0]
    assert started.event_type == "run_started" and started.payload["operator"] == "Chen Wei"


def test_nobody_to_answer_pauses_then_resume_with_an_answer_completes(home, signed_lab,
                                                                     site_register):
    pinned = site_register.pinned  # the API reads no environment: the keys are named
    request = api.RunRequest(ATTEST, signed_lab, mode="execute", home=home,
                             register_keys=pinned)
    paused = api.run(request, prompter=ScriptedPrompter([]))
    needs = f"needs a person at a terminal: operator: {STATEMENT}"
    assert (paused.status, paused.state, paused.message) == (
        RunStatus.AWAITING, "confirm", needs)
    assert api.status(home, paused.run_id).status is RunStatus.AWAITING
    assert "operator" not in entries(home, paused.run_id)[0].payload  # none given

    # default prompter: nobody to ask
    again = api.resume(api.ResumeRequest(paused.run_id, home, register_keys=pinned))
    assert again.status is RunStatus.AWAITING and again.head.seq > paused.head.seq

    done = api.resume(api.ResumeRequest(paused.run_id, home, operator="Bernd Maier",
                                        register_keys=pinned),
                      prompter=ScriptedPrompter(["1", "yes"]))
    assert done.status is RunStatus.COMPLETED and done.run_id == paused.run_id
    assert states(done.progress) == ["prepare", "confirm", "after", "completed"]
    assert done.progress.facts["attestation"]["person"] == "Chen Wei"
    resumed = [e.payload for e in entries(home, paused.run_id) if e.event_type == "run_resumed"]
    assert [p.get("operator") for p in resumed] == [None, "Bernd Maier"]
    assert api.status(home, paused.run_id).status is RunStatus.COMPLETED
    with pytest.raises(InputError, match="already ended"):
        api.resume(api.ResumeRequest(paused.run_id, home))


# -- requests and the operator field ----------------------------------------------------------

@pytest.mark.parametrize("make,message", [
    (lambda h: api.RunRequest(CHANGE, mode="live", home=h), "mode 'live': expected one of"),
    (lambda h: api.RunRequest(CHANGE, params={"device": 3}, home=h), "names and values are text"),
    (lambda h: api.RunRequest(CHANGE, operator=" ", home=h), "a person's name, or None"),
    (lambda h: api.ResumeRequest("r-1", h, operator=""), "a person's name, or None"),
    (lambda h: api.resume(api.ResumeRequest("r-1", h)), "bad run id"),
], ids=["unknown mode", "a param that is not text", "blank operator",
        "empty operator on resume", "malformed run id"])
def test_bad_requests_are_refused_before_anything_runs(home, make, message):
    with pytest.raises(InputError, match=message):
        make(home)
    assert not home.exists()


def test_requests_are_frozen_and_keep_their_own_params(home):
    given = {"device": "d"}
    request = api.RunRequest(CHANGE, params=given, home=str(home))
    given["device"] = "changed"
    assert request.params == {"device": "d"} and request.home == home
    with pytest.raises(AttributeError):
        request.mode = "execute"
    with pytest.raises(TypeError):
        request.params["device"] = "x"


@pytest.mark.parametrize("payload,operator", [
    ({"elapsed": 0.0, "from_status": "awaiting", "pid": 7}, None),  # written before operators
    ({"elapsed": 0.0, "from_status": "awaiting", "pid": 7, "v": 1}, None),
    ({"elapsed": 0.0, "from_status": "awaiting", "pid": 7, "v": 1, "operator": "Chen Wei"},
     "Chen Wei"),
], ids=["unversioned, no operator", "version 1, no operator", "with an operator"])
def test_run_resumed_entries_decode_with_and_without_an_operator(payload, operator):
    event = E.decode("run_resumed", "run", payload)
    assert event.operator == operator
    assert ("operator" in event.payload()) is (operator is not None)
