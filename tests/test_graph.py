"""`otpatch graph`: the declared machine as mermaid, dot and svg; rollback edges stand out."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from otpatch.engine.cli import main
from otpatch.modules.contract.errors import InputError
from otpatch.engine.graph import SVG_NEEDS_DOT, render
from otpatch.engine.machine import edges

from conftest import FIXTURES
from playbook_factory import playbook

GOLDEN = Path(__file__).resolve().parent / "golden"
CHANGE_YAML = FIXTURES / "engine" / "change-and-verify.yml"

SMALL_SPEC = {"name": "small", "version": "1.0.0", "states": {
    "prepare": {"stage": "lab", "checkpoint": "as_found", "do": ["core.set_fact"],
                "expect_duration": "1m", "next": "change"},
    "change": {"stage": "lab", "requires": [{"hash_verified": "firmware"}],
               "rollback": "restore", "do": [{"m580.firmware_transfer": {"target": "plc"}}],
               "expect_duration": "8m", "next": "approve"},
    "approve": {"stage": "production", "next": "completed", "on_failure": "restore",
                "requires": [{"signoff": {"roles": ["process_owner", "ot_security_officer"]}},
                             {"window": "production"}]},
    "restore": {"expect_duration": "6m", "next": "rolled_back"},
}}
SMALL = playbook(SMALL_SPEC)
CHAIN = playbook({"name": "chain", "states": {
    "a": {"next": "b", "rollback": "undo"}, "b": {"next": "c", "rollback": "none"},
    "c": {"next": "completed", "on_failure": "aborted"}, "undo": {"next": "rolled_back"},
}})
# rollback and on_failure to the same state: one arrow, drawn as the rollback it also is
SHARED = playbook({"name": "shared", "states": {
    "flash": {"next": "completed", "on_failure": "restore", "rollback": "restore"},
    "restore": {"next": "rolled_back"},
}})
PLAYBOOKS = {"small": SMALL, "chain": CHAIN, "shared": SHARED}


def reached_terminals(pb) -> set[str]:
    return {"completed", "rolled_back", "aborted"} & {e.dest for e in edges(pb, inherited=False)}


def dot_line(text: str, src: str, dst: str) -> str:
    (line,) = [ln for ln in text.splitlines() if ln.strip().startswith(f"{src} -> {dst} ")]
    return line


def dot_node(text: str, name: str) -> str:
    (line,) = [ln for ln in text.splitlines() if ln.strip().startswith(f"{name} [")]
    return line


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_mermaid_draws_every_state_and_reached_terminal(name):
    pb = PLAYBOOKS[name]
    text = render(pb, "mermaid")
    for state in [*pb.states, *reached_terminals(pb)]:
        assert re.search(rf"^  {state}\(", text, re.M), f"{state} not drawn"
    assert text.startswith(f'---\ntitle: "{pb.metadata.name} {pb.metadata.version}"\n')


@pytest.mark.parametrize("name,src,dst", [("small", "change", "restore"), ("chain", "a", "undo"),
                                          ("shared", "flash", "restore")], ids=str)
def test_mermaid_rollback_edge_is_dotted_and_red(name, src, dst):
    text = render(PLAYBOOKS[name], "mermaid")
    edges = [ln.strip() for ln in text.splitlines() if re.match(r"^  \S+ -\.?->", ln)]
    index = next(i for i, e in enumerate(edges) if e.startswith(f"{src} -.->"))
    assert edges[index].endswith(f"| {dst}") and "rollback" in edges[index]
    assert re.search(rf"^  linkStyle (\d+,)*{index}(,\d+)* stroke:red", text, re.M)
    assert all("rollback" in e for e in edges if "-.->" in e), "only rollback edges are dotted"


def test_mermaid_labels_edges_by_kind():
    text = render(SMALL, "mermaid")
    assert "  prepare --> change\n" in text  # next: plain
    assert '  prepare -->|"on failure"| aborted\n' in text
    # approve inherits change's rollback edge: its failure goes to restore, drawn as such
    assert '  approve -.->|"rollback, on failure"| restore\n' in text
    assert '  change -.->|"rollback"| restore\n' in text


def test_mermaid_terminals_are_double_circles_and_start_a_dot():
    text = render(SMALL, "mermaid")
    for terminal in ("completed", "rolled_back", "aborted"):
        assert f'  {terminal}((("{terminal}")))\n' in text
        assert f"  class {terminal} s_{terminal}\n" in text
    assert '  _start((" "))\n  class _start s_start\n' in text
    assert "  _start --> prepare\n" in text


@pytest.mark.parametrize("fmt,sep", [("mermaid", "<br/>"), ("dot", r"\l")], ids=["mermaid", "dot"])
def test_state_box_shows_stage_requirements_checkpoint_and_estimate(fmt, sep):
    text = render(SMALL, fmt)
    assert sep.join(["prepare", "stage: lab", "checkpoint: as_found", "expect: 1m"]) in text
    assert sep.join(["change", "stage: lab", "requires: hash_verified: firmware"]) in text
    assert sep.join(["requires: signoff: process_owner + ot_security_officer",
                     "requires: window: production"]) in text


@pytest.mark.parametrize("name,src,dst", [("small", "change", "restore"), ("chain", "a", "undo"),
                                          ("shared", "flash", "restore")], ids=str)
def test_dot_rollback_edge_is_dashed_and_red(name, src, dst):
    text = render(PLAYBOOKS[name], "dot")
    line = dot_line(text, src, dst)
    assert "style=dashed" in line and "color=red" in line and "rollback" in line
    assert all("rollback" in ln for ln in text.splitlines() if "style=dashed" in ln)


def test_dot_next_and_failure_edges_are_not_dashed():
    text = render(SMALL, "dot")
    assert "dashed" not in dot_line(text, "prepare", "change")
    failure = dot_line(text, "prepare", "aborted")
    assert 'label="on failure"' in failure and "dashed" not in failure


@pytest.mark.parametrize("terminal,fill", [("completed", "palegreen"), ("rolled_back", "khaki"),
                                           ("aborted", "lightcoral")])
def test_dot_terminals_are_double_circles_each_its_colour(terminal, fill):
    text = render(SMALL, "dot")
    node = dot_node(text, terminal)
    assert "shape=doublecircle" in node and f"fillcolor={fill}" in node
    assert "doublecircle" not in dot_node(text, "change")
    assert "shape=point" in dot_node(text, "_start")


def test_rollback_states_draw_no_failure_edge_because_the_run_halts():
    text = render(SMALL, "mermaid")
    assert not [ln for ln in text.splitlines() if ln.strip().startswith("restore -") and
                "rolled_back" not in ln]


@pytest.mark.parametrize("fmt,suffix", [("mermaid", "mmd"), ("dot", "dot")])
def test_golden(fmt, suffix):
    """Set OTPATCH_UPDATE_GOLDEN=1 to rewrite, then check the diff by eye before keeping it."""
    text = "\n".join(ln.rstrip() for ln in render(SMALL, fmt).splitlines()) + "\n"
    golden = GOLDEN / f"graph-small.{suffix}"
    if os.environ.get("OTPATCH_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_output_is_deterministic(fmt):
    assert render(SMALL, fmt) == render(playbook(SMALL_SPEC), fmt)


def test_unknown_format_names_the_formats():
    with pytest.raises(InputError, match="mermaid, dot, svg"):
        render(SMALL, "png")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed here; "
                    "test_svg_without_dot_says_how_to_get_it covers this machine")
def test_svg_with_dot_is_an_svg_document(tmp_path):
    out = tmp_path / "change.svg"
    assert main(["graph", str(CHANGE_YAML), "--format", "svg", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"<?xml")
    svg = render(SMALL, "svg")
    assert isinstance(svg, bytes)
    assert svg.lstrip().startswith((b"<?xml", b"<svg"))
    assert b"rolled_back" in svg and b'stroke="red" stroke-dasharray' in svg


@pytest.mark.skipif(shutil.which("dot") is not None, reason="Graphviz's dot is installed here; "
                    "test_svg_with_dot_is_an_svg_document covers this machine")
def test_svg_without_dot_says_how_to_get_it(capsys):
    with pytest.raises(InputError) as caught:
        render(SMALL, "svg")
    assert str(caught.value) == SVG_NEEDS_DOT
    assert main(["graph", str(CHANGE_YAML), "--format", "svg"]) == 2
    assert capsys.readouterr().err == f"otpatch: {SVG_NEEDS_DOT}\n"


def test_graph_of_a_yaml_playbook():
    from otpatch.engine.loader import load_playbook

    text = render(load_playbook(CHANGE_YAML), "mermaid")
    assert '  change -.->|"rollback"| restore\n' in text
    assert "  verify --> completed\n" in text
