"""otpatch runs on Windows too: no POSIX-only call outside modules/contract/platform.py
(read from the source with ast), and its RunLock held and freed across real processes."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from otpatch.modules.contract.platform import RunLock, lock_held
from otpatch.modules.contract.errors import InputError

PLATFORM_MODULE = "modules/contract/platform.py"
POSIX_MODULES = frozenset({"fcntl", "termios", "pwd", "grp", "msvcrt", "resource"})
POSIX_NAMES = {
    "os": frozenset({"fork", "setsid", "getuid", "geteuid", "killpg"}),
    # signals Windows' signal module does not define: reading one raises AttributeError there
    "signal": frozenset({"SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM",
                         "SIGCHLD", "SIGSTOP", "SIGCONT", "SIGPIPE", "alarm", "setitimer"}),
}

# What stays outside modules/contract/platform.py, and why it may: (file, what) -> reason.
ALLOWED = {
    ("engine/journal.py", "signal.SIGKILL"):
        "a test fault hook: SIGKILLs itself only when a test sets OTPATCH_FAULT_KILL",
    ("modules/polling.py", "signal.SIGKILL"):
        "a test fault hook: SIGKILLs itself only when a test sets its FAULT_KILL_POLL_ENV",
}


def posix_only_uses(path: Path) -> list[tuple[int, str]]:
    """(line, what) for each POSIX-only import or os/signal name in the file at `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    aliases = {"os": "os", "signal": "signal"}  # local name -> module, for `import os as o`
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in POSIX_MODULES:
                    found.append((node.lineno, top))
                if top in POSIX_NAMES and alias.asname:
                    aliases[alias.asname] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in POSIX_MODULES:
                found.append((node.lineno, top))
            found += [(node.lineno, f"{top}.{a.name}") for a in node.names
                      if a.name in POSIX_NAMES.get(node.module, ())]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.attr in POSIX_NAMES.get(aliases.get(node.value.id, ""), ())):
            found.append((node.lineno, f"{aliases[node.value.id]}.{node.attr}"))
    return sorted(found)


def product_uses() -> list[tuple[str, int, str]]:
    """(file, line, what) over every product module but modules/contract/platform.py."""
    files = sorted(p for folder in ("engine", "modules") for p in (ROOT / folder).rglob("*.py"))
    return [(rel, line, what) for p in files
            if (rel := p.relative_to(ROOT).as_posix()) != PLATFORM_MODULE
            for line, what in posix_only_uses(p)]


def test_no_posix_only_call_outside_the_platform_module():
    offenders = [f"{rel}:{line}: {what}" for rel, line, what in product_uses()
                 if (rel, what) not in ALLOWED]
    assert offenders == [], "POSIX-only, outside modules/contract/platform.py: " + "; ".join(offenders)


def test_every_allowed_use_still_exists():
    present = {(rel, what) for rel, _, what in product_uses()}
    assert sorted(set(ALLOWED) - present) == []


CHECKER_CASES = [
    ("import fcntl\n", [(1, "fcntl")]),
    ("import os\nif True:\n    import termios as t\n", [(3, "termios")]),
    ("from pwd import getpwnam\n", [(1, "pwd")]),
    ("from os import fork, getcwd\n", [(1, "os.fork")]),
    ("import os\nos.killpg(1, 9)\n", [(2, "os.killpg")]),
    ("import os as o\no.geteuid()\n", [(2, "os.geteuid")]),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", [(2, "signal.SIGKILL")]),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n", []),
    ("import os\nos.getcwd()\nfrom otpatch.modules.contract.platform import RunLock\n", []),
]


@pytest.mark.parametrize("source, expected", CHECKER_CASES,
                         ids=[c[0].splitlines()[-1] for c in CHECKER_CASES])
def test_the_checker_finds_posix_only_uses(tmp_path, source, expected):
    path = tmp_path / "product.py"
    path.write_text(source, encoding="utf-8")
    assert posix_only_uses(path) == expected


HOLDER = """
import sys, time
from pathlib import Path
from otpatch.modules.contract.platform import RunLock
with RunLock(sys.argv[1], "busy"):
    Path(sys.argv[2]).write_text("held")
    time.sleep(60)
"""


def start_holder(lock: Path, ready: Path) -> subprocess.Popen:
    """A real child process that holds a RunLock on `lock` once `ready` exists."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock), str(ready)],
                             env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not ready.exists():
        if child.poll() is not None or time.monotonic() > deadline:
            child.kill()
            _, err = child.communicate(timeout=10)
            pytest.fail(f"the holder did not take the lock: {err.decode(errors='replace')}")
        time.sleep(0.02)
    return child


@pytest.mark.slow
def test_a_lock_held_by_another_process_refuses_and_is_freed_when_it_is_killed(tmp_path):
    lock = tmp_path / "runs" / "r-1" / "lock"
    child = start_holder(lock, tmp_path / "ready")
    try:
        assert lock_held(lock)
        with pytest.raises(InputError, match="^run r-1 is running in another process$"):
            with RunLock(lock, "run r-1 is running in another process"):
                pass
        child.kill()  # SIGKILL on POSIX: no handler, no cleanup of its own
        child.wait(timeout=10)
        assert not lock_held(lock)
        with RunLock(lock, "busy"):
            assert lock_held(lock)
        assert not lock_held(lock)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


def test_two_run_locks_in_one_process_exclude_each_other(tmp_path):
    lock = tmp_path / "runs" / "r-2" / "lock"
    first = RunLock(lock, "busy")
    with first:
        with pytest.raises(InputError, match="^busy, second$"):
            with RunLock(lock, "busy, second"):
                pass
        with pytest.raises(InputError, match="^busy$"):
            with first:  # filelock would re-enter; a run lock does not
                pass
        assert lock_held(lock)
    assert not lock_held(lock)
    with RunLock(lock, "busy"):  # free again after the first is left
        assert lock.exists()


def test_no_lock_file_is_not_held_and_is_not_created(tmp_path):
    lock = tmp_path / "runs" / "r-3" / "lock"
    assert not lock_held(lock)
    assert not lock.exists() and not lock.parent.exists()
