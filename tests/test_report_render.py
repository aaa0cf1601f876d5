"""The change-control record rendered as Markdown and as one HTML file (engine/report/):
what a reader must find in it, hostile text kept inert, the same bytes every time, nothing
fetched from outside, and a timeline SVG that parses and shows rollbacks in red."""
from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from otpatch.engine.report import html as H
from otpatch.engine.report import blocks as B
from otpatch.engine.report import markdown as M
from otpatch.engine.report.timeline import COLOURS, MIN_BAR, timeline_svg
from otpatch.modules.contract.durations import parse_duration

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "report"
SAMPLES = ("sample-rolled-back", "sample-change")
HOSTILE = 'x <script>alert("1 & 2")</script> | y\nz\r\n\'q\' `tick` *bold* [link](#)'
RED = COLOURS["rollback"]


def sample(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def rendered(doc: dict) -> dict[str, str]:
    return {"md": M.markdown(doc), "html": H.html(doc)}


def shown(fmt: str, text: str) -> str:
    """`text` as each format writes it (escaped)."""
    return M.md_text(text) if fmt == "md" else H.esc(text)


def svgs(page: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", page, re.S)]


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_is_a_report_document(name):
    schema = json.loads((ROOT / "schemas" / "report.schema.json").read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in Draft202012Validator(schema).iter_errors(
        sample(name))]
    assert errors == []


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("name", SAMPLES)
def test_every_device_outcome_and_record_is_shown(name, fmt):
    doc = sample(name)
    text = rendered(doc)[fmt]
    for device in doc["devices"]:
        assert shown(fmt, device["statement"]) in text
        assert device["host"] in text
        assert B.OUTCOME_WORDS[device["outcome"]] in text
    for run in doc["runs"]:
        assert run["journal"]["record"] in text
        assert run["playbook"]["hash"] in text
        assert all(f["sha256"] in text for f in run["firmware"])


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("name, title", [
    ("sample-rolled-back", "Run r-20261202T045324-751166: rolled back"),
    ("sample-change", "Change r-20261205T220004-b71e08: completed"),
])
def test_title_names_the_run_or_change_and_its_status(name, title, fmt):
    text = rendered(sample(name))[fmt]
    if fmt == "md":
        assert text.splitlines()[0] == "# " + M.md_text(title)
    else:
        assert f"<title>{title}</title>" in text and f"<h1>{title}</h1>" in text


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_outcome_per_device_comes_before_the_details(fmt):
    text = rendered(sample("sample-change"))[fmt]
    assert text.index("Outcome per device") < text.index("Run r-20261203T081502-3f9c21 (")


@pytest.mark.parametrize("fmt, expected", [
    ("md", ["simulated: a dry run's clock", "**FAILED**", "17m15s simulated", "2m15s"]),
    ("html", ["simulated: a dry run&#x27;s clock", "<strong>FAILED</strong>", "run clock, "
              "simulated time", "2m15s"]),
])
def test_times_are_human_and_say_which_clock(fmt, expected):
    text = rendered(sample("sample-rolled-back"))[fmt]
    assert [e for e in expected if e not in text] == []


@pytest.mark.parametrize("fmt, expected", [
    ("md", ["Alice Chen", "Bernd Maier", "`process_owner`", "`ot_security_officer`",
            "lab_evidence (lab) in r-20261203T081502-3f9c21, entry #412"]),
    ("html", ["Alice Chen", "Bernd Maier", "<code>process_owner</code>",
              "lab_evidence (lab) in r-20261203T081502-3f9c21, entry #412"]),
])
def test_approvals_show_who_signed_what(fmt, expected):
    text = rendered(sample("sample-change"))[fmt]
    assert [e for e in expected if e not in text] == []


# Where a person or a device puts text into the record: each field gets HOSTILE.
HOSTILE_FIELDS = [
    ("statement", "sample-rolled-back", ("devices", 0, "statement")),
    ("step message", "sample-rolled-back", ("runs", 0, "states", 5, "steps", 1, "msg")),
    ("visit reason", "sample-rolled-back", ("runs", 0, "states", 5, "reason")),
    ("state name", "sample-rolled-back", ("runs", 0, "states", 2, "state")),
    ("host", "sample-rolled-back", ("devices", 0, "host")),
    ("observed value", "sample-rolled-back", ("devices", 0, "as_found", "vlans", "value")),
    ("deviation", "sample-rolled-back", ("runs", 0, "deviations", 0, "detail")),
    ("approval reason", "sample-change", ("runs", 1, "approvals", 0, "reason")),
    ("approver", "sample-change", ("runs", 1, "approvals", 1, "person")),
    ("attestation", "sample-change", ("runs", 1, "attestations", 0, "statement")),
    ("journal problem", "sample-change", ("runs", 0, "journal", "problems")),
]


each_hostile_field = pytest.mark.parametrize("name, path", [f[1:] for f in HOSTILE_FIELDS],
                                             ids=[f[0] for f in HOSTILE_FIELDS])


def with_hostile(name: str, path: tuple) -> dict:
    doc = sample(name)
    *parents, last = path
    target = doc
    for key in parents:
        target = target[key]
    target[last] = [HOSTILE] if last == "problems" else HOSTILE
    return doc


@each_hostile_field
def test_hostile_text_is_escaped_in_markdown(name, path):
    text = M.markdown(with_hostile(name, path))
    assert "<script" not in text.lower()
    assert "&lt;script&gt;" in text
    for table in re.findall(r"(?:^\|.*$\n?)+", text, re.M):
        lines = table.splitlines()
        cells = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
        assert len(cells) == 1 and all(line.endswith((" |", "---|")) for line in lines), \
            f"a cell broke its table:\n{table}"


@each_hostile_field
def test_hostile_text_is_escaped_in_html(name, path):
    page = H.html(with_hostile(name, path))
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;1 &amp; 2&quot;)&lt;/script&gt;" in page
    assert svgs(page)  # still well-formed XML


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("name", SAMPLES)
def test_the_same_document_gives_the_same_bytes(name, fmt):
    doc = sample(name)
    shuffled = copy.deepcopy(doc)
    for run in shuffled["runs"]:  # objects whose key order no one gives
        for key in ("params", "budgets", "targets"):
            run[key] = dict(reversed(list(run[key].items())))
        for approval in run["approvals"]:
            approval["signed_over"] = dict(reversed(list(approval["signed_over"].items())))
    first = rendered(doc)[fmt]
    assert rendered(copy.deepcopy(doc))[fmt] == first
    assert rendered(shuffled)[fmt] == first


@pytest.mark.parametrize("name", SAMPLES)
def test_html_fetches_nothing(name):
    page = H.html(sample(name))
    for outside in ("http://", "https://", "src=", "<link", "@import", "<script", "<img",
                    "<iframe", "<object", "<embed", "href="):
        assert outside not in page.lower(), outside
    assert [u for u in re.findall(r"url\(\s*([^)]*)\)", page)
            if not u.startswith(("#", "data:"))] == []  # url(#hatch-...): the SVG's own pattern
    assert "@page" in page and "@media print" in page


@pytest.mark.parametrize("name", SAMPLES)
def test_timeline_is_well_formed_with_a_bar_per_visit(name):
    for run in sample(name)["runs"]:
        svg = ET.fromstring(timeline_svg(run))
        bars = [r for r in svg.iter("rect") if "bar" in r.get("class", "").split()]
        assert len(bars) == len(run["states"])
        assert min(float(b.get("width")) for b in bars) >= MIN_BAR


def bars_of(run: dict, kind: str) -> list[ET.Element]:
    svg = ET.fromstring(timeline_svg(run))
    return [r for r in svg.iter("rect") if kind in r.get("class", "").split()]


def test_rollback_bars_are_red_and_the_failed_visit_is_outlined():
    run = sample("sample-rolled-back")["runs"][0]
    rollbacks = bars_of(run, "rollback")
    assert len(rollbacks) == sum(v["rollback"] for v in run["states"]) == 2
    assert {b.get("fill") for b in rollbacks} == {RED}
    failed = bars_of(run, "failed")
    assert [b.find("title").text.split(":")[0] for b in failed] == ["lab_verify"]
    assert failed[0].get("stroke") == COLOURS["failed"]
    assert {b.get("fill") for b in bars_of(run, "done")} == {COLOURS["done"]}


def test_skipped_visits_are_hatched_grey():
    run = sample("sample-change")["runs"][1]
    skipped = bars_of(run, "skipped")
    assert len(skipped) == sum(v["skipped"] for v in run["states"]) == 10
    assert {b.get("fill") for b in skipped} == {f"url(#hatch-{run['run_id']})"}


def bar_width(run: dict, state: str) -> float:
    svg = ET.fromstring(timeline_svg(run))
    return next(float(r.get("width")) for r in svg.iter("rect")
                if r.find("title") is not None and r.find("title").text.startswith(state + ":"))


def test_a_four_hour_soak_is_drawn_cut_and_the_rest_stays_readable():
    run = sample("sample-change")["runs"][0]
    svg = timeline_svg(run)
    assert 'class="break"' in svg and "axis broken in lab_soak" in svg
    soak, transfer, reboot = (bar_width(run, s) for s in ("lab_soak", "lab_transfer", "lab_reboot"))
    assert transfer < soak < 3 * transfer  # 4 h drawn longer than 8 min, not 30 times longer
    assert reboot >= 15  # 54 s of a 4 h 19 min run still shows
    ticks = [t.text for t in ET.fromstring(svg).iter("text") if t.get("text-anchor") == "middle"]
    assert ticks[0] == "0s" and all(parse_duration(t) >= 0 for t in ticks)
    assert any(parse_duration(t) > 4 * 3600 for t in ticks)  # true run-clock times after the cut


def test_a_short_run_is_not_cut():
    svg = timeline_svg(sample("sample-rolled-back")["runs"][0])
    assert 'class="break"' not in svg


def test_markdown_has_no_timeline_but_every_visit():
    run = sample("sample-rolled-back")["runs"][0]
    text = M.markdown(sample("sample-rolled-back"))
    assert "<svg" not in text
    assert all(f"| `{v['state']}` |" in text for v in run["states"])


def interrupted() -> dict:
    """The rolled-back sample cut short: the run stood in lab_verify when it was read."""
    doc = sample("sample-rolled-back")
    run = doc["runs"][0]
    run["states"] = run["states"][:6]
    run["states"][5].update(left_at=None, duration=None, left_by=None, reason=None)
    run["states"][5]["steps"] = run["states"][5]["steps"][:1]
    run.update(status="interrupted", state="lab_verify", ended_at=None, deviations=[],
               message="interrupted in lab_verify")
    run["journal"].update(record=None, checkpoint=None, verified=False,
                          problems=["entry #172: hash does not match its content"])
    return doc


@pytest.mark.parametrize("fmt, expected", [
    ("md", ["**interrupted** in lab_verify", "Ended | not ended", "none: the run has not ended",
            "none covers the record yet", "| Verified | **NO** |",
            "entry #172: hash does not match its content"]),
    ("html", ["<strong>interrupted</strong> in lab_verify", "still here",
              "none: the run has not ended", "<strong>NO</strong>",
              "entry #172: hash does not match its content"]),
])
def test_a_run_not_ended_and_not_verified_says_so(fmt, expected):
    text = rendered(interrupted())[fmt]
    assert [e for e in expected if e not in text] == []
