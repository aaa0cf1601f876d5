"""CVSS scores: every published test vector reproduced exactly, controls as modified metrics,
and bad vectors refused with one clear line."""
from __future__ import annotations

import ast
import csv

import pytest

from otpatch.modules.contract.errors import InputError
from otpatch.modules.risk.controls import AppliesTo, Control
from otpatch.modules.risk.scoring import RiskError, score, v2_scores

from conftest import SHARED

CVSS_DATA = SHARED / "data" / "cvss"
V3_FILES = ["redhat_vectors_simple3.txt", "redhat_vectors_simple31.txt",
            "redhat_vectors_cvsslib3.txt", "redhat_vectors_calculator3.txt"]
V2_FILES = ["redhat_vectors_simple2.txt", "redhat_vectors_cvsslib2.txt",
            "redhat_vectors_calculator2.txt"]


def redhat_vectors(name: str) -> list[tuple[str, tuple]]:
    """`<vector> - (<base>, <temporal>, <environmental>)`, one a line (SOURCES.md)."""
    out = []
    for line in (CVSS_DATA / name).read_text().splitlines():
        if line.strip():
            vector, expected = line.split(" - ")
            out.append((vector, ast.literal_eval(expected)))
    return out


def cisa_rows() -> list[dict]:
    with open(CVSS_DATA / "cisa_csaf_vectors_with_temporal_env.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def scores(vector: str) -> tuple[float, float, float]:
    s = score(vector)
    return s.base, s.temporal, s.environmental


def control(cid: str, **metrics: str) -> Control:
    return Control(cid, f"{cid} (test)", metrics, (), AppliesTo(zones=("level2",)))


@pytest.mark.parametrize("name", V3_FILES)
def test_every_redhat_v3_vector_is_reproduced_exactly(name):
    vectors = redhat_vectors(name)
    wrong = [(v, want, got) for v, want in vectors if (got := scores(v)) != want]
    assert len(vectors) == len((CVSS_DATA / name).read_text().splitlines())
    assert wrong == []


@pytest.mark.parametrize("name", V2_FILES)
def test_every_redhat_v2_vector_is_reproduced_exactly(name):
    vectors = redhat_vectors(name)
    wrong = [(v, want, got) for v, want in vectors if (got := v2_scores(v)) != want]
    assert vectors and wrong == []


@pytest.mark.parametrize("row", cisa_rows(), ids=lambda r: f"{r['cve']}-{r['vectorString']}")
def test_cisa_advisory_scores_are_reproduced(row):
    s = score(row["vectorString"])
    assert (s.base, s.temporal, s.environmental) == (
        float(row["baseScore"]), float(row["temporalScore"]), float(row["environmentalScore"]))
    assert s.version == row["vectorString"][5:8]


def test_all_48_cisa_tuples_are_read():
    assert len(cisa_rows()) == 48


EFFECTIVE = [  # id, vector, controls, base, effective, severity, basis, effective vector
    ("no controls: effective is the base", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
     [], 9.8, 9.8, "Critical", "base", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
    ("3.1 scope changed quirk does not move the effective score",
     "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H", [], 9.0, 9.0, "Critical", "base",
     "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H"),
    ("temporal metrics: effective is the temporal score",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C", [], 9.8, 8.8, "High",
     "temporal", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C"),
    ("mguard blocks modbus: 9.8 with MAV:A is 8.8",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", [{"MAV": "A"}], 9.8, 8.8, "High",
     "environmental", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/MAV:A"),
    ("modbus denial of service 7.5 with MAV:A is 6.5",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", [{"MAV": "A"}], 7.5, 6.5, "Medium",
     "environmental", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H/MAV:A"),
    ("cvss 3.0 vector with MAV:A", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
     [{"MAV": "A"}], 9.8, 8.8, "High", "environmental",
     "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/MAV:A"),
    ("scope changed 10.0 with MAV:A is 9.7", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
     [{"MAV": "A"}], 10.0, 9.7, "Critical", "environmental",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H/MAV:A"),
    ("two controls: MAV:A and MPR:H", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
     [{"MAV": "A"}, {"MPR": "H"}], 9.8, 6.8, "Medium", "environmental",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/MAV:A/MPR:H"),
    ("temporal metrics kept under a control",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C", [{"MAV": "A"}], 9.8, 7.9,
     "High", "environmental",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C/MAV:A"),
    ("a control replaces the advisory's own MAV (ICSA-25-051-02)",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:H/A:H/E:P/RL:O/RC:C/CR:L/IR:M/AR:M/MAV:A/MAC:L/"
     "MPR:N/MUI:N/MS:U/MC:L/MI:H/MA:H", [{"MAV": "L"}], 9.4, 7.1, "High", "environmental",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:H/A:H/E:P/RL:O/RC:C/CR:L/IR:M/AR:M/MAV:L/MAC:L/"
     "MPR:N/MUI:N/MS:U/MC:L/MI:H/MA:H"),
    ("security requirements low", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
     [{"CR": "L", "IR": "L", "AR": "L"}], 9.8, 8.0, "High", "environmental",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/CR:L/IR:L/AR:L"),
    ("X only: nothing defined, effective stays the base",
     "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", [{"MAV": "X"}], 9.8, 9.8, "Critical",
     "base", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/MAV:X"),
]


@pytest.mark.parametrize("vector,metrics,base,effective,severity,basis,effective_vector",
                         [c[1:] for c in EFFECTIVE], ids=[c[0] for c in EFFECTIVE])
def test_controls_lower_the_effective_score(vector, metrics, base, effective, severity, basis,
                                            effective_vector):
    cited = [control(f"c{i}", **m) for i, m in enumerate(metrics)]
    s = score(vector, cited)
    assert (s.base, s.effective, s.severity) == (base, effective, severity)
    assert (s.effective_basis, s.effective_vector) == (basis, effective_vector)
    assert s.vector == vector and s.controls == tuple(c.id for c in cited)


def test_the_same_control_cited_twice_counts_once():
    c = control("mguard-blocks-modbus", MAV="A")
    s = score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", [c, c])
    assert s.controls == ("mguard-blocks-modbus",) and s.effective == 8.8


def test_score_to_dict_is_plain_json_data():
    s = score("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", [control("a", MAV="A")])
    assert s.to_dict() == {
        "version": "3.0", "vector": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "effective_vector": "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/MAV:A",
        "base": 9.8, "temporal": 9.8, "environmental": 9.8, "effective": 8.8,
        "base_severity": "Critical", "severity": "High", "controls": ["a"],
        "effective_basis": "environmental"}


BAD_VECTORS = [  # id, vector, what the line says
    ("cvss v2", "AV:N/AC:L/Au:N/C:P/I:P/A:P", "does not start with CVSS:3.0/ or CVSS:3.1/"),
    ("cvss 4.0", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
     "version '4.0' is not supported"),
    ("lowercase prefix", "cvss:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "does not start with"),
    ("bad value", "CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
     "AV cannot be 'Q' (allowed: N, A, L, P)"),
    ("unknown metric", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:1",
     "unknown metric 'ZZ'"),
    ("missing metric", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
     "base metric(s) A missing"),
    ("metric twice", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:L",
     "metric A is given twice"),
    ("trailing slash", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/", "empty field"),
    ("no colon", "CVSS:3.1/AVN/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "'AVN' is not METRIC:VALUE"),
    ("empty", "", "does not start with"),
]


@pytest.mark.parametrize("vector,fragment", [c[1:] for c in BAD_VECTORS],
                         ids=[c[0] for c in BAD_VECTORS])
def test_bad_vectors_are_one_clear_line_naming_the_vector(vector, fragment):
    with pytest.raises(RiskError) as e:
        score(vector)
    message = str(e.value)
    assert isinstance(e.value, InputError) and e.value.exit_code == 2
    assert fragment in message and repr(vector) in message and "\n" not in message


BAD_CONTROLS = [  # id, controls' metrics, what the line says
    ("base metric in a control", [{"AV": "A"}], "AV:A is not a CVSS v3 environmental"),
    ("bad value", [{"MAV": "Q"}], "MAV:Q is not a CVSS v3 environmental"),
    ("two controls disagree", [{"MAV": "A"}, {"MAV": "L"}],
     "controls 'c0' and 'c1' set MAV differently (A vs L): cite one of them"),
]


@pytest.mark.parametrize("metrics,fragment", [c[1:] for c in BAD_CONTROLS],
                         ids=[c[0] for c in BAD_CONTROLS])
def test_controls_that_cannot_apply_are_refused(metrics, fragment):
    cited = [control(f"c{i}", **m) for i, m in enumerate(metrics)]
    with pytest.raises(RiskError, match=None) as e:
        score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", cited)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_surrounding_whitespace_is_ignored():
    assert score(" CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\n").base == 9.8
