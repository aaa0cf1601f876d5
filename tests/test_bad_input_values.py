"""Bad values never break otpatch (issue 9): durations, integers, dates, CSAF files and
templates past their bounds each get one clear, named line and exit 2, in a real child
process with a timeout (a hang or a memory blow-up fails the test), never a traceback."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from conftest import FIXTURES, otpatch_child

BIG = "9" * 400
WAIT = """\
apiVersion: otpatch/v1
kind: Playbook
metadata: {name: bad-values, version: 1.0.0}
params:
  pause: {type: duration, default: 1s}
  text: {type: string, default: 1s}
  count: {type: int, default: 1}
initial: rest
states:
  rest:
    stage: lab
    EXPECT
    do:
      - core.wait: {duration: WAITED}
    next: completed
BUDGET
"""
VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
CSAF = FIXTURES / "advisories" / "derived" / "icsa-20-016-01-excerpt.json"
PLANT = FIXTURES / "advisories" / "plant.yml"


def playbook(tmp_path: Path, expect: str = "expect_duration: 1m", waited: str = "1s",
             budget: str = "") -> Path:
    path = tmp_path / "bad-values.yml"
    path.write_text(WAIT.replace("EXPECT", expect).replace("WAITED", waited)
                    .replace("BUDGET", budget))
    return path


def assert_one_clear_line(result, *fragments: str, code: int = 2) -> None:
    out = result.stdout + result.stderr
    assert "Traceback" not in out and "internal error" not in out, out[-2000:]
    assert result.returncode == code, out[-2000:]
    for fragment in fragments:
        assert fragment in out, out[-2000:]
    assert max(map(len, out.splitlines() or [""])) < 600, "a message echoes its input"


def runs_in(home: Path) -> list:
    journal = home / "journal.sqlite"
    if not journal.exists():
        return []
    with sqlite3.connect(journal) as db:
        return db.execute("SELECT DISTINCT run_id FROM entries").fetchall()


# -- durations -------------------------------------------------------------------------------

PLAYBOOK_DURATIONS = [
    # (id, expect_duration line, core.wait duration, budgets text, rule, fragment)
    ("expect 400 digits", f"expect_duration: {BIG}", "1s", "", "[yaml-syntax]",
     "within 64 bits"),
    ("expect 10 ** 18 s", f"expect_duration: {10 ** 18}", "1s", "", "[schema]", "30 days"),
    ("expect 400 digits s", f"expect_duration: {BIG}s", "1s", "", "[schema]", "30 days"),
    ("expect 31 days", "expect_duration: 744h", "1s", "", "[schema]",
     "'744h' is longer than the bound of 30 days"),
    ("timeout 400 digits", f"timeout: {BIG}.5", "1s", "", "[yaml-syntax]", "infinity"),
    ("timeout 1e30", "timeout: 1e30", "1s", "", "[schema]", "30 days"),
    ("expect infinity", "expect_duration: .inf", "1s", "", "[yaml-syntax]", "infinity"),
    ("expect 1e400", "expect_duration: 1e400", "1s", "", "[yaml-syntax]", "infinity"),
    ("wait 400 digits", "expect_duration: 1m", BIG, "", "[yaml-syntax]", "within 64 bits"),
    ("wait 10 ** 18 s", "expect_duration: 1m", str(10 ** 18), "", "[module-args]",
     "core.wait duration"),
    ("wait 400 digits h", "expect_duration: 1m", BIG + "h", "", "[module-args]",
     "core.wait duration"),
    ("wait 31 days", "expect_duration: 1m", "744h", "", "[duration-bound]",
     "'744h' is longer than the bound of 30 days"),
    ("budget 400 digits", "expect_duration: 1m", "1s",
     f"budgets:\n  window: {{limit: {BIG}m, states: [rest]}}", "[schema]", "budgets.window.limit"),
    ("budget 31 days", "expect_duration: 1m", "1s",
     "budgets:\n  window: {limit: 744h, states: [rest]}", "[schema]", "30 days"),
]


@pytest.mark.parametrize("expect,waited,budget,rule,fragment",
                         [c[1:] for c in PLAYBOOK_DURATIONS],
                         ids=[c[0] for c in PLAYBOOK_DURATIONS])
def test_a_duration_past_the_bound_is_refused_at_validate(tmp_path, home, expect, waited,
                                                          budget, rule, fragment):
    path = playbook(tmp_path, expect, waited, budget)
    assert_one_clear_line(otpatch_child(home, "validate", str(path), timeout=30), rule, fragment)


EXTRA_VALUES = [
    # (id, -e assignment, fragment)
    ("duration 400 digits", f"pause={BIG}", "-e pause: not a duration"),
    ("duration 400 digits s", f"pause={BIG}s", "-e pause: not a duration"),
    ("duration infinity", "pause=inf", "-e pause: not a duration"),
    ("duration 1e400", "pause=1e400", "-e pause: not a duration"),
    ("duration 31 days", "pause=744h", "-e pause: duration '744h' is longer than the bound of "
                                       "30 days"),
    ("int arabic digits", "count=١٢٣", "-e count: '١٢٣' is not an integer"),
    ("int underscores", "count=1_000", "-e count: '1_000' is not an integer"),
    ("int spaces", "count= 12", "is not an integer"),
    ("int 400 digits", f"count={BIG}", "within 64 bits"),
    ("string 100 KB", "text=" + "x" * 100_000, "-e text: a value of 100000 characters"),
]


@pytest.mark.parametrize("assignment,fragment", [c[1:] for c in EXTRA_VALUES],
                         ids=[c[0] for c in EXTRA_VALUES])
def test_a_bad_extra_value_is_refused_before_a_run_starts(tmp_path, home, assignment,
                                                          fragment):
    path = playbook(tmp_path, waited='"{{ params.pause }}"')
    result = otpatch_child(home, "run", "--dry-run", "-e", assignment, str(path), timeout=30)
    assert_one_clear_line(result, fragment)
    assert runs_in(home) == [], "a run was started for a value refused"


def test_a_templated_wait_past_the_bound_fails_the_step_and_ends_the_run(tmp_path, home):
    path = playbook(tmp_path, waited='"{{ params.text }}"')
    result = otpatch_child(home, "run", "--dry-run", "-e", "text=744h", str(path), timeout=30)
    assert_one_clear_line(result, "core.wait", code=1)
    status = otpatch_child(home, "status", timeout=30)
    assert "aborted" in status.stdout or "rolled_back" in status.stdout, status.stdout


# -- integers --------------------------------------------------------------------------------

YAML_INTEGERS = [
    ("underscores", "1_000", "'1_000' is not an integer"),
    ("arabic digits", "١٢٣", "max_visits"),  # YAML text, so the schema's integer refuses it
    ("400 digits", BIG, "within 64 bits"),
    ("2 ** 64", str(2 ** 64), "within 64 bits"),
]


@pytest.mark.parametrize("value,fragment", [c[1:] for c in YAML_INTEGERS],
                         ids=[c[0] for c in YAML_INTEGERS])
def test_an_integer_that_is_not_plain_ascii_within_64_bits_is_refused(tmp_path, home, value,
                                                                      fragment):
    path = playbook(tmp_path, expect=f"max_visits: {value}")
    assert_one_clear_line(otpatch_child(home, "validate", str(path), timeout=30), fragment)


# -- dates -----------------------------------------------------------------------------------

RISK_DATES = [
    ("published past datetime", ["--published", "9999-12-31"],
     "--published 9999-12-31 is outside the years 1970 to 9000"),
    ("published year 1", ["--published", "0001-01-01"], "outside the years"),
    ("next cycle not a leap year", ["--published", "2026-11-20", "--next-cycle", "2026-02-29"],
     "--next-cycle '2026-02-29' is not a real date: 2026 is not a leap year"),
    ("no day 31", ["--published", "2026-04-31"], "not a real date: month 4 has no day 31"),
    ("no month 13", ["--published", "2026-13-01"], "not a real date: there is no month 13"),
]


@pytest.mark.parametrize("args,fragment", [c[1:] for c in RISK_DATES],
                         ids=[c[0] for c in RISK_DATES])
def test_a_date_that_cannot_be_a_deadline_is_refused(home, args, fragment):
    assert_one_clear_line(otpatch_child(home, "risk", "score", VECTOR, *args, timeout=30),
                          fragment)


def test_a_leap_day_of_a_leap_year_is_a_date(home):
    result = otpatch_child(home, "risk", "score", VECTOR, "--published", "2028-02-29",
                           "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["due"]["deadline"].startswith("2028-03-03")


# -- CSAF files ------------------------------------------------------------------------------

def _deep_branches(depth: int) -> str:
    document = json.loads(CSAF.read_text())
    branch = {"category": "product_name", "name": "deep",
              "product": {"product_id": "DEEP-1", "name": "deep"}}
    for level in range(depth):
        branch = {"category": "product_family", "name": f"family {level}", "branches": [branch]}
    document["product_tree"]["branches"].append(branch)
    return json.dumps(document)


def _with(extra: str) -> str:
    return CSAF.read_text().rstrip().removesuffix("}") + f', "x": {extra}}}'


def _released(when: str) -> str:
    document = json.loads(CSAF.read_text())
    document["document"]["tracking"]["initial_release_date"] = when
    document["document"]["tracking"]["current_release_date"] = when
    return json.dumps(document)


CSAF_FILES = [
    ("nested 1,500 deep", lambda: _with("[" * 1500 + "]" * 1500),
     "JSON nested deeper than 100 levels"),
    ("branches 200 deep", lambda: _deep_branches(200), "JSON nested deeper than 100 levels"),
    ("branches 40 deep", lambda: _deep_branches(40),
     "product-tree branches nested deeper than 30 levels"),
    ("a 5,000-digit number", lambda: _with("9" * 5000),
     "a number of 5000 digits: more than the bound of 20"),
    ("released 9999-12-31", lambda: _released("9999-12-31T00:00:00Z"),
     "the release date 9999-12-31 is outside the years 1970 to 9000"),
]


@pytest.mark.parametrize("make,fragment", [c[1:] for c in CSAF_FILES],
                         ids=[c[0] for c in CSAF_FILES])
def test_a_csaf_file_past_a_bound_is_skipped_with_why(tmp_path, home, make, fragment):
    path = tmp_path / "advisory.json"
    path.write_text(make())
    result = otpatch_child(home, "advisories", "match", "-i", str(PLANT), str(path), timeout=60)
    # a file that cannot be used is skipped, named, and the others matched (exit 0)
    assert_one_clear_line(result, f"skipped: {path}", fragment, code=0)


# -- templates -------------------------------------------------------------------------------

TEMPLATES = [
    ("a gigabyte folded while compiling", "{{ 'a' * 10**9 }}", "template too large"),
    ("a list folded while compiling", "{{ [0] * 10**8 }}", "template too large"),
    ("a huge integer", "{{ 7 ** 1000000 }}", "integer of more than 4096 bits"),
    ("class", "{{ ''.__class__ }}", "leaves the sandbox: attribute '__class__'"),
    ("mro", "{{ x.mro() }}", "leaves the sandbox: attribute 'mro'"),
    ("globals by item", "{{ x['__globals__'] }}", "attribute '__globals__'"),
    ("function code", "{{ x.__code__ }}", "leaves the sandbox"),
]


@pytest.mark.parametrize("template,fragment", [c[1:] for c in TEMPLATES],
                         ids=[c[0] for c in TEMPLATES])
def test_a_template_past_the_sandbox_or_its_bound_is_refused_at_validate(tmp_path, home,
                                                                         template, fragment):
    path = tmp_path / "template.yml"
    path.write_text(WAIT.replace("EXPECT", "expect_duration: 1m").replace("BUDGET", "")
                    .replace("WAITED", "1s}\n      - core.set_fact: {x: " + json.dumps(template)))
    result = otpatch_child(home, "validate", str(path), timeout=20)
    assert_one_clear_line(result, "[template-syntax]", fragment)


RENDERED = [
    # (id, template, -e text=...): each would render to hundreds of megabytes at run time
    ("a loop", "{% for i in range(100000) %}{{ params.text }}{% endfor %}", "y" * 4000),
    ("an operator", "{{ params.text * 100000 }}", "y" * 4000),
]


@pytest.mark.parametrize("template,text", [c[1:] for c in RENDERED],
                         ids=[c[0] for c in RENDERED])
def test_a_value_rendered_past_the_bound_fails_its_step_and_stays_out_of_the_journal(
        tmp_path, home, template, text):
    path = tmp_path / "render.yml"
    path.write_text(WAIT.replace("EXPECT", "expect_duration: 1m").replace("BUDGET", "")
                    .replace("WAITED", "1s}\n      - core.set_fact: {x: " + json.dumps(template)))
    result = otpatch_child(home, "run", "--dry-run", "-e", f"text={text}", str(path),
                           timeout=60)
    assert_one_clear_line(result, "core.set_fact: FAILED", "bound of 1,048,576", code=1)
    assert (home / "journal.sqlite").stat().st_size < 2 * 1024 * 1024


@pytest.mark.parametrize("text", [
    "{{ facts.x | center(10**9) }}", "{{ facts.x | indent(10**9) }}",
    "{{ '%*s' % (10**9, facts.x) }}", "{{ facts.x | format(10**9) if false else facts.x | "
    "truncate(10**9) }}"], ids=["center", "indent", "percent width", "truncate"])
def test_a_padding_width_past_the_bound_is_refused_before_it_allocates(text):
    """Filters and `%` that pad to a width allocate it first: the width itself is bounded."""
    from otpatch.engine import templating

    with pytest.raises(templating.TemplateProblem, match="past the template bound"):
        templating.render(text, {"facts": {"x": "a"}})
    assert templating.render("{{ facts.x | center(5) }}", {"facts": {"x": "a"}}) == "  a  "
