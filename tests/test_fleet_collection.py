"""The otpatch.fleet Ansible collection (ansible/collections/ansible_collections/otpatch/fleet)
as Ansible's own tools see it: ansible-doc prints both modules' docs without a warning and
documents exactly the options their ARGUMENT_SPEC takes; `ansible-test sanity` (compile,
validate-modules) and `ansible-test units` pass; galaxy.yml's version is otpatch's.

ansible-test runs offline but for the package index: it bootstraps pip in each virtual
environment it creates with a get-pip script it would download from
ci-files.testing.ansible.com unless ~/.ansible/test/cache holds one. These tests give
ansible-test a HOME of its own whose cache holds ansible/ansible-test-bootstrap/get_pip.py
(see its docstring), so neither that host nor the real ~/.ansible is used. That HOME and
the copies of the collection ansible-test writes into persist between test sessions, in a
private directory under the system temp dir keyed by ansible-core and Python: ansible-test
then reuses the virtual environments it made there, instead of building them each run."""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from filelock import FileLock, Timeout

from conftest import ROOT

COLLECTIONS = ROOT / "ansible" / "collections"
COLLECTION = COLLECTIONS / "ansible_collections" / "otpatch" / "fleet"
BOOTSTRAP = ROOT / "ansible" / "ansible-test-bootstrap" / "get_pip.py"
BIN = Path(sys.executable).parent
MODULES = ("site_rollout", "site_status")
PYTHON = "%d.%d" % sys.version_info[:2]
ANSIBLE_CORE = importlib.metadata.version("ansible-core")
ANSIBLE_CORE_MINOR = ".".join(ANSIBLE_CORE.split(".")[:2])
# Measured on 2 cores, idle: sanity 7 s building its environments, 1 s reusing them; units
# 7 s building, 5 s reusing. At a load average of 8 to 11 they took up to 50 s and 55 s.
ANSIBLE_TEST_TIMEOUT = 240
LOCK_TIMEOUT = 300


# --- ansible-doc --------------------------------------------------------------------------

def ansible_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for an Ansible tool: no ANSIBLE_* or OTPATCH_* of the caller's, no
    colour, and Ansible's own files (ANSIBLE_HOME) in the test's directory."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "OTPATCH_")) and k not in ("COLUMNS", "LINES")}
    env.update(ANSIBLE_HOME=str(home / "ansible-home"), ANSIBLE_NOCOLOR="1", **extra)
    return env


def ansible_doc(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`ansible-doc ARGS` (the one beside this Python) over the repository's collections."""
    return subprocess.run([str(BIN / "ansible-doc"), *args], cwd=tmp_path, timeout=60,
                          env=ansible_env(tmp_path, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS)),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


def argument_spec(module: str) -> dict:
    """The module's ARGUMENT_SPEC, as importing it gives it (in a child Python, so this
    test process's import path stays as it is)."""
    code = ("import json, sys; sys.path.insert(0, %r); from ansible_collections.otpatch.fleet"
            ".plugins.modules import %s as m; print(json.dumps(m.ARGUMENT_SPEC))"
            % (str(COLLECTIONS), module))
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, cwd=ROOT)
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout)


def option_view(option: dict) -> dict:
    """What an option's documentation and its argument spec must agree on, with
    Ansible's defaults filled in (type str, not required, no default)."""
    return {"type": option.get("type", "str"), "required": option.get("required", False),
            "default": option.get("default"), "choices": option.get("choices"),
            "elements": option.get("elements")}


def listed_options(text: str) -> dict[str, bool]:
    """The options ansible-doc's text lists, each with whether it is marked required: the
    OPTIONS section's `= name` (required) and `- name` lines, up to the next section."""
    section = text.split("\nOPTIONS", 1)[1]
    section = re.split(r"\n[A-Z][A-Z ]+:", section, maxsplit=1)[0]
    return {name: mark == "=" for mark, name in re.findall(r"^([-=]) (\w+)", section, re.M)}


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_prints_the_module_docs_without_warning(module, tmp_path):
    """`ansible-doc otpatch.fleet.MODULE` lists every option, the required ones marked,
    and warns about nothing."""
    shown = ansible_doc(tmp_path, "otpatch.fleet." + module)
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == ""
    assert "WARNING" not in shown.stdout
    heading = shown.stdout.splitlines()[0]
    assert heading.startswith(">") and "otpatch.fleet." + module in heading.lower(), heading
    assert listed_options(shown.stdout) == {
        name: option.get("required", False) for name, option in argument_spec(module).items()}


@pytest.mark.parametrize("module", MODULES)
def test_documented_options_are_the_argument_spec(module, tmp_path):
    """`ansible-doc --json` shows the options ARGUMENT_SPEC takes: the same names, each with
    the same type, requiredness, default, choices and element type."""
    shown = ansible_doc(tmp_path, "--json", "otpatch.fleet." + module)
    assert shown.returncode == 0, shown.stderr
    documented = json.loads(shown.stdout)["otpatch.fleet." + module]["doc"]["options"]
    spec = argument_spec(module)
    assert sorted(documented) == sorted(spec)
    assert {n: option_view(o) for n, o in documented.items()} == {
        n: option_view(o) for n, o in spec.items()}


# --- ansible-test -------------------------------------------------------------------------

def bootstrap_pip_version() -> str:
    """The pip version ansible-test bootstraps its virtual environments with, from
    ansible-test itself (python_requirements.get_venv_packages, which collect_bootstrap
    reads). Asked in a child: importing ansible_test._internal changes process limits."""
    code = ("import json, sys; from ansible_test._internal.python_requirements import "
            "get_venv_packages; from ansible_test._internal.host_configs import "
            "NativePythonConfig; print(json.dumps(get_venv_packages(NativePythonConfig("
            "version=%r, path=sys.executable))))" % PYTHON)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=60, cwd=ROOT)
    assert child.returncode == 0, "ansible-test's pip version: %s" % child.stderr
    return json.loads(child.stdout)["pip"]


def install_bootstrap(home: Path) -> Path:
    """Put the offline get-pip stand-in where ansible-test's bootstrap looks for its cached
    get-pip (requirements.py, bootstrap()): HOME/.ansible/test/cache/get_pip_<version>.py.
    Replaced atomically: another run may be reading it."""
    cache = home / ".ansible" / "test" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / ("get_pip_%s.py" % bootstrap_pip_version().replace(".", "_"))
    staged = cache / (target.name + ".%d.new" % os.getpid())
    shutil.copyfile(BOOTSTRAP, staged)
    os.replace(staged, target)
    return target


def private_directory(path: Path) -> Path:
    """path, created if missing, refused unless it is this user's and nobody else's: the
    virtual environments in it are run."""
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
            or info.st_mode & 0o077):
        pytest.fail("%s is not a directory private to this user (mode %o, owner %d): remove "
                    "it, the ansible-test tests keep their cache there"
                    % (path, stat.S_IMODE(info.st_mode), info.st_uid))
    return path


@pytest.fixture(scope="session")
def ansible_test_cache() -> Path:
    """What the ansible-test runs reuse from one test session to the next: HOME (with the
    sanity environments, HOME/.ansible/test/venv) and, per command, a copy of the collection
    with the environment ansible-test runs in (see `workspace`). One per user, ansible-core
    and Python (its real prefix too: an environment is bound to the Python that made it);
    its name is short for the shebangs of the environments in it."""
    key = hashlib.sha256(("%s|%s|%s" % (ANSIBLE_CORE, sys.version, sys.base_prefix))
                         .encode()).hexdigest()[:8]
    cache = private_directory(Path(tempfile.gettempdir())
                              / ("otpatch-at-%d-%s" % (os.getuid(), key)))
    install_bootstrap(cache / "home")
    return cache


def copy_without_output(source: str, names: list[str]) -> set[str]:
    """copytree's ignore: no caches, and not ansible-test's results (tests/output)."""
    ignored = {n for n in names if n in ("__pycache__", ".pytest_cache") or n.endswith(".pyc")}
    if Path(source) == COLLECTION / "tests":
        ignored.add("output")
    return ignored


# ansible-test's virtual environment for --venv, which it makes inside the content it tests
VENV = Path("tests", "output", ".tmp", "delegation")


def clear_except(root: Path, kept: Path) -> None:
    """Remove everything under root but the relative path kept (and what it is in)."""
    directory = root
    for part in kept.parts:
        if not directory.is_dir():
            return
        for entry in directory.iterdir():
            if entry.name == part:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        directory = directory / part


@contextlib.contextmanager
def workspace(cache: Path, command: str) -> Iterator[Path]:
    """The collection as it is now, for `ansible-test COMMAND` to write into, at
    CACHE/COMMAND/ansible_collections/otpatch/fleet (the layout ansible-test wants), with
    nothing of the last run kept but its virtual environment; held under a lock, one run at
    a time (two would build the same environments at once). The environment's scripts
    need their shebangs under the kernel's limit of 127 characters."""
    copy = cache / command / "ansible_collections" / "otpatch" / "fleet"
    python = copy / VENV / ("python" + PYTHON) / "bin" / "python"
    assert len(str(python)) < 128, "%s: too long a path for a shebang" % python
    lock = cache / (command + ".lock")
    try:
        with FileLock(str(lock), timeout=LOCK_TIMEOUT):
            clear_except(copy, VENV)
            shutil.copytree(COLLECTION, copy, ignore=copy_without_output, dirs_exist_ok=True)
            yield copy
    except Timeout:
        pytest.fail("another ansible-test %s run held %s for %d s" % (command, lock, LOCK_TIMEOUT))


def ansible_test_env(home: Path) -> dict[str, str]:
    """ansible-test's environment: HOME moved (for ~/.ansible only), pip still reading the
    user's configuration (XDG_CONFIG_HOME) and its cache (XDG_CACHE_HOME) where they were."""
    real_home = Path.home()
    env = ansible_env(home)
    env.update(HOME=str(home),
               XDG_CONFIG_HOME=os.environ.get("XDG_CONFIG_HOME", str(real_home / ".config")),
               XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME", str(real_home / ".cache")))
    return env


def ansible_test(content: Path, home: Path, *args: str) -> tuple[int, str]:
    """`ansible-test ARGS --python X.Y --venv` in content with HOME=home, locally (no
    containers); its status and output. Stopped, with everything it started, after
    ANSIBLE_TEST_TIMEOUT seconds."""
    command = [str(BIN / "ansible-test"), *args, "--python", PYTHON, "--venv", "--color", "no"]
    with subprocess.Popen(command, cwd=content, env=ansible_test_env(home), text=True,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, start_new_session=True) as child:
        try:
            output, _ = child.communicate(timeout=ANSIBLE_TEST_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            output, _ = child.communicate()
            pytest.fail("`%s` did not end within %d s:\n%s"
                        % (" ".join(command), ANSIBLE_TEST_TIMEOUT, tail(output)))
    return child.returncode, output


def tail(output: str, lines: int = 80) -> str:
    """The end of a long output, where ansible-test says what failed."""
    return "\n".join(output.splitlines()[-lines:])


def test_ansible_test_sanity_passes(ansible_test_cache):
    """`ansible-test sanity --test compile --test validate-modules` finds nothing."""
    ignores = COLLECTION / "tests" / "sanity" / ("ignore-%s.txt" % ANSIBLE_CORE_MINOR)
    assert ignores.is_file(), (
        "%s is missing: ansible-core %s reads its sanity ignores from it (copy the newest "
        "ignore-*.txt after checking that its entries still apply)" % (ignores, ANSIBLE_CORE))
    with workspace(ansible_test_cache, "sanity") as collection:
        status, output = ansible_test(collection, ansible_test_cache / "home", "sanity",
                                      "--test", "compile", "--test", "validate-modules")
    assert status == 0, tail(output)
    assert 'Running sanity test "compile"' in output
    assert 'Running sanity test "validate-modules"' in output


def junit_counts(report: Path) -> dict[str, int]:
    """A JUnit report's totals: tests, failures, errors, skipped."""
    root = ElementTree.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return {key: sum(int(suite.get(key, 0)) for suite in suites)
            for key in ("tests", "failures", "errors", "skipped")}


def test_ansible_test_units_pass(ansible_test_cache):
    """`ansible-test units` runs the collection's unit tests (modules and module_utils),
    and every one passes: none fails, errs or is skipped."""
    with workspace(ansible_test_cache, "units") as collection:
        status, output = ansible_test(collection, ansible_test_cache / "home", "units")
        assert status == 0, tail(output)
        junit = collection / "tests" / "output" / "junit"
        counts = {context: junit_counts(junit / ("python%s-%s-units.xml" % (PYTHON, context)))
                  for context in ("modules", "module_utils")}
    for context, totals in counts.items():
        assert totals["tests"] > 0, (context, totals)
        assert (totals["failures"], totals["errors"], totals["skipped"]) == (0, 0, 0), (
            context, totals)


# --- versions -----------------------------------------------------------------------------

def test_collection_version_is_otpatchs():
    """The collection is released with otpatch: galaxy.yml's version is pyproject's."""
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert galaxy["version"] == project["version"]
