"""Generated bad input never breaks the CLI: exit 0-3, no traceback, bounded time, nothing
written outside OTPATCH_HOME (a fuzz test, derandomized: the same cases on every run)."""
from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import FIXTURES, ROOT, SHARED, child_env
from fuzz_inputs import mutated, mutation

from otpatch.engine.cli import main

BOUND_S = 10.0  # one CLI call, in-process or a child, on a slow CI machine
EXIT_CODES = {0, 1, 2, 3}
CASES: dict[str, int] = {}  # generated cases per fuzz target, printed at the end
# percent of the examples: 100 in the suite (about 60 s); more when hunting, by hand
FUZZ_SCALE = int(os.environ.get("OTPATCH_FUZZ_SCALE", "100"))


def fuzz(examples: int) -> settings:
    """Derandomized: the same cases, in the same order, on every run and machine."""
    return settings(derandomize=True, max_examples=max(1, examples * FUZZ_SCALE // 100),
                    deadline=None, database=None,
                    print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --- the sandbox: a fresh OTPATCH_HOME, cwd and HOME for each case ---------------------------

@dataclass
class Box:
    root: Path

    @property
    def home(self) -> Path:  # OTPATCH_HOME: the only place otpatch may write
        return self.root / "otpatch-home"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    def outside(self) -> dict[str, tuple[int, int]]:
        """Every file outside OTPATCH_HOME that a case could write: cwd, HOME, the inputs."""
        seen = {}
        for top in ("cwd", "user-home", "inputs"):
            for folder, dirs, files in os.walk(self.root / top):
                for name in dirs + files:
                    path = Path(folder, name)
                    st_ = path.lstat()
                    seen[str(path)] = (st_.st_size, st_.st_mtime_ns)
        return seen


@contextlib.contextmanager
def box():
    """cwd and HOME empty, the inputs beside the shipped firmware and inventory (the shipped
    playbooks name them relatively); the environment and cwd restored afterwards."""
    root = Path(tempfile.mkdtemp(prefix="otpatch-fuzz-"))
    for name in ("cwd", "user-home", "inputs/playbooks"):
        (root / name).mkdir(parents=True)
    (root / "inputs" / "playbooks" / "firmware").symlink_to(ROOT / "playbooks" / "firmware")
    (root / "inputs" / "inventory").symlink_to(ROOT / "inventory")
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(OTPATCH_HOME=str(root / "otpatch-home"), HOME=str(root / "user-home"))
    os.chdir(root / "cwd")
    try:
        yield Box(root)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        shutil.rmtree(root, ignore_errors=True)


class Hang(BaseException):
    """The bound passed: the call would hang (raised by SIGALRM in the main thread)."""


def _alarm(signum, frame):
    raise Hang()


@dataclass
class Outcome:
    code: object
    stdout: str
    stderr: str
    seconds: float


def cli(target: str, b: Box, argv: list[str]) -> Outcome:
    """`otpatch ARGV` in this process through engine/cli.py main; the log goes to its stderr."""
    CASES[target] = CASES.get(target, 0) + 1
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    logging.getLogger().addHandler(handler)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, BOUND_S)
    start = time.monotonic()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code: object = main(argv)
    except SystemExit as e:  # argparse: 2; sys.exit("text"): 1
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Hang:
        code = "hang"
    except BaseException:  # noqa: BLE001 - the failure under test, reported below
        err.write(traceback.format_exc())
        code = "traceback"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        logging.getLogger().removeHandler(handler)
    return Outcome(code, out.getvalue(), err.getvalue(), time.monotonic() - start)


def check(b: Box, argv: list[str], outcome: Outcome, before: dict, bound: float = BOUND_S
          ) -> None:
    """The fuzz test's four assertions, each message naming the input."""
    shown = " ".join(a[:80] for a in argv)[:400]
    last = (outcome.stderr.strip().splitlines() or [""])[-1][:300]
    assert outcome.code in EXIT_CODES, f"otpatch {shown}: exit {outcome.code}: {last}"
    assert "Traceback" not in outcome.stderr, f"otpatch {shown}: traceback: {last}"
    assert "internal error" not in outcome.stderr, f"otpatch {shown}: {last}"  # a bug, caught
    assert outcome.seconds < bound, f"otpatch {shown}: {outcome.seconds:.1f} s"
    after = b.outside()
    written = sorted(p for p in after if before.get(p) != after[p])
    assert not written, f"otpatch {shown}: wrote outside OTPATCH_HOME: {written[:3]}"


def run_case(target: str, argv: list[str], b: Box) -> Outcome:
    before = b.outside()
    outcome = cli(target, b, argv)
    check(b, argv, outcome, before)
    return outcome


LAB = str(ROOT / "inventory" / "lab.yml")
SHIPPED = sorted((ROOT / "playbooks").glob("*.yml"))
PLAYBOOKS = SHIPPED + sorted((FIXTURES / "playbooks" / "valid").glob("*.yml"))
INVENTORIES = [ROOT / "inventory" / "lab.yml"] + sorted((FIXTURES / "inventory").glob("*.yml"))
CSAF = sorted((SHARED / "data" / "csaf" / "advisories").glob("*.json"),
              key=lambda p: p.stat().st_size)[:60]  # the smaller ones: a case stays fast


# --- the fuzz targets ------------------------------------------------------------------------

@fuzz(700)
@given(mutation(PLAYBOOKS), st.sampled_from((["validate"], ["validate", "--json"], ["graph"],
                                             ["plan"], ["graph", "--format", "dot"])),
       st.booleans())
def test_mutated_playbooks(case, command, with_inventory):
    source, text_edits, data_edits = case
    with box() as b:
        playbook = b.inputs / "playbooks" / source.name
        playbook.write_text(mutated(source, text_edits, data_edits), errors="surrogatepass")
        extra = ["-i", LAB] if with_inventory and command[0] != "graph" else []
        run_case("playbooks", [command[0], str(playbook), *command[1:], *extra], b)


@fuzz(500)
@given(mutation(INVENTORIES), st.sampled_from(SHIPPED + [None]))
def test_mutated_inventories(case, playbook):
    source, text_edits, data_edits = case
    with box() as b:
        inventory = b.inputs / "inventory.yml"
        inventory.write_text(mutated(source, text_edits, data_edits), errors="surrogatepass")
        argv = ["validate", "-i", str(inventory)] if playbook is None else \
            ["plan", str(playbook), "-i", str(inventory)]
        run_case("inventories", argv, b)


DATES = st.sampled_from(["2026-03-01", "9999-12-31", "0001-01-01", "2026-02-29", "2024-02-29",
                         "2026-13-01", "yesterday", ""]) \
    | st.dates().map(str) | st.text(max_size=12)


@fuzz(250)
@given(mutation(CSAF), st.booleans(), st.none() | DATES)
def test_mutated_csaf_files(case, as_json_output, next_cycle):
    source, text_edits, data_edits = case
    with box() as b:
        advisory = b.inputs / source.name
        advisory.write_text(mutated(source, text_edits, data_edits, as_json=True),
                            errors="surrogatepass")
        argv = ["advisories", "match", str(advisory), "-i", LAB, "--playbooks",
                str(ROOT / "playbooks")]
        argv += ["--json"] if as_json_output else []
        argv += ["--next-cycle", next_cycle] if next_cycle is not None else []
        run_case("csaf", argv, b)


METRICS = {"AV": "NALP", "AC": "LH", "PR": "NLH", "UI": "NR", "S": "UC", "C": "NLH", "I": "NLH",
           "A": "NLH", "E": "XUPFH", "RL": "XOTWU", "RC": "XURC", "CR": "XLMH", "MAV": "XNALP"}
METRIC = st.one_of(
    st.sampled_from(sorted(METRICS)).flatmap(
        lambda m: st.sampled_from(METRICS[m]).map(lambda v: f"{m}:{v}")),
    st.text(alphabet="ACDEHILMNOPRSUVX:/1.", max_size=6), st.text(max_size=4))
BASE = ("AV", "AC", "PR", "UI", "S", "C", "I", "A")
VALID_VECTOR = st.tuples(
    st.sampled_from(["CVSS:3.1", "CVSS:3.0"]),
    st.tuples(*(st.sampled_from(METRICS[m]).map(lambda v, m=m: f"{m}:{v}") for m in BASE)),
    st.lists(st.sampled_from(sorted(set(METRICS) - set(BASE))).flatmap(
        lambda m: st.sampled_from(METRICS[m]).map(lambda v: f"{m}:{v}")), max_size=3),
    st.lists(st.tuples(st.sampled_from(("drop", "twice", "swap")), st.integers(0, 20)),
             max_size=2),
).map(lambda t: "/".join([t[0], *reshuffled([*t[1], *t[2]], t[3])]))
VECTOR = VALID_VECTOR | st.tuples(
    st.sampled_from(["CVSS:3.1", "CVSS:3.0", "CVSS:2.0", "CVSS:4.0", "CVSS:", "", "cvss:3.1",
                     "CVSS:3.1/CVSS:3.1"]),
    st.lists(METRIC, max_size=14)).map(lambda t: "/".join([t[0], *t[1]]))


def reshuffled(metrics: list[str], edits) -> list[str]:
    """A vector's metrics with one dropped, one given twice, or two swapped."""
    for op, i in edits:
        i %= len(metrics)
        if op == "drop":
            metrics = metrics[:i] + metrics[i + 1:]
        elif op == "twice":
            metrics = metrics + [metrics[i]]
        else:
            metrics[0], metrics[i] = metrics[i], metrics[0]
    return metrics


CVSS_OPTIONS = st.lists(st.one_of(
    st.just(["--json"]),
    st.tuples(st.just("--control"), st.sampled_from(["segmented", "nope", "", "a" * 300])
              | st.text(max_size=8)).map(list),
    st.tuples(st.sampled_from(["--published", "--next-cycle"]), DATES).map(list),
    st.tuples(st.just("--controls"), st.sampled_from(
        [str(ROOT / "inventory" / "lab-controls.yml"), "/dev/null", "/nonexistent.yml",
         *map(str, sorted((FIXTURES / "risk").glob("controls*.yml")))])).map(list)),
    max_size=4).map(lambda pairs: [a for pair in pairs for a in pair])


@fuzz(800)
@given(VECTOR, CVSS_OPTIONS)
def test_cvss_vectors(vector, options):
    with box() as b:
        run_case("cvss", ["risk", "score", vector, *options], b)


def token(b: Box):
    return st.sampled_from([
        "validate", "graph", "plan", "run", "resume", "status", "journal", "verify", "risk",
        "score", "advisories", "match", "approve", "report", "firewall", "keygen", "--json",
        "--rules", "-i", "-e", "-o", "--format", "svg", "dot", "--dry-run", "--execute",
        "--against", "--host", "--name", "--controls", "--next-cycle", "--due-from", "current",
        "--playbooks", "-", "--", "--debug", "x=1", "=", "firmware=/dev/null", LAB,
        str(SHIPPED[0]), str(PLAYBOOKS[-1]), "r-20260101T000000-abcdef",
        "r-20260101T000000-abcdef/../../x", str(FIXTURES / "engine" / "change-and-verify.yml"),
        str(b.home / "out.dot"), str(b.home / "key"), str(b.home), "/", "/nonexistent/x.yml",
    ]) | st.text(st.characters(blacklist_characters="\x00"), max_size=10)
    # no NUL: no real argv can hold one (an in-process `validate "a\x00"` once said
    # "internal error (a bug in otpatch): ValueError: embedded null byte")


# Never started in-process: `sim up` serves until Ctrl-C, `demo` runs every shipped
# procedure against the simulators (tests/test_procedures.py covers both).
COMMANDS = [["validate"], ["graph"], ["plan"], ["run"], ["resume"], ["status"],
            ["journal", "verify"], ["journal", "checkpoints"], ["risk", "score"],
            ["advisories", "match"], ["approve"], ["report"], ["firewall"], ["keygen"],
            ["keygen", "--name"], ["validate", "--rules"], ["status", "--json"]]


def outputs(b: Box) -> list[str]:
    """Where -o may point: into OTPATCH_HOME, or where nothing may be written."""
    return [str(b.home / "out.dot"), str(b.home / "missing" / "out.dot"), str(b.home), "-",
            str(b.home / "key"), "/proc/self/status", "/nonexistent/out.dot", "/dev/null"]


@fuzz(800)
@given(st.data())
def test_cli_arguments(data):
    with box() as b:
        command = data.draw(st.sampled_from(COMMANDS))
        argv = command + data.draw(st.lists(token(b), max_size=6))
        for i, arg in enumerate(argv[:-1]):
            if arg in ("-o", "--output"):  # written where it is told: only these places
                argv[i + 1] = data.draw(st.sampled_from(outputs(b)))
        if argv[0] in ("run", "plan", "resume") or "--execute" in argv:
            # a run may reach a simulator port: only dry runs of the stand-in playbook
            argv = [a for a in argv if a != "--execute"]
        run_case("cli", argv, b)


# A few real child processes: what only a process shows (argv and environment bytes, the
# interpreter's exit, stray locks).
CHILD = st.sampled_from(["argv-bytes", "extra-bytes", "home-file", "home-long", "plugins"])


@fuzz(12)
@given(CHILD, st.binary(min_size=1, max_size=8))
def test_child_processes(kind, junk):
    CASES["child"] = CASES.get("child", 0) + 1
    junk = junk.replace(b"\x00", b"_").replace(b"/", b"_")  # no argument can hold these
    with box() as b:
        change = str(FIXTURES / "engine" / "change-and-verify.yml").encode()
        args: list[bytes] = [b"validate", change]
        env = child_env(b.home)
        if kind == "argv-bytes":
            path = os.fsencode(b.inputs) + b"/\xff" + junk + b".yml"
            with open(path, "wb") as out:
                out.write(Path(change.decode()).read_bytes())
            args = [b"validate", path]
        elif kind == "extra-bytes":
            args = [b"run", change, b"--dry-run", b"-e", b"device=" + os.fsencode(b.home)
                    + b"/d.json", b"-e", b"verify_ok=\xff" + junk]
        elif kind == "home-file":
            b.home.write_text("not a folder")
            args = [b"status"]
        elif kind == "home-long":
            env["OTPATCH_HOME"] = str(b.root / ("h" * 300))
            args = [b"status"]
        else:
            env["OTPATCH_MODULE_PLUGINS"] = "nonexistent_plugin_" + junk.hex()
        before = b.outside()
        env = {k.encode(): v.encode("utf-8", "surrogateescape") for k, v in env.items()}
        start = time.monotonic()
        done = subprocess.run([sys.executable.encode(), b"-m", b"otpatch.engine.cli", *args],
                              cwd=b.root / "cwd", env=env, capture_output=True,
                              timeout=BOUND_S * 3, stdin=subprocess.DEVNULL)
        stderr = done.stderr.decode(errors="replace")
        outcome = Outcome(done.returncode, "", stderr, time.monotonic() - start)
        check(b, [a.decode(errors="replace") for a in args], outcome, before, BOUND_S * 3)


@pytest.fixture(autouse=True, scope="module")
def report_case_counts(request):
    """The number of generated cases, on the terminal after the module (the closing note's)."""
    yield
    plugins = request.config.pluginmanager
    terminal, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if terminal is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"\nfuzz cases: {sum(CASES.values())} "
                                f"{dict(sorted(CASES.items()))}")
