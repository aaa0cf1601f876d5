"""Bad files, paths, plugins and arguments (issue 9): one clear line, exit 2, no traceback,
no hang (every child has a timeout), nothing half-written."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES, ROOT, child_env, otpatch_child

READINESS = str(ROOT / "playbooks" / "patch-readiness.yml")
CHANGE = str(FIXTURES / "engine" / "change-and-verify.yml")
FLASH = str(FIXTURES / "engine" / "verified-flash.yml")
VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
QUICK = 20  # seconds: a hang fails the test


def otpatch_raw(home: Path, *args: str | bytes, plugins: str = "tests.plugins.logdevice",
                pythonpath: str = str(ROOT), **extra: str) -> subprocess.CompletedProcess:
    """Like conftest's otpatch_child, with byte arguments and a chosen plugin spec."""
    env = child_env(home, **extra)
    env.update(OTPATCH_MODULE_PLUGINS=plugins, PYTHONPATH=pythonpath)
    return subprocess.run([sys.executable, "-m", "otpatch.engine.cli", *args], cwd=ROOT,
                          env=env, capture_output=True, timeout=QUICK,
                          stdin=subprocess.DEVNULL)


def one_clean_line(done, code: int = 2) -> str:
    """The stderr of a refused command: exactly one line, no traceback, the exit code."""
    err = done.stderr.decode() if isinstance(done.stderr, bytes) else done.stderr
    out = done.stdout.decode() if isinstance(done.stdout, bytes) else done.stdout
    assert "Traceback" not in err + out, err
    assert done.returncode == code, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- plugins ------------------------------------------------------------------------------

@pytest.mark.parametrize("spec,named", [
    ("../x", "'../x'"), ("no_such_plugin_module", "'no_such_plugin_module'"),
    ("broken_plugin", "'broken_plugin'"),
], ids=["relative name", "missing module", "plugin raises at import"])
def test_unimportable_plugin_is_an_input_error_naming_variable_and_module(
        home, tmp_path, spec, named):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('site plugin is broken')\n")
    done = otpatch_raw(home, "validate", READINESS, plugins=spec,
                       pythonpath=f"{ROOT}{os.pathsep}{tmp_path}")
    line = one_clean_line(done)
    assert line.startswith("otpatch: OTPATCH_MODULE_PLUGINS: cannot import module " + named)


def test_the_test_plugin_still_loads(home, tmp_path):
    done = otpatch_child(home, "run", CHANGE, "--dry-run", "-e", f"device={tmp_path / 'd'}",
                         timeout=60)
    assert done.returncode == 0, done.stderr


# -- inputs: only regular files, never blocking -------------------------------------------

def special(tmp_path: Path, kind: str) -> str:
    if kind == "fifo":
        os.mkfifo(tmp_path / "fifo")
        return str(tmp_path / "fifo")
    return {"device": "/dev/zero", "directory": str(tmp_path)}[kind]


KINDS = [("fifo", "a FIFO"), ("device", "a character device"), ("directory", "a directory")]


@pytest.mark.parametrize("kind,words", KINDS, ids=[k for k, _ in KINDS])
@pytest.mark.parametrize("role", ["playbook", "inventory", "controls"])
def test_special_file_input_refused_without_blocking(home, tmp_path, role, kind, words):
    path = special(tmp_path, kind)
    args = {"playbook": ["validate", path], "inventory": ["validate", "-i", path],
            "controls": ["risk", "score", VECTOR, "--controls", path]}[role]
    line = one_clean_line(otpatch_raw(home, *args))
    assert path in line and f"not a regular file ({words})" in line


def test_read_regular_refuses_a_fifo_and_bounds_a_file(tmp_path):
    from otpatch.modules.contract.errors import InputError
    from otpatch.modules.contract.files import read_regular

    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(InputError, match=r"controls .*fifo: cannot read: not a regular file"):
        read_regular(tmp_path / "fifo", 100, "controls")
    (tmp_path / "big").write_bytes(b"x" * 2048)
    with pytest.raises(InputError, match=r"larger than 1 KiB"):
        read_regular(tmp_path / "big", 1024, "controls")
    assert read_regular(tmp_path / "big", 4096, "controls") == b"x" * 2048


# -- outputs: atomic, to a regular path ---------------------------------------------------

def bad_output(tmp_path: Path, kind: str) -> str:
    if kind == "missing folder":
        return str(tmp_path / "no" / "such" / "graph.md")
    if kind == "directory":
        return str(tmp_path)
    if kind == "proc":
        return "/proc/otpatch-graph.md"
    if kind == "symlink loop":
        (tmp_path / "loop").symlink_to(tmp_path / "loop")
        return str(tmp_path / "loop")
    os.mkfifo(tmp_path / "fifo")
    return str(tmp_path / "fifo")


@pytest.mark.parametrize("kind", ["missing folder", "directory", "proc", "symlink loop", "fifo"])
def test_graph_output_to_a_bad_path_is_one_line(home, tmp_path, kind):
    target = bad_output(tmp_path, kind)
    line = one_clean_line(otpatch_raw(home, "graph", READINESS, "-o", target))
    assert line.startswith(f"otpatch: graph -o {target}: cannot write")
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_graph_output_replaces_atomically_through_a_symlink(home, tmp_path):
    real = tmp_path / "graph.md"
    real.write_text("old\n")
    real.chmod(0o640)
    (tmp_path / "link.md").symlink_to(real)
    done = otpatch_raw(home, "graph", READINESS, "-o", str(tmp_path / "link.md"))
    assert done.returncode == 0, done.stderr
    assert real.read_text().startswith("---\ntitle:") and (tmp_path / "link.md").is_symlink()
    assert oct(real.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.md", "link.md"]


# -- firmware: a regular file of bounded size ---------------------------------------------

@pytest.mark.parametrize("kind,words", KINDS[:2], ids=["fifo", "/dev/zero"])
def test_firmware_from_a_special_file_fails_the_step_at_once(home, tmp_path, kind, words):
    done = otpatch_raw(home, "run", FLASH, "--dry-run", "-e", f"firmware={special(tmp_path, kind)}")
    assert done.returncode == 1 and b"Traceback" not in done.stderr + done.stdout
    assert f"not a regular file ({words})".encode() in done.stdout


def test_firmware_over_the_bound_is_refused_naming_it(tmp_path, monkeypatch):
    from otpatch.modules.firmware import hashing

    image = tmp_path / "fw.bin"
    image.write_bytes(b"x" * 4096)
    monkeypatch.setattr(hashing, "MAX_IMAGE_BYTES", 1024)
    with pytest.raises(OSError, match="larger than 1 KiB, the bound for a firmware image"):
        hashing.verify_file(image, "sha256", "00")
    monkeypatch.undo()
    assert hashing.MAX_IMAGE_BYTES == 2 * 1024 ** 3
    assert hashing.verify_file(image, "sha256", "00").size == 4096


# -- arguments and OTPATCH_HOME -----------------------------------------------------------

@pytest.mark.parametrize("where", ["-e value", "playbook path"])
def test_non_utf8_argument_is_refused_and_leaves_no_lock(home, tmp_path, where):
    playbook = os.fsencode(CHANGE)
    value = b"device=" + os.fsencode(str(tmp_path)) + b"/d\xff.json"
    if where == "playbook path":
        playbook = os.fsencode(str(tmp_path)) + b"/p\xff.yml"
        Path(os.fsdecode(playbook)).write_bytes(Path(CHANGE).read_bytes())
        value = b"device=" + os.fsencode(str(tmp_path / "d.json"))
    line = one_clean_line(otpatch_raw(home, "run", playbook, "--dry-run", "-e", value))
    assert "\\xff" in line and "not UTF-8 text" in line
    assert not (home / "runs").exists() and not (home / "journal.sqlite").exists()


@pytest.mark.parametrize("kind", ["a file", "a 300-character name"])
def test_bad_otpatch_home_is_one_line_exit_2(tmp_path, kind):
    home = tmp_path / ("a" * 300)
    if kind == "a file":
        home = tmp_path / "home-file"
        home.write_text("not a folder\n")
    line = one_clean_line(otpatch_raw(home, "run", CHANGE, "--dry-run", "-e",
                                      f"device={tmp_path / 'd.json'}"))
    assert line.startswith("otpatch: OTPATCH_HOME=")
    assert ("not a directory" if kind == "a file" else "over the 255-byte limit") in line


# -- a module that raises: the run's one-line result, the traceback only with --debug -------

RAISING_PLUGIN = '''
from otpatch.modules.contract.module import Module


class Boom(Module):
    name = "boom.explode"
    doc = "Raises, as a buggy site module would."
    args_schema = {"type": "object", "additionalProperties": False}
    supports_dry_run = True

    def run(self, args, ctx):
        raise ZeroDivisionError("site module bug")


MODULES = [Boom]
'''

RAISING_PLAYBOOK = """apiVersion: otpatch/v1
kind: Playbook
metadata: {name: boom, version: 1.0.0}
initial: explode
states:
  explode:
    stage: lab
    do:
      - boom.explode: {}
    next: completed
    on_failure: aborted
"""


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "--debug"])
def test_module_that_raises_prints_no_traceback_unless_debug(home, tmp_path, debug):
    (tmp_path / "boom_plugin.py").write_text(RAISING_PLUGIN)
    (tmp_path / "boom.yml").write_text(RAISING_PLAYBOOK)
    args = ["--debug"] if debug else []
    done = otpatch_raw(home, *args, "run", str(tmp_path / "boom.yml"), "--dry-run",
                       plugins="boom_plugin", pythonpath=f"{ROOT}{os.pathsep}{tmp_path}")
    assert done.returncode == 1, done.stderr
    assert b"boom.explode raised ZeroDivisionError: site module bug" in done.stdout
    assert (b"Traceback" in done.stderr) is debug, done.stderr


# -- echoed input is clipped --------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["status", "r-" + "a" * 100_000],
    ["a" * 100_000],
    ["run", CHANGE, "--dry-run", "-e", "x" * 100_000],
], ids=["run id", "command name", "-e without ="])
def test_a_100kb_argument_is_echoed_clipped(home, args):
    done = otpatch_raw(home, *args)
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    assert len(done.stderr) < 3000, len(done.stderr)
    assert b"characters)" in done.stderr
