"""Loading and validating playbooks: every broken fixture names its rule and its line."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from otpatch.engine import lint
from otpatch.modules.contract import yamlsrc
from otpatch.modules.contract.errors import PlaybookError
from otpatch.engine.loader import check_playbook, load_playbook, rules
from otpatch.engine.model import FirmwareImage, Stage
from otpatch.modules.contract.yamlsrc import MAX_BYTES, display_path, parse_yaml
from otpatch.modules import registry
from otpatch.modules.contract.module import Module, Result
from otpatch.modules.schema_defs import TARGET
from playbook_factory import chain_playbook

FIXTURES = Path(__file__).parent / "fixtures" / "playbooks"
VALID = sorted(p.name for p in (FIXTURES / "valid").glob("*.yml"))

INVALID = [
    # (fixture, the rule it breaks, the line the problem is reported on)
    ("unknown-state.yml", "unknown-state", 10),
    ("unknown-state-over.yml", "unknown-state", 9),
    ("terminal-redefined.yml", "terminal-redefined", 9),
    ("unknown-target.yml", "unknown-target", 13),
    ("unknown-param.yml", "unknown-param", 11),
    ("unknown-param-hash.yml", "unknown-param", 9),
    ("requirement-param.yml", "requirement-param", 11),
    ("unreachable-state.yml", "unreachable-state", 9),
    ("no-terminal-path.yml", "no-terminal-path", 7),
    ("rollback-uncovered.yml", "rollback-uncovered", 7),
    ("rollback-uncovered-path.yml", "rollback-uncovered", 17),
    ("checkpoint-missing.yml", "checkpoint-missing", 7),
    ("production-without-signoff.yml", "production-without-signoff", 10),
    ("firmware-unpinned.yml", "firmware-unpinned", 6),
    ("firmware-bad-hash.yml", "firmware-unpinned", 6),
    ("firmware-qualification.yml", "firmware-qualification", 12),
    ("unknown-module.yml", "unknown-module", 9),
    ("module-args.yml", "module-args", 9),
    ("template-syntax.yml", "template-syntax", 11),
    ("template-syntax-assert.yml", "template-syntax", 10),
    ("template-sandbox.yml", "template-syntax", 9),
    ("template-too-large.yml", "template-syntax", 9),
    ("duration-bound.yml", "duration-bound", 9),
    ("schema-duration-over.yml", "schema", 8),
    ("duplicate-name-step.yml", "duplicate-name", 11),
    ("duplicate-name-register.yml", "duplicate-name", 14),
    ("duplicate-name-reserved.yml", "duplicate-name", 9),
    ("budget-over.yml", "budget-over", 6),
    ("schema-unknown-key.yml", "schema", 10),
    ("schema-bad-stage.yml", "schema", 8),
    ("schema-bad-semver.yml", "schema", 6),
    ("schema-bad-duration.yml", "schema", 8),
    ("schema-requirement-keys.yml", "schema", 9),
    ("step-shape.yml", "step-shape", 9),
    ("step-shape-none.yml", "step-shape", 9),
    ("yaml-syntax.yml", "yaml-syntax", 5),
    ("yaml-not-mapping.yml", "yaml-not-mapping", 2),
    ("yaml-empty.yml", "yaml-empty", 1),
    ("yaml-multi-document.yml", "yaml-multi-document", 4),
    ("duplicate-key.yml", "duplicate-key", 9),
]
# rules that come along with the one a fixture is about: an unbounded cycle has no terminal
ALSO = {"no-terminal-path.yml": {"cycle-unbounded"}}


class Flash(Module):
    """A device-changing module with a target argument (none is registered yet)."""

    name = "test.flash"
    doc = "test double: flashes a target"
    args_schema = {"type": "object", "properties": {"target": TARGET},
                   "required": ["target"], "additionalProperties": False}
    changes_device = True
    verifies = {"device": ()}  # the double stands for a module that reads its change back

    def run(self, args, ctx) -> Result:
        return Result(changed=True)


@pytest.fixture(autouse=True)
def flash_module(monkeypatch):
    monkeypatch.setitem(registry.modules(), Flash.name, Flash)


def write(tmp_path: Path, data: bytes | str, name: str = "playbook.yml") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def refusal(path: Path) -> tuple[str, int]:
    """The one (rule, line) a refused file gets."""
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    [problem] = caught.value.problems
    return problem.rule, problem.line


@pytest.mark.parametrize("name", VALID)
def test_valid_playbook_loads_with_no_problem(name):
    playbook, problems = check_playbook(FIXTURES / "valid" / name)
    assert problems == []
    assert playbook is not None and playbook.content_hash.startswith("sha256:")


@pytest.mark.parametrize("name, rule, line", INVALID, ids=[row[0] for row in INVALID])
def test_invalid_playbook_names_its_rule_and_line(name, rule, line):
    path = FIXTURES / "invalid" / name
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    problems = [p for p in caught.value.problems if p.rule not in ALSO.get(name, ())]
    assert {p.rule for p in problems} == {rule}, [str(p) for p in problems]
    assert line in [p.line for p in problems]
    assert all(str(p).startswith(f"{path}:{p.line}:{p.col}: [{rule}] ") for p in problems)


def test_every_rule_has_a_broken_fixture():
    from test_inventory import INVALID as INVENTORY_INVALID
    from test_safety_lint import UNSAFE

    covered = {rule for _, rule, _ in INVALID} | {rule for _, rule, _, _ in UNSAFE}
    covered |= {rule for _, rule, _ in INVENTORY_INVALID}
    generated = {"yaml-binary", "yaml-alias-bomb", "yaml-too-large", "yaml-too-deep",
                 "yaml-unreadable", "target-unresolved"}
    assert set(rules()) - covered - generated == set()


def test_rules_are_listed_with_a_description():
    assert all(description and "\n" not in description
               for description in rules().values())
    assert list(lint.RULES)[:2] == ["unknown-state", "terminal-redefined"]


def test_several_problems_are_reported_at_once_sorted_by_line(tmp_path):
    path = write(tmp_path, """\
apiVersion: otpatch/v1
kind: Playbook
metadata: {name: many-problems, version: 1.0.0}
params:
  firmware: {type: firmware, path: fw.bin}
initial: first
states:
  first:
    do:
      - core.sleep: {duration: 1s}
    next: second
  second:
    do:
      - core.wait: {duration: "{{ params.nope }}"}
    next: thrid
  lonely:
    next: completed
""")
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    found = [(p.line, p.rule) for p in caught.value.problems]
    assert found == [(5, "firmware-unpinned"), (10, "unknown-module"),
                     (14, "unknown-param"), (15, "unknown-state"),
                     (16, "unreachable-state")]
    assert len(caught.value.lines()) == 5


def test_several_schema_errors_are_reported_at_once(tmp_path):
    path = write(tmp_path, """\
apiVersion: otpatch/v2
kind: Playbook
metadata: {name: Bad_Name, version: "1.0"}
initial: first
states:
  first:
    stage: testing
    next: completed
    colour: blue
""")
    _, problems = check_playbook(path)
    assert [(p.line, p.rule) for p in problems] == [(1, "schema"), (3, "schema"),
                                                    (3, "schema"), (7, "schema"),
                                                    (9, "schema")]
    assert "states.first.colour: unknown key 'colour'" in problems[-1].message


def test_binary_bytes_are_refused(tmp_path):
    noise = bytes(range(256)) * 4 + b"\x00\x00\x00"
    assert refusal(write(tmp_path, noise)) == ("yaml-binary", 1)


def test_nul_in_otherwise_text_is_refused_naming_its_line(tmp_path):
    with pytest.raises(PlaybookError) as caught:
        load_playbook(write(tmp_path, "a: 1\nb: \x00\n"))
    assert caught.value.problems[0].rule == "yaml-binary"
    assert "NUL character on line 2" in caught.value.problems[0].message


def billion_laughs(levels: int = 9) -> str:
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_before_it_expands(tmp_path):
    """Refused by counting aliases, not by expanding 9^10 nodes (which would take minutes
    and gigabytes): the bound is far above a loaded 2-core CI machine's worst, and far
    below any expansion, so it tells the two apart without timing speed."""
    path = write(tmp_path, billion_laughs())
    started = time.perf_counter()
    rule, _ = refusal(path)
    assert rule == "yaml-alias-bomb"
    assert time.perf_counter() - started < 10.0


def test_a_recursive_alias_is_refused(tmp_path):
    assert refusal(write(tmp_path, "a: &a [1, *a]\n")) == ("yaml-alias-bomb", 1)


def test_a_file_over_one_mebibyte_is_refused_unread(tmp_path):
    path = write(tmp_path, "# padding\n" * (MAX_BYTES // 10 + 1))
    assert os.path.getsize(path) > MAX_BYTES
    assert refusal(path) == ("yaml-too-large", 1)


def test_nesting_past_the_bound_is_refused(tmp_path):
    deep = "a: " + "[" * 150 + "]" * 150 + "\n"
    assert refusal(write(tmp_path, deep))[0] == "yaml-too-deep"


def test_a_missing_file_is_one_clear_problem(tmp_path):
    assert refusal(tmp_path / "nope.yml") == ("yaml-unreadable", 1)


@pytest.mark.parametrize("text, value", [
    ("v: yes", "yes"), ("v: on", "on"), ("v: 0o17", 15), ("v: 010", 10),
    ("v: 2026-12-01", "2026-12-01"), ("v: 1.5", 1.5), ("v: ~", None), ("v: True", True),
    ("v: !!str 12", "12"), ("v: 0x1F", 31),
], ids=lambda v: str(v))
def test_scalars_resolve_by_yaml_1_2(text, value):
    assert parse_yaml(text.encode(), "f.yml").data == {"v": value}


@pytest.mark.parametrize("name, rule, line", [
    ("duplicate-key.yml", "duplicate-key", 9), ("yaml-syntax.yml", "yaml-syntax", 5),
    ("yaml-multi-document.yml", "yaml-multi-document", 4),
    ("yaml-not-mapping.yml", "yaml-not-mapping", 2), ("yaml-empty.yml", "yaml-empty", 1),
])
def test_the_pure_python_parser_refuses_the_same_way(monkeypatch, name, rule, line):
    monkeypatch.setattr(yamlsrc, "_PURE", True)
    assert refusal(FIXTURES / "invalid" / name) == (rule, line)
    assert load_playbook(FIXTURES / "valid" / "full.yml").states["lab_transfer"].do


@pytest.mark.parametrize("text", ["v: .inf", "v: !!bool yes", "v: !custom x"])
def test_values_json_cannot_hold_or_unknown_tags_are_syntax_errors(text):
    with pytest.raises(PlaybookError) as caught:
        parse_yaml(text.encode(), "f.yml")
    assert caught.value.problems[0].rule == "yaml-syntax"


def test_locate_points_at_keys_values_items_and_the_nearest_ancestor():
    source = parse_yaml(b"states:\n  x:\n    do:\n      - name: a\n        core.wait: {}\n"
                        b"    next: y\n", "f.yml")
    assert source.locate(("states", "x")) == (2, 3)
    assert source.locate(("states", "x", "next"), value=True) == (6, 11)
    assert source.locate(("states", "x", "do", 0)) == (4, 9)
    assert source.locate(("states", "x", "do", 0, "core.wait", "missing")) == (5, 9)
    assert source.locate(("nowhere", 3)) == (1, 1)


def test_display_path_reads_like_the_yaml():
    assert display_path(("states", "lab_transfer", "do", 0, "args")) == \
        "states.lab_transfer.do[0].args"
    assert display_path(()) == ""


def test_content_hash_ignores_comments_and_layout_but_not_content(tmp_path):
    plain = (FIXTURES / "valid" / "minimal.yml").read_text()
    reformatted = "# a different comment\n" + plain.replace(
        "      - core.wait: {duration: 1s}", "      -   core.wait:\n            duration: 1s")
    changed = plain.replace("1s", "2s")
    hashes = [load_playbook(write(tmp_path, text, f"{i}.yml")).content_hash
              for i, text in enumerate((plain, reformatted, changed))]
    assert hashes[0] == hashes[1] != hashes[2]


def test_full_playbook_model_is_typed_and_frozen():
    pb = load_playbook(FIXTURES / "valid" / "full.yml")
    assert pb.metadata.applies_to[0].part_numbers == ("BMEP581020", "BMEP582040")
    assert pb.params["soak"].default == 4 * 3600.0
    assert pb.params["retries"].default == 3
    assert pb.params["operator"].required and pb.params["operator"].default is None
    assert pb.params["firmware"].default == FirmwareImage(
        "firmware/m580.bin", "sha256",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    transfer = pb.states["lab_transfer"]
    assert (transfer.stage, transfer.expect_duration, transfer.timeout) == (Stage.LAB, 480, 600)
    assert transfer.do[1].register == "soak_result"
    text = (FIXTURES / "valid" / "full.yml").read_text().splitlines()
    rollback = transfer.edge_where["rollback"]
    assert text[rollback.line - 1][rollback.col - 1:] == "lab_restore"
    assert text[transfer.where.line - 1] == "  lab_transfer:"
    assert pb.budgets["patch_window"].limit == 900
    assert pb.states["production_gate"].requires[0].roles == ("process_owner",
                                                              "ot_security_officer")
    with pytest.raises(TypeError):
        transfer.do[1].args["duration"] = "1s"


def test_a_generated_500_state_chain_validates_cleanly(tmp_path):
    path = write(tmp_path, chain_playbook(500))
    playbook = load_playbook(path)
    assert len(playbook.states) == 501
    assert playbook.states["s499"].next == "completed"
