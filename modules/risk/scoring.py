"""CVSS v3.0 and v3.1 scores (the `cvss` package), with compensating controls applied as
environmental metrics, and the effective score the due date is taken from.

What each number of a `Score` is:

- `base`, `temporal`, `environmental`: the three scores of the vector *as given*, exactly as
  the `cvss` package (and FIRST's calculator, and CISA's advisories) compute them. Without
  temporal metrics the temporal score equals the base score. The environmental score is the
  formula's value even when the vector sets no environmental metric, so for CVSS 3.1 with
  S:C it can differ from the base (9.9 -> 10.0, 9.0 -> 9.1: v3.1 changed the modified-impact
  formula only; RedHatProductSecurity/cvss issue 38, and CISA's own figures).
- `effective`: the score of `effective_vector` (the vector with the controls' modified
  metrics written in) that CVSS says applies to what is known: its environmental score when
  any environmental metric is defined (not X) in the vector or by a control; otherwise its
  temporal score when a temporal metric is defined; otherwise its base score. So with no
  controls and no temporal or environmental metrics, effective == base, always, and the 3.1
  Scope-Changed quirk above never moves a due date on its own. `effective_basis` says which
  of the three was taken.

CVSS 3.0 and 3.1 differ in scoring only in the modified impact for Scope Changed; the
`cvss` package's CVSS3 class picks the formula from the CVSS:3.0/ or CVSS:3.1/ prefix.

A control's metric replaces the same metric in the vector (an advisory's environmental
metrics describe someone else's site; the controls describe this one). Two controls that
set one metric to different values are refused: cite one of them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Sequence

from cvss import CVSS2, CVSS3
from cvss.constants3 import (ENVIRONMENTAL_METRICS, METRICS_ABBREVIATIONS, METRICS_MANDATORY,
                             METRICS_VALUE_NAMES, TEMPORAL_METRICS)
from cvss.exceptions import CVSS2Error, CVSS3Error

from otpatch.modules.contract.errors import InputError

if TYPE_CHECKING:
    from otpatch.modules.risk.controls import Control

BASIS = ("base", "temporal", "environmental")  # index into the cvss package's scores()
VERSIONS = {"CVSS:3.0/": "3.0", "CVSS:3.1/": "3.1"}


class RiskError(InputError):
    """A vector, control, date or threshold input that cannot be scored; exit 2."""


@dataclass(frozen=True)
class Score:
    """The scores of one CVSS v3.x vector, before and after this site's controls."""

    version: str  # "3.0" | "3.1"
    vector: str  # as given (surrounding whitespace removed)
    effective_vector: str  # the vector with the controls' modified metrics applied
    base: float
    temporal: float
    environmental: float
    effective: float  # see the module docstring
    base_severity: str  # None | Low | Medium | High | Critical
    severity: str  # of effective
    controls: tuple[str, ...]  # ids of the controls applied, in the order cited
    effective_basis: str = "base"  # base | temporal | environmental: which score is effective

    @property
    def has_temporal(self) -> bool:
        """Whether the vector defines a temporal metric (E, RL, RC other than X)."""
        metrics = _parse(self.vector).original_metrics
        return any(metrics.get(m, "X") != "X" for m in TEMPORAL_METRICS)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["controls"] = list(self.controls)
        return out


def score(vector: str, controls: Sequence[Control] = ()) -> Score:
    """Score a CVSS:3.0/ or CVSS:3.1/ vector, applying each control's modified metrics.

    A malformed vector, a control metric that is not a CVSS v3 environmental metric value,
    or two controls disagreeing on a metric raise RiskError with one line naming the vector
    and what is wrong."""
    given = _parse(vector)
    cited = _unique(controls)
    metrics = _control_metrics(vector, cited)
    effective = _parse(_with_metrics(given, metrics)) if metrics else given
    basis = _basis(effective.original_metrics)
    index = BASIS.index(basis)
    base, temporal, environmental = given.scores()
    return Score(version=VERSIONS[given.vector[:9]], vector=given.vector,
                 effective_vector=effective.vector, base=base, temporal=temporal,
                 environmental=environmental, effective=effective.scores()[index],
                 base_severity=given.severities()[0], severity=effective.severities()[index],
                 controls=tuple(c.id for c in cited), effective_basis=basis)


def same_base(vector_a: str, vector_b: str) -> bool:
    """Whether two valid vectors share version, base and temporal metrics (differing at most
    in environmental ones): an effective vector must describe the same vulnerability."""
    a, b = _parse(vector_a), _parse(vector_b)
    keys = METRICS_MANDATORY + TEMPORAL_METRICS
    return (a.minor_version == b.minor_version
            and all(a.metrics.get(k, "X") == b.metrics.get(k, "X") for k in keys))


def environmental_values() -> dict[str, tuple[str, ...]]:
    """Each CVSS v3 environmental metric and its allowed values (X: not defined)."""
    return {m: tuple(METRICS_VALUE_NAMES[m]) for m in ENVIRONMENTAL_METRICS}


def _parse(vector: Any) -> Any:
    if not isinstance(vector, str):
        raise RiskError(f"CVSS vector {vector!r}: expected text like "
                        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")
    text = vector.strip()
    try:
        return CVSS3(text)
    except CVSS3Error as e:
        raise RiskError(f"CVSS vector {text!r}: {_what_is_wrong(text, e)}") from None


def _what_is_wrong(text: str, error: Exception) -> str:
    """A clearer reason than the package's for the usual mistakes."""
    if not text.startswith(tuple(VERSIONS)):
        head = text.split("/", 1)[0]
        if head.startswith("CVSS:"):
            return f"version {head[5:]!r} is not supported: CVSS:3.0/ or CVSS:3.1/ only"
        return ("does not start with CVSS:3.0/ or CVSS:3.1/ (CVSS v2 and bare vectors are "
                "not scored here)")
    seen: set[str] = set()
    for field in text.split("/")[1:]:
        metric, colon, value = field.partition(":")
        if not field:
            return "empty field (a // or a trailing /)"
        if not colon:
            return f"field {field!r} is not METRIC:VALUE"
        if metric not in METRICS_VALUE_NAMES:
            return f"unknown metric {metric!r} in {field!r}"
        if value not in METRICS_VALUE_NAMES[metric]:
            allowed = ", ".join(METRICS_VALUE_NAMES[metric])
            return f"{metric} cannot be {value!r} (allowed: {allowed})"
        if metric in seen:
            return f"metric {metric} is given twice"
        seen.add(metric)
    missing = [m for m in METRICS_MANDATORY if m not in seen]
    if missing:
        return f"base metric(s) {', '.join(missing)} missing (a vector needs " \
               f"{', '.join(METRICS_MANDATORY)})"
    return str(error).replace('"', "'")


def _unique(controls: Sequence[Control]) -> list[Control]:
    seen: dict[str, Control] = {}
    for control in controls:
        seen.setdefault(control.id, control)
    return list(seen.values())


def _control_metrics(vector: str, controls: list[Control]) -> dict[str, str]:
    """The modified metrics the controls justify, checked; conflicting controls refused."""
    allowed = environmental_values()
    metrics: dict[str, str] = {}
    source: dict[str, str] = {}
    for control in controls:
        for metric, value in control.metrics.items():
            if value not in allowed.get(metric, ()):
                raise RiskError(f"control {control.id!r}: {metric}:{value} is not a CVSS v3 "
                                "environmental metric value (allowed: " + "; ".join(
                                    f"{m} {'/'.join(v)}" for m, v in allowed.items()) + ")")
            if metric in metrics and metrics[metric] != value:
                raise RiskError(f"CVSS vector {vector.strip()!r}: controls {source[metric]!r} "
                                f"and {control.id!r} set {metric} differently "
                                f"({metrics[metric]} vs {value}): cite one of them")
            metrics[metric], source[metric] = value, control.id
    return metrics


def _with_metrics(parsed: Any, metrics: dict[str, str]) -> str:
    """The vector with these metrics replacing or following its own, in CVSS order."""
    fields = dict(parsed.original_metrics)
    fields.update((m, metrics[m]) for m in METRICS_ABBREVIATIONS if m in metrics)
    prefix = parsed.vector[:9]
    return prefix + "/".join(f"{m}:{v}" for m, v in fields.items())


def _basis(original_metrics: dict[str, str]) -> str:
    if any(original_metrics.get(m, "X") != "X" for m in ENVIRONMENTAL_METRICS):
        return "environmental"
    if any(original_metrics.get(m, "X") != "X" for m in TEMPORAL_METRICS):
        return "temporal"
    return "base"





def v2_scores(vector: str) -> tuple[float, float | None, float | None]:
    """CVSS v2 base, temporal and environmental scores (None where the vector sets none of
    that group's metrics), for reference only: older advisories carry nothing newer. Controls
    and due dates work on v3.x scores only."""
    text = vector.strip() if isinstance(vector, str) else vector
    try:
        return CVSS2(text).scores()
    except (CVSS2Error, AttributeError, TypeError) as e:
        raise RiskError(f"CVSS v2 vector {text!r}: {str(e).replace(chr(34), chr(39))}") from None
