"""`otpatch plan`: happy path and times, inherited rollback, budgets, gates, loops; no devices."""
from __future__ import annotations

import json
from collections import namedtuple

import pytest

from otpatch.engine.plan import make_plan
from otpatch.engine.plantext import format_plan, plan_to_json

from conftest import FIXTURES
from playbook_factory import playbook

Host = namedtuple("Host", "name simulator", defaults=(True,))  # lab hosts: simulators
FIRMWARE_HASH = "3b1f" * 16
TRANSFER = {"m580.firmware_transfer": {"target": "plc", "port": "usb"}}  # changes a device

# The seed's procedure, cut down: lab transfer and production transfer, each with a restore.
M580 = {
    "name": "m580-firmware-update", "version": "1.3.0", "standard": "IEC 62443-2-3",
    "params": {"firmware": {"type": "firmware", "hash": FIRMWARE_HASH},
               "soak": {"type": "duration", "default": 14400.0}},
    "targets": {"plc": "m580_cpus", "adapters": {"group": "x80_adapters", "many": True}},
    "states": {
        "verify_package": {"stage": "lab", "do": ["core.assert"], "expect_duration": "1m",
                           "next": "lab_transfer"},
        "lab_transfer": {"stage": "lab", "requires": [{"hash_verified": "firmware"}],
                         "checkpoint": "as_found", "do": [TRANSFER], "expect_duration": "8m",
                         "rollback": "lab_restore", "next": "lab_verify"},
        "lab_verify": {"stage": "lab", "do": ["core.assert"], "next": "production_gate"},
        "production_gate": {
            "stage": "production", "rollback": "none", "next": "production_transfer",
            "requires": [{"signoff": {"roles": ["process_owner", "ot_security_officer"],
                                      "over": "lab_verify"}}, {"window": "production"}]},
        "production_transfer": {"stage": "production", "do": [TRANSFER],
                                "expect_duration": "6m", "rollback": "production_restore",
                                "next": "production_verify"},
        "production_verify": {"stage": "production", "do": ["core.assert"],
                              "expect_duration": "3m", "next": "completed"},
        "lab_restore": {"stage": "lab", "expect_duration": "6m", "next": "rolled_back"},
        "production_restore": {"stage": "production", "expect_duration": "6m",
                               "next": "rolled_back"},
    },
    "budgets": {"patch_window": {"limit": "15m",
                                 "states": ["production_transfer", "production_verify"]}},
}
M580_TARGETS = {"plc": (Host("lab-plc-1"),), "adapters": (Host("x80-1"), Host("x80-2"))}
M580_PARAMS = {"firmware": {"path": "fw/m580.bin", "algorithm": "sha256",
                            "hash": FIRMWARE_HASH}, "soak": 14400.0}


def plan_of(spec, targets=None, params=None):
    return make_plan(playbook(spec), targets, params or {})


def states(**bodies):
    return {"states": bodies}


PATHS = [
    # id, playbook, [(state, expected start h:mm:ss)], end, expected total
    ("one state", states(a={"expect_duration": "90s", "next": "completed"}),
     [("a", "0:00:00")], "completed", 90),
    ("three states add up", states(a={"expect_duration": "1m", "next": "b"},
                                   b={"expect_duration": "4h", "next": "c"},
                                   c={"expect_duration": "23m", "next": "completed"}),
     [("a", "0:00:00"), ("b", "0:01:00"), ("c", "4:01:00")], "completed", 4 * 3600 + 24 * 60),
    ("no estimate counts 0", states(a={"next": "b"}, b={"expect_duration": "2m",
                                                        "next": "completed"}),
     [("a", "0:00:00"), ("b", "0:00:00")], "completed", 120),
    ("initial is not first", {"initial": "b", **states(a={"next": "completed"},
                                                       b={"expect_duration": "5m", "next": "a"})},
     [("b", "0:00:00"), ("a", "0:05:00")], "completed", 300),
    ("failure edges are not the path", states(
        a={"expect_duration": "1m", "next": "completed", "on_failure": "b", "rollback": "b"},
        b={"expect_duration": "9m", "next": "rolled_back"}),
     [("a", "0:00:00")], "completed", 60),
]


@pytest.mark.parametrize("spec,path,end,total", [p[1:] for p in PATHS],
                         ids=[p[0] for p in PATHS])
def test_happy_path_order_and_cumulative_times(spec, path, end, total):
    plan = plan_of(spec)
    assert [p.name for p in plan.path] == [name for name, _ in path]
    assert plan.walk.end == end and plan.walk.expected == total
    text = format_plan(plan)
    for name, start in path:
        assert f"  {start}  {name} " in text
    assert f"=> {end}" in text


def test_states_without_estimate_are_marked():
    text = format_plan(plan_of(states(a={"next": "b"}, b={"expect_duration": "2m",
                                                          "next": "completed"})))
    assert "  0:00:00  a         -      no estimate\n" in text
    assert "expected total: 2m (no estimate: a)" in text


def test_seed_procedure_reads_like_the_article():
    text = format_plan(make_plan(playbook(M580), M580_TARGETS, M580_PARAMS))
    assert text.startswith("plan: m580-firmware-update 1.3.0 (sha256:")
    assert "…)   [IEC 62443-2-3]\n" in text
    assert "targets: plc -> lab-plc-1; adapters -> x80-1, x80-2\n" in text
    assert f"params: firmware = fw/m580.bin (sha256:{FIRMWARE_HASH[:12]}…); soak = 4h\n" in text
    assert ("  0:01:00  lab_transfer         lab         est 8m\n"
            "             requires hash_verified: firmware\n"
            "             checkpoint as_found\n"
            "             do m580.firmware_transfer (target=plc)\n"
            "             rollback -> lab_restore\n") in text
    assert "  0:18:00  => completed\n" in text
    assert ("budgets:\n  patch_window 15m: expected 9m (within); worst case with rollback "
            "15m (within): production_verify fails, then rollback -> production_restore\n"
            ) in text
    assert "  lab_transfer -> lab_restore -> rolled_back: est 6m\n" in text
    assert text.endswith("expected total: 18m (no estimate: lab_verify, production_gate)")


def test_inherited_rollback_is_shown_until_a_state_says_none():
    plan = make_plan(playbook(M580), None, {})
    active = {p.name: (p.rollback, p.rollback_inherited) for p in plan.path}
    assert active["lab_transfer"] == ("lab_restore", False)
    assert active["lab_verify"] == ("lab_restore", True)
    assert active["production_gate"] == (None, False)  # rollback: none ends it
    assert active["production_verify"] == ("production_restore", True)
    assert "rollback -> lab_restore (inherited)" in format_plan(plan)


def test_rollback_paths_for_each_device_changing_state():
    plan = make_plan(playbook(M580), None, {})
    paths = {r.state: (r.rollback, r.walk.states, r.walk.end, r.walk.expected)
             for r in plan.rollbacks}
    assert paths == {
        "lab_transfer": ("lab_restore", ("lab_restore",), "rolled_back", 360),
        "production_transfer": ("production_restore", ("production_restore",),
                                "rolled_back", 360)}


@pytest.mark.parametrize("module,changes", [("core.wait", False), ("ansible.playbook", True),
                                            ("m580.not_registered_yet", True)])
def test_device_changing_modules_come_from_the_registry(module, changes):
    """A module the registry does not know is taken to change a device."""
    plan = plan_of(states(a={"do": [module], "rollback": "undo", "next": "completed"},
                          undo={"expect_duration": "6m", "next": "rolled_back"}))
    assert [r.state for r in plan.rollbacks] == (["a"] if changes else [])
    assert ("  a -> undo -> rolled_back: est 6m" in format_plan(plan)) is changes


def test_a_device_change_without_rollback_is_called_out():
    text = format_plan(plan_of(states(flash={"do": [TRANSFER], "next": "completed"})))
    assert "             changes a device with NO rollback edge\n" in text
    assert "rollback paths (from each state that changes a device):\n  flash: NO rollback edge" \
        in text


BUDGETS = [
    # id, limit, what the plan says of the expected time, and of the worst case
    ("both within", "20m", "expected 9m (within)", "rollback 15m (within)"),
    ("worst case over", "10m", "expected 9m (within)", "rollback 15m (OVER)"),
    ("expected over", "8m", "expected 9m (OVER)", "rollback 15m (OVER)"),
]


@pytest.mark.parametrize("limit,expected,worst", [b[1:] for b in BUDGETS],
                         ids=[b[0] for b in BUDGETS])
def test_budget_within_or_over(limit, expected, worst):
    spec = {**M580, "budgets": {"patch_window": {
        "limit": limit, "states": ["production_transfer", "production_verify"]}}}
    plan = make_plan(playbook(spec), None, {})
    (check,) = plan.budgets
    assert (check.expected, check.worst_case) == (540, 900)
    assert f"patch_window {limit}: {expected}; worst case with {worst}" in format_plan(plan)


def test_budget_worst_case_is_the_worst_failure_point():
    """A long restore after an early state outweighs failing in the last state."""
    spec = states(a={"expect_duration": "2m", "rollback": "slow_undo", "do": [TRANSFER],
                     "next": "b"},
                  b={"expect_duration": "1m", "rollback": "none", "next": "completed"},
                  slow_undo={"expect_duration": "30m", "next": "rolled_back"})
    spec["budgets"] = {"window": {"limit": "1h", "states": ["a", "b"]}}
    (check,) = plan_of(spec).budgets
    assert (check.worst_case, check.worst_fails_in, check.worst_rollback) == (
        32 * 60, "a", "slow_undo")


# A rollback whose restore may be refused: restore -> downgrade -> spare, as the M580's
# (Schneider FAQ000272937). Each failing state follows its on_failure edge.
CHAIN = states(
    transfer={"expect_duration": "8m", "rollback": "restore", "do": [TRANSFER],
              "next": "completed"},
    restore={"expect_duration": "7m", "on_failure": "downgrade", "next": "rolled_back"},
    downgrade={"expect_duration": "13m", "on_failure": "spare", "next": "rolled_back"},
    spare={"expect_duration": "20m", "next": "rolled_back"})


def test_a_failing_rollback_follows_its_on_failure_chain():
    spec = {**CHAIN, "budgets": {"downtime": {"limit": "30m", "states": ["transfer"]}}}
    plan = plan_of(spec)
    (check,) = plan.budgets
    assert (check.worst_case, check.contingency_case) == (15 * 60, 48 * 60)
    assert check.contingency.failing == ("restore", "downgrade")
    assert check.worst_within and not check.contingency_within
    text = format_plan(plan)
    assert ("  transfer -> restore -> rolled_back: est 7m; if it fails: restore fails -> "
            "downgrade fails -> spare, 40m\n") in text
    assert ("findings for the approvers (the worst case when a rollback fails too):\n"
            "  downtime (30m) is overrun: 48m when transfer fails, then restore fails -> "
            "downgrade fails -> spare\n") in text
    assert plan_to_json(plan)["findings"] == [
        "downtime (30m) is overrun: 48m when transfer fails, then restore fails -> "
        "downgrade fails -> spare"]


def test_a_rollback_chain_that_fits_is_no_finding():
    spec = {**CHAIN, "budgets": {"downtime": {"limit": "1h", "states": ["transfer"]}}}
    text = format_plan(plan_of(spec))
    assert "if the rollback fails too" in text
    assert "findings for the approvers (the worst case when a rollback fails too): none" in text


def test_a_looping_on_failure_chain_ends():
    spec = states(transfer={"expect_duration": "1m", "rollback": "a", "do": [TRANSFER],
                            "next": "completed"},
                  a={"expect_duration": "2m", "on_failure": "b", "next": "rolled_back"},
                  b={"expect_duration": "3m", "on_failure": "a", "next": "rolled_back"})
    (rollback,) = plan_of(spec).rollbacks
    assert (rollback.contingency.failing, rollback.contingency.seconds) == (("a",), 5 * 60)


def test_gates_in_path_order_with_roles():
    plan = make_plan(playbook(M580), None, {})
    assert [(g.state, g.roles) for g in plan.gates] == [
        ("lab_transfer", ()),
        ("production_gate", ("process_owner", "ot_security_officer"))]
    assert ("gates, in order (listed, not evaluated):\n"
            "  1. lab_transfer: hash_verified: firmware\n"
            "  2. production_gate: signoff: process_owner + ot_security_officer over "
            "lab_verify; window: production; must sign: process_owner, ot_security_officer\n"
            ) in format_plan(plan)


LOOPS = [
    # id, playbook, path walked, why it stopped
    ("back to the start", states(a={"next": "b"}, b={"next": "a"}),
     ["a", "b"], "loop: b leads back to a"),
    ("onto itself", states(a={"next": "a"}), ["a"], "loop: a leads back to a"),
    ("dead end", states(a={"next": "b"}, b={}), ["a", "b"], "dead end: b has no next edge"),
]


@pytest.mark.parametrize("spec,path,stopped", [c[1:] for c in LOOPS], ids=[c[0] for c in LOOPS])
def test_path_that_never_ends_is_reported_not_hung(spec, path, stopped):
    plan = plan_of(spec)
    assert [p.name for p in plan.path] == path
    assert plan.walk.end is None and plan.walk.stopped == stopped
    assert f"stops: {stopped}" in format_plan(plan)
    assert "(up to where the path stops)" in format_plan(plan)


def test_a_looping_rollback_path_is_reported():
    spec = states(a={"do": [TRANSFER], "rollback": "undo", "next": "completed"},
                  undo={"next": "again"}, again={"next": "undo"})
    (rollback,) = plan_of(spec).rollbacks
    assert rollback.walk.stopped == "loop: again leads back to undo"
    assert "a -> undo -> again (stops: loop: again leads back to undo)" in format_plan(
        plan_of(spec))


def test_targets_without_inventory_name_their_group():
    text = format_plan(make_plan(playbook(M580), None, {}))
    assert ("targets: plc -> group m580_cpus (no inventory given); "
            "adapters -> group x80_adapters (no inventory given)\n") in text
    assert "params: firmware = (not set); soak = (not set)\n" in text


def test_plan_to_json_round_trips():
    doc = plan_to_json(make_plan(playbook(M580), M580_TARGETS, M580_PARAMS))
    assert json.loads(json.dumps(doc)) == doc
    assert [s["name"] for s in doc["path"]][:2] == ["verify_package", "lab_transfer"]
    assert doc["walk"]["end"] == "completed" and doc["walk"]["expected"] == 18 * 60
    assert doc["budgets"][0]["within"] is True and doc["budgets"][0]["worst_case"] == 900
    assert {t["name"]: t["hosts"] for t in doc["targets"]} == {
        "plc": ["lab-plc-1"], "adapters": ["x80-1", "x80-2"]}


def test_plan_of_a_yaml_playbook():
    from otpatch.engine.loader import load_playbook

    pb = load_playbook(FIXTURES / "engine" / "change-and-verify.yml")
    text = format_plan(make_plan(pb, None, {"device": "plc.json"}))
    assert ("  0:00:00  change    lab    est 8m\n"
            "             do set mode: logdevice.set_value\n") in text
    assert "  change -> restore -> rolled_back: est 6m\n" in text
    assert "rollback -> restore (inherited)" in text


def test_plan_command_prints_text_or_json(capsys):
    from otpatch.engine.cli import main

    change = str(FIXTURES / "engine" / "change-and-verify.yml")
    assert main(["plan", change, "-e", "device=plc.json"]) == 0
    assert "expected total: 8m (no estimate: prepare, verify)\n" in capsys.readouterr().out
    assert main(["plan", change, "-e", "device=plc.json", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["state"] for r in doc["rollbacks"]] == ["change"]
    assert {p["name"]: p["value"] for p in doc["params"]}["device"] == "plc.json"


def test_the_shipped_m580_plan_shows_schneiders_way_back_as_a_finding(capsys):
    """Restore refused across 4.20, the special downgrade (13 min), then the spare CPU
    (20 min): the worst case the approvers must weigh, against the patch window and the
    downtime budget (FAQ000272937)."""
    from otpatch.engine.cli import main
    from conftest import ROOT

    assert main(["plan", str(ROOT / "playbooks" / "m580-firmware-update.yml"),
                 "-i", str(ROOT / "inventory" / "lab.yml"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    chain = "production_restore fails -> production_downgrade fails -> production_spare"
    assert doc["findings"] == [
        f"patch_window (15m) is overrun: 53m when production_verify fails, then {chain}",
        f"downtime (10m) is overrun: 43m when production_verify fails, then {chain}"]
    (production,) = [r for r in doc["rollbacks"] if r["state"] == "production_transfer"]
    assert production["contingency"]["seconds"] == 40 * 60
