"""A resume that finds the device still mid-action: it waits within the module's own bound,
passing the simulator's time in a dry run, and reads again; it records what it saw and how
long it waited; a device still moving when the bound runs out fails the step (its rollback
edge), and only one that settles answering neither halts for a human, saying what it saw.
A scripted device module stands in for the device; the engine is the product's own."""
from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from otpatch.engine import runner, runs
from otpatch.engine.display import PlainDisplay
from otpatch.engine.journal import Journal
from otpatch.modules import registry
from otpatch.modules.contract.module import Module, ReadBack, Result

PLAYBOOK = """\
apiVersion: otpatch/v1
kind: Playbook
metadata: {name: moving-device, version: 1.0.0}
initial: change
states:
  change:
    stage: lab
    checkpoint: as_found
    rollback: restore
    do:
      - name: change it
        scripted.change: {}
    next: completed
  restore:
    do:
      - name: change it back
        logdevice.set_value: {device: "DEVICE", key: value, value: before}
    next: rolled_back
"""


class Crash(BaseException):
    """The process dies in the middle of the action (nothing catches it)."""


def moving(msg: str, timeout: float = 600, interval: float = 30) -> ReadBack:
    return ReadBack.still_moving(Result(msg=msg, facts={"seen": msg}), timeout, interval)


class Scripted(Module):
    """Dies in its first run; its read-backs answer from `script` in turn (the last one
    again once the script is spent)."""

    name = "scripted.change"
    doc = "a scripted device change"
    args_schema = {"type": "object", "properties": {}, "additionalProperties": False}
    changes_device = True
    changes = ("value",)
    verifies = {"value": ()}
    read_back_doc = "answers from its script"
    script: list[ReadBack] = []
    asked: list[float] = []  # the run clock at each read-back
    advanced: list[float] = []

    def run(self, args, ctx) -> Result:
        raise Crash()

    def read_back(self, args, ctx) -> ReadBack:
        Scripted.asked.append(ctx.clock.elapsed())
        return Scripted.script[min(len(Scripted.asked), len(Scripted.script)) - 1]

    def advance_sim_clock(self, args, ctx, seconds: float) -> None:
        Scripted.advanced.append(seconds)


@pytest.fixture
def crashed(tmp_path, monkeypatch):
    """A dry run killed inside `scripted.change`; gives resume(script) -> (progress, journal
    entries of the run)."""
    monkeypatch.setitem(registry.modules(), Scripted.name, Scripted)
    monkeypatch.setattr(Scripted, "asked", [])
    monkeypatch.setattr(Scripted, "advanced", [])
    device = tmp_path / "plc.json"
    playbook = tmp_path / "moving.yml"
    playbook.write_text(PLAYBOOK.replace("DEVICE", str(device)))
    home = tmp_path / "home"
    with pytest.raises(Crash):
        runs.start(str(playbook), None, "dry_run", {}, home, PlainDisplay(io.StringIO()))
    with Journal.open(home, create=False) as journal:
        (run,) = journal.runs()

    def resume(script: list[ReadBack]):
        monkeypatch.setattr(Scripted, "script", script)
        progress = runs.resume(run.run_id, home, PlainDisplay(io.StringIO()))
        with Journal.open(home, create=False) as journal:
            entries = [e for e in journal.entries(run.run_id)]
        return progress, entries
    return resume


def payloads(entries, kind: str) -> list[dict]:
    return [e.payload for e in entries if e.event_type == kind]


def test_a_moving_device_is_waited_for_then_its_answer_stands(crashed):
    progress, entries = crashed([moving("copying 10 %"), moving("copying 60 %"),
                                 ReadBack(True, Result(changed=True, msg="in effect"))])
    assert progress.status.value == "completed", progress.message
    assert Scripted.asked == [0, 30, 60] and Scripted.advanced == [30, 30]
    (back,) = payloads(entries, "read_back")
    assert (back["applied"], back["moving"], back["waited"]) == (True, "copying 10 %", 60)
    (result,) = [r for r in payloads(entries, "step_result") if r["state"] == "change"]
    assert result["reverified"] and result["duration"] == 60
    assert result["result"]["msg"] == "in effect"


def test_a_device_still_moving_when_the_bound_runs_out_fails_its_step(crashed):
    progress, entries = crashed([moving("copying 10 %", timeout=90)])
    assert progress.status.value == "rolled_back", progress.message
    assert [v.state for v in progress.path] == ["change", "restore", "rolled_back"]
    assert Scripted.asked == [0, 30, 60, 90]  # asked again at the bound, then no more
    (result,) = [r for r in payloads(entries, "step_result") if r["state"] == "change"]
    assert result["failure"] == "change it: still under way after 1m30s: copying 10 %"
    assert result["result"]["facts"] == {"seen": "copying 10 %"}


def test_a_device_that_settles_answering_neither_halts_saying_what_it_saw(crashed):
    progress, entries = crashed([moving("copying 10 %"),
                                 ReadBack(None, Result(msg="shows a state nobody knows"))])
    assert progress.status.value == "halted"
    assert progress.message == ("cannot tell whether 'change it' took effect after waiting "
                                "30s (shows a state nobody knows); a human must check the "
                                "device")
    (back,) = payloads(entries, "read_back")
    assert back["applied"] is None and back["moving"] == "copying 10 %"


def test_a_settled_answer_is_not_waited_on(crashed):
    with pytest.raises(Crash):  # it did not happen: the step runs again (and dies again)
        crashed([ReadBack(False, Result(msg="not applied"))])
    assert Scripted.asked == [0] and Scripted.advanced == []


def test_on_a_wall_clock_the_wait_sleeps_and_never_advances_a_simulator(monkeypatch):
    monkeypatch.setitem(registry.modules(), Scripted.name, Scripted)
    monkeypatch.setattr(Scripted, "script", [moving("a", interval=5),
                                             ReadBack(True, Result(msg="done"))])
    monkeypatch.setattr(Scripted, "asked", [])
    monkeypatch.setattr(Scripted, "advanced", [])
    slept: list[float] = []
    clock = SimpleNamespace(simulated=False, sleep=slept.append, elapsed=lambda: sum(slept))
    answer = runner.read_back(Scripted.name, {}, SimpleNamespace(clock=clock))
    assert answer.check.applied is True and (answer.waited, answer.moving) == (5, "a")
    assert slept == [5] and Scripted.advanced == []


@pytest.mark.parametrize("applied,timeout,interval", [(True, 60, 5), (None, 0, 5),
                                                      (None, 60, 0)])
def test_a_moving_answer_is_applied_none_with_a_bound(applied, timeout, interval):
    with pytest.raises(ValueError, match="still moving"):
        ReadBack(applied, Result(), moving=True, timeout=timeout, interval=interval)
