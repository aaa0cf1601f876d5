"""Draw a playbook's state machine as mermaid, Graphviz dot or svg, with transitions' diagrams."""
from __future__ import annotations

import json
import re
from typing import Any

from otpatch.modules.contract.errors import InputError
from otpatch.engine.machine import edges
from otpatch.engine.model import TERMINALS, Playbook, State
from otpatch.modules.contract.durations import format_duration
from otpatch.engine.record import START

FORMATS = ("mermaid", "dot", "svg")
SVG_NEEDS_DOT = ("svg needs Graphviz's dot program (apt-get install graphviz); "
                 "use --format dot or mermaid")

_KIND_LABEL = {"next": "", "on_failure": "on failure", "rollback": "rollback"}
_KIND_RANK = {"next": 0, "on_failure": 1, "rollback": 2}  # the style of a shared edge
_NODE_STYLES = {
    "start": {"shape": "point", "fillcolor": "black"},
    "completed": {"shape": "doublecircle", "peripheries": "2", "fillcolor": "palegreen"},
    "rolled_back": {"shape": "doublecircle", "peripheries": "2", "fillcolor": "khaki"},
    "aborted": {"shape": "doublecircle", "peripheries": "2", "fillcolor": "lightcoral"},
}
_EDGE_STYLES = {
    "on_failure": {"color": "gray40", "fontcolor": "gray40"},
    "rollback": {"color": "red", "fontcolor": "red", "style": "dashed"},
}


def render(playbook: Playbook, fmt: str) -> str | bytes:
    """The playbook's declared machine in `fmt`: mermaid or dot text, or svg bytes.

    svg needs Graphviz's `dot` program; without it this raises InputError saying so."""
    if fmt not in FORMATS:
        raise InputError(f"unknown graph format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "mermaid":
        return _flowchart(_diagram(playbook, "mermaid").source, playbook)
    diagram = _diagram(playbook, "graphviz")
    if fmt == "dot":
        return diagram.source
    return _svg(diagram)


def diagram_edges(playbook: Playbook) -> list[tuple[str, str, tuple[str, ...]]]:
    """(source, dest, kinds) per drawn arrow: declared edges sharing both ends are merged."""
    merged: dict[tuple[str, str], list[str]] = {}
    for edge in edges(playbook, inherited=False):
        kinds = merged.setdefault((edge.source, edge.dest), [])
        if edge.kind not in kinds:
            kinds.append(edge.kind)
    return [(src, dst, tuple(kinds)) for (src, dst), kinds in merged.items()]


def state_label(state: State, sep: str) -> str:
    """A state's box: its name, stage, requirements, checkpoint and expected duration."""
    lines = [state.name]
    if state.stage:
        lines.append(f"stage: {state.stage.value}")
    lines += [f"requires: {req.describe()}" for req in state.requires]
    if state.checkpoint:
        lines.append(f"checkpoint: {state.checkpoint}")
    if state.expect_duration is not None:
        lines.append(f"expect: {format_duration(state.expect_duration)}")
    return sep.join(lines)


def _diagram(playbook: Playbook, engine: str) -> Any:
    """A transitions diagram of the declared edge table (engine: mermaid | graphviz)."""
    from transitions.extensions.diagrams import GraphMachine

    arrows = diagram_edges(playbook)
    title = f"{playbook.metadata.name} {playbook.metadata.version}"
    machine = GraphMachine(model=None, states=_states(playbook, arrows, engine),
                           transitions=[_transition(*arrow) for arrow in arrows],
                           initial=START, auto_transitions=False, graph_engine=engine,
                           title=title)
    machine.style_attributes = _styles(machine.style_attributes)  # this machine only
    graph = machine.graph_cls(machine)
    for name in (START, *TERMINALS):
        graph.set_node_style(name, "start" if name == START else name)
    # transitions styles a single edge only through its per-graph edge style table (the one
    # it fills to highlight the previous transition); dot honours it, mermaid ignores it
    # and is post-processed in _flowchart.
    for src, dst, kinds in arrows:
        graph.custom_styles["edge"][src][dst] = _strongest(kinds)
    return graph.get_graph(title=title)


def _states(playbook: Playbook, arrows, engine: str) -> list[Any]:
    from transitions import State as DiagramState

    sep = "<br/>" if engine == "mermaid" else r"\l"
    labels = {START: "start"}
    labels.update({name: state_label(s, sep) for name, s in playbook.states.items()})
    reached = {dst for _, dst, _ in arrows}
    labels.update({t: t for t in sorted(TERMINALS) if t in reached})
    out = []
    for name, label in labels.items():
        node = DiagramState(name, final=name in TERMINALS)
        node.label = label  # transitions' markup draws a state's `label` attribute
        out.append(node)
    return out


def _transition(src: str, dst: str, kinds: tuple[str, ...]) -> dict[str, str]:
    label = ", ".join(_KIND_LABEL[k] for k in kinds if _KIND_LABEL[k])
    # A blank label keeps next edges plain: transitions would print the trigger instead.
    return {"trigger": kinds[0], "source": src, "dest": dst, "label": label or " "}


def _strongest(kinds: tuple[str, ...]) -> str:
    kind = max(kinds, key=_KIND_RANK.__getitem__)
    return "" if kind == "next" else kind


def _styles(base: dict) -> dict:
    """Only the default styles plus ours; the library's run-time highlights are unused."""
    node = {"default": dict(base["node"]["default"])}
    node.update({k: {**node["default"], **v} for k, v in _NODE_STYLES.items()})
    edge = {"default": dict(base["edge"]["default"]), **_EDGE_STYLES}
    return {"node": node, "edge": edge, "graph": {"default": dict(base["graph"]["default"])}}


def _svg(diagram: Any) -> bytes:
    import graphviz

    try:
        return diagram.draw(None, format="svg", prog="dot")
    except graphviz.ExecutableNotFound:
        raise InputError(SVG_NEEDS_DOT) from None


# transitions' mermaid engine writes a stateDiagram-v2, which has no dotted or coloured
# transitions (mermaid rejects `-.->` there), so its output is rewritten line by line into
# a flowchart, where rollback edges can be dotted and red.
_STATE_LINE = re.compile(r'^state "(.*)" as (\S+)$')
_CLASS_LINE = re.compile(r"^Class (\S+) (\S+)$")
_EDGE_LINE = re.compile(r"^(\S+) --> (\S+):(.*)$")


def _flowchart(source: str, playbook: Playbook) -> str:
    """Rewrite transitions' mermaid stateDiagram-v2 into a flowchart with styled edges."""
    rollback = {(s, d) for s, d, kinds in diagram_edges(playbook)
                if _strongest(kinds) == "rollback"}
    lines = source.splitlines()
    title = lines[1].strip() if lines[:1] == ["---"] else ""
    out, edge_count, dotted = [], 0, []
    for raw in lines[3:] if title else lines:
        line = raw.strip()
        if m := _EDGE_LINE.match(line):
            src, dst, label = m.group(1), m.group(2), m.group(3).strip()
            if (src, dst) in rollback:
                dotted.append(str(edge_count))  # flowchart links are numbered in order
            out.append("  " + _flow_edge(src, dst, label, (src, dst) in rollback))
            edge_count += 1
        elif (line := _flow_line(line)) is not None:
            out.append(line if not line or line.startswith("flowchart") else "  " + line)
    if dotted:
        out.append(f"  linkStyle {','.join(dotted)} stroke:red,color:red")
    head = ["---", f"title: {json.dumps(title)}", "---"] if title else []
    return "\n".join(head + out) + "\n"


def _flow_line(line: str) -> str | None:
    """One non-edge stateDiagram line as a flowchart line; None drops it."""
    if line == "stateDiagram-v2":
        return "flowchart LR"
    if not line or line.startswith("classDef "):
        return line
    if line.startswith("direction ") or line.startswith("[*] -->"):
        return None  # the direction is in the header; the start is drawn as a node
    if m := _STATE_LINE.match(line):
        return _flow_node(m.group(2), m.group(1))
    if m := _CLASS_LINE.match(line):
        return f"class {m.group(1)} {m.group(2)}"
    raise RuntimeError(f"unexpected line in transitions' mermaid output: {line!r}")


def _flow_node(name: str, label: str) -> str:
    if name == START:
        return f'{name}((" "))'
    text = label.replace('"', "#quot;")
    if name in TERMINALS:
        return f'{name}((("{text}")))'
    return f'{name}("{text}")'


def _flow_edge(src: str, dst: str, label: str, dotted: bool) -> str:
    arrow = "-.->" if dotted else "-->"
    text = f'|"{label}"|' if label else ""
    return f"{src} {arrow}{text} {dst}"
