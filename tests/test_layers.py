"""The layers, read from the source (ast): modules import the contract, never the engine;
the engine never names a concrete package; the import graph of otpatch has no cycle."""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGES = ("m580", "mguard", "cip", "syslog", "risk", "advisories", "ansible", "firmware",
            "core", "firewall")
ROOTS = {"otpatch.engine": ROOT / "engine", "otpatch.modules": ROOT / "modules"}


def module_name(path: Path) -> str:
    for prefix, folder in ROOTS.items():
        if folder in path.parents:
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            return ".".join([prefix, *parts])
    raise ValueError(path)


def sources() -> dict[str, Path]:
    return {module_name(p): p for folder in ROOTS.values() for p in sorted(folder.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """Every otpatch module `path` imports, at any depth of the file (function-level
    imports count too), resolved to the modules of `known`."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block)
                   for n in ast.walk(block)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:  # `if TYPE_CHECKING:` imports never run
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in known}
    return out


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def graph() -> dict[str, set[str]]:
    files = sources()
    known = set(files)
    return {name: imports(path, known) - {name} for name, path in files.items()}


def test_the_source_is_found():
    g = graph()
    assert "otpatch.engine.conductor" in g and "otpatch.modules.m580.driver" in g
    assert "otpatch.modules.contract.module" in g["otpatch.modules.core.set_fact"]


def test_no_module_imports_the_engine():
    offenders = {name: sorted(d for d in deps if d.startswith("otpatch.engine"))
                 for name, deps in graph().items() if name.startswith("otpatch.modules")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_engine_names_no_concrete_package():
    concrete = tuple(f"otpatch.modules.{p}" for p in PACKAGES)
    offenders = {name: sorted(d for d in deps if d.startswith(concrete))
                 for name, deps in graph().items() if name.startswith("otpatch.engine")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_import_graph_has_no_cycle():
    g = graph()
    state: dict[str, int] = {}  # 1 on the path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(g[node]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_a_cycle_would_be_found(tmp_path):
    """The check above can fail: two files that import each other are a cycle."""
    (tmp_path / "a.py").write_text("from otpatch.engine import b\n")
    (tmp_path / "b.py").write_text("import otpatch.engine.a\n")
    known = {"otpatch.engine.a", "otpatch.engine.b"}
    assert imports(tmp_path / "a.py", known) == {"otpatch.engine.b"}
    assert imports(tmp_path / "b.py", known) == {"otpatch.engine.a"}
    (tmp_path / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                   "    from otpatch.engine import a\n")
    assert imports(tmp_path / "c.py", known) == set()
