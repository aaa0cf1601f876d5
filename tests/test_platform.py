"""otpatch runs on Windows too: no OS-specific call outside modules/contract/platform.py
(read from the source with ast); its RunLock held and freed across real processes; its file,
terminal and signal facilities on this machine's real files, modes and pseudo-terminals.

No Windows machine is available to these tests. Where a Windows branch can run here at all,
a test takes it by replacing platform.on_windows (the one place that reads sys.platform) and
says so; the branches that need Windows' own names (os.O_BINARY's value, signal.SIGBREAK)
are not run here."""
from __future__ import annotations

import ast
import contextlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT
from otpatch.engine import keys
from otpatch.modules.ansible.playbook import AnsiblePlaybook
from otpatch.modules.contract import platform
from otpatch.modules.contract.files import read_regular
from otpatch.modules.contract.platform import RunLock, lock_held
from otpatch.modules.contract.errors import InputError

posix_only = pytest.mark.skipif(sys.platform == "win32",
                                reason="a FIFO, a pseudo-terminal and mode bits are POSIX's")

PLATFORM_MODULE = "modules/contract/platform.py"
OS_MODULES = frozenset({"fcntl", "termios", "pwd", "grp", "msvcrt", "resource"})
OS_NAMES = {
    "os": frozenset({
        "fork", "setsid", "getuid", "geteuid", "killpg", "ttyname", "fchmod",
        # open() flags "only available on Unix" / "only available on Windows" (Python docs,
        # os); os.set_blocking is Unix only on 3.11
        "O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC", "O_BINARY", "set_blocking",
        # without O_BINARY, os.open opens in text mode on Windows (CRLF, stops at 0x1A):
        # every caller goes through platform.open_for_reading / create_private instead
        "open"}),
    # signals one OS's signal module does not define: reading one raises AttributeError there
    "signal": frozenset({"SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM",
                         "SIGCHLD", "SIGSTOP", "SIGCONT", "SIGPIPE", "alarm", "setitimer",
                         "SIGBREAK", "CTRL_C_EVENT", "CTRL_BREAK_EVENT"}),  # Windows only
}

# What stays outside modules/contract/platform.py, and why it may: (file, what) -> reason.
ALLOWED = {
    ("engine/journal.py", "signal.SIGKILL"):
        "a test fault hook: SIGKILLs itself only when a test sets OTPATCH_FAULT_KILL",
    ("modules/polling.py", "signal.SIGKILL"):
        "a test fault hook: SIGKILLs itself only when a test sets its FAULT_KILL_POLL_ENV",
}


def os_specific_uses(path: Path) -> list[tuple[int, str]]:
    """(line, what) for each OS-specific import or os/signal name in the file at `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    aliases = {"os": "os", "signal": "signal"}  # local name -> module, for `import os as o`
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in OS_MODULES:
                    found.append((node.lineno, top))
                if top in OS_NAMES and alias.asname:
                    aliases[alias.asname] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in OS_MODULES:
                found.append((node.lineno, top))
            found += [(node.lineno, f"{top}.{a.name}") for a in node.names
                      if a.name in OS_NAMES.get(node.module, ())]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.attr in OS_NAMES.get(aliases.get(node.value.id, ""), ())):
            found.append((node.lineno, f"{aliases[node.value.id]}.{node.attr}"))
    return sorted(found)


def product_uses() -> list[tuple[str, int, str]]:
    """(file, line, what) over every product module but modules/contract/platform.py."""
    files = sorted(p for folder in ("engine", "modules") for p in (ROOT / folder).rglob("*.py"))
    return [(rel, line, what) for p in files
            if (rel := p.relative_to(ROOT).as_posix()) != PLATFORM_MODULE
            for line, what in os_specific_uses(p)]


def test_no_os_specific_call_outside_the_platform_module():
    offenders = [f"{rel}:{line}: {what}" for rel, line, what in product_uses()
                 if (rel, what) not in ALLOWED]
    assert offenders == [], "OS-specific, outside modules/contract/platform.py: " + "; ".join(offenders)


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
    ("import os\nfd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)\n",
     [(2, "os.O_NONBLOCK"), (2, "os.open")]),
    ("import os\nflags = os.O_NOCTTY | os.O_CLOEXEC | os.O_BINARY\n",
     [(2, "os.O_BINARY"), (2, "os.O_CLOEXEC"), (2, "os.O_NOCTTY")]),
    ("import os\nos.set_blocking(fd, True)\n", [(2, "os.set_blocking")]),
    ("import os\nname = os.ttyname(0)\n", [(2, "os.ttyname")]),
    ("import os\nos.fchmod(fd, 0o600)\n", [(2, "os.fchmod")]),
    ("from os import open as os_open\n", [(1, "os.open")]),
    ("import signal\nsignal.signal(signal.SIGBREAK, print)\n", [(2, "signal.SIGBREAK")]),
    ("from pathlib import Path\nPath('a').open('rb')\nopen('b', encoding='utf-8')\n", []),
]


@pytest.mark.parametrize("source, expected", CHECKER_CASES,
                         ids=[c[0].splitlines()[-1] for c in CHECKER_CASES])
def test_the_checker_finds_os_specific_uses(tmp_path, source, expected):
    path = tmp_path / "product.py"
    path.write_text(source, encoding="utf-8")
    assert os_specific_uses(path) == expected


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


# -- the platform module's facilities, on this machine ---------------------------------------

@pytest.fixture
def windows_stand_in(monkeypatch):
    """platform.on_windows answering True: a stand-in, as no Windows machine is available.
    It takes the Windows branches that use no Windows-only name; os still is this OS's."""
    monkeypatch.setattr(platform, "on_windows", lambda: True)


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


BYTES_A_TEXT_MODE_WOULD_ALTER = b"MZ\r\n\x00\x1a\xff after the 0x1A\r\n\n"


@posix_only
def test_read_flags_here_are_the_posix_ones_unchanged():
    assert platform.read_flags() == os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def test_a_file_read_through_the_platform_module_keeps_every_byte(tmp_path):
    image = tmp_path / "firmware.bin"
    image.write_bytes(BYTES_A_TEXT_MODE_WOULD_ALTER)
    assert read_regular(image, 1024, "firmware image") == BYTES_A_TEXT_MODE_WOULD_ALTER
    fd = platform.open_for_reading(image)
    try:
        assert not os.get_inheritable(fd)  # no child process gets the open file
        assert os.read(fd, 1024) == BYTES_A_TEXT_MODE_WOULD_ALTER
    finally:
        os.close(fd)


@posix_only
def test_opening_a_fifo_returns_at_once_and_reads_block_again(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fd = platform.open_for_reading(fifo)  # no writer: a blocking open would wait for ever
    try:
        assert os.get_blocking(fd)
        assert stat.S_ISFIFO(os.fstat(fd).st_mode)  # files.open_regular refuses it from here
    finally:
        os.close(fd)


@posix_only
def test_a_private_file_is_0600_whatever_the_umask(tmp_path):
    path = tmp_path / "host.key"
    with umask(0o277):  # would leave the owner read-only, without the fchmod
        fd = platform.create_private(path)
    with os.fdopen(fd, "wb") as out:
        out.write(BYTES_A_TEXT_MODE_WOULD_ALTER)
    assert mode_of(path) == 0o600
    assert path.read_bytes() == BYTES_A_TEXT_MODE_WOULD_ALTER


def test_a_private_file_is_never_created_over_another_unless_replacing(tmp_path):
    path = tmp_path / "profile.atv"
    path.write_bytes(b"the first")
    with pytest.raises(FileExistsError):
        platform.create_private(path)
    assert path.read_bytes() == b"the first"
    path.chmod(0o644)
    os.close(platform.create_private(path, replace=True))
    assert path.read_bytes() == b""
    if sys.platform != "win32":
        assert mode_of(path) == 0o600  # a replaced file is made private too


@posix_only
def test_windows_stand_in_creates_the_file_without_a_mode_change(tmp_path, windows_stand_in):
    path = tmp_path / "host.key"
    with umask(0o277):
        os.close(platform.create_private(path))
    assert mode_of(path) == 0o400  # the umask's doing: no fchmod on the Windows branch


@posix_only
@pytest.mark.parametrize("mode, private", [(0o600, True), (0o400, True), (0o640, False),
                                           (0o604, False), (0o660, False)],
                         ids=["0600", "0400", "0640", "0604", "0660"])
def test_is_private_reads_the_group_and_other_bits(tmp_path, mode, private):
    path = tmp_path / "file"
    path.write_bytes(b"")
    path.chmod(mode)
    assert platform.is_private(path.stat()) is private


def test_windows_stand_in_cannot_tell_private_from_a_mode(tmp_path, windows_stand_in):
    path = tmp_path / "file"
    path.write_bytes(b"")
    path.chmod(0o666)
    assert platform.is_private(path.stat()) is None


@posix_only
def test_a_key_readable_by_others_is_refused_here_and_loaded_on_the_windows_branch(
        tmp_path, monkeypatch):
    path = tmp_path / "host.key"
    public = keys.generate(path)
    assert mode_of(path) == 0o600
    path.chmod(0o644)
    with pytest.raises(InputError, match=f"readable by others \\(mode 0644\\): chmod 600 {path}$"):
        keys.load(path, "host key")
    monkeypatch.setattr(platform, "on_windows", lambda: True)  # stand-in, as above
    assert keys.load(path, "host key").public_key == public


def test_fsync_directory_opens_the_folder_here_and_not_on_the_windows_branch(
        tmp_path, monkeypatch):
    platform.fsync_directory(tmp_path)
    with pytest.raises(FileNotFoundError):  # it did open the folder
        platform.fsync_directory(tmp_path / "gone")
    monkeypatch.setattr(platform, "on_windows", lambda: True)  # stand-in, as above
    platform.fsync_directory(tmp_path / "gone")  # nothing opened, so nothing to fail


@posix_only
def test_terminal_name_names_a_real_pseudo_terminal_and_nothing_else(tmp_path, monkeypatch):
    controller, terminal = os.openpty()
    try:
        name = platform.terminal_name(terminal)
        assert name == os.ttyname(terminal) and name.startswith("/dev/")
        with open(tmp_path / "file", "wb") as f:
            assert platform.terminal_name(f.fileno()) is None
        monkeypatch.setattr(platform, "on_windows", lambda: True)  # stand-in, as above
        assert platform.terminal_name(terminal) is None
    finally:
        os.close(controller)
        os.close(terminal)


@posix_only
def test_sim_up_stops_on_ctrl_c_or_sigterm_here():
    assert platform.stop_signals() == ((signal.SIGINT, signal.SIGTERM), "Ctrl-C or SIGTERM")


def test_ansible_playbook_refuses_plainly_on_the_windows_branch(tmp_path, monkeypatch,
                                                                windows_stand_in):
    # were ansible_runner imported, the import would fail, as it does on Windows (fcntl)
    monkeypatch.setitem(sys.modules, "ansible_runner", None)
    ctx = SimpleNamespace(dry_run=False, run_dir=tmp_path / "run")
    refusal = ("site.yml: not available on Windows: Ansible's control node runs on Linux or "
               "macOS; run this step from a Linux otpatch host")
    result = AnsiblePlaybook().run({"playbook": "site.yml"}, ctx)
    assert (result.failed, result.changed, result.msg) == (True, False, refusal)
    read_back = AnsiblePlaybook().read_back({"playbook": "site.yml"}, ctx)
    assert read_back.applied is None and read_back.result.msg == f"read-back cannot tell: {refusal}"
    assert not (tmp_path / "run").exists()  # nothing started


LAB_IN_AN_ASCII_LOCALE = """
import locale, sys
from pathlib import Path
from otpatch.engine.simlab import start_lab
print(locale.getpreferredencoding(False))
with start_lab(Path(sys.argv[1]), ephemeral=True, out_dir=Path(sys.argv[2])) as lab:
    print(lab.inventory)
"""


@posix_only
def test_the_lab_copies_a_utf8_inventory_in_a_locale_that_is_not_utf8(tmp_path):
    # Windows' cp1252 stood in for by the C locale's ASCII (no UTF-8 mode, no coercion)
    source = tmp_path / "lab.yml"
    text = "# Schaltschrank Süd – Halle 3\nall:\n  hosts:\n    plc-1: {ansible_connection: local}\n"
    source.write_bytes(text.encode("utf-8"))
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "LC_ALL": "C",
           "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    done = subprocess.run([sys.executable, "-c", LAB_IN_AN_ASCII_LOCALE, str(source),
                           str(tmp_path / "out")], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    encoding, written = done.stdout.split()
    assert encoding.lower() not in {"utf-8", "utf8"}
    assert Path(written).read_bytes() == text.encode("utf-8")
