"""The risk register (IEC 62443-2-1): per asset and advisory, the scores before and after the
compensating controls, the decision (patch, mitigate, defer) and why, the due date, the owner.

A YAML document validated by schemas/risk-register.schema.json, then checked against
itself: each entry's scores are recomputed from its vectors, its due category from its
effective score, and its deadline must not be later than its category allows. Every problem
is reported at once, each as file:line:col (PlaybookError). `write_register` produces a
document that passes all of this; `register_entry` builds an entry from a Score and a Due.

A decision has a lifecycle (decisions.py judges it): the advisory revision it was taken on,
a review date, for mitigate a dated plan of steps with their controls, and for defer or
mitigate the acceptance: who accepted the risk, in which role, when, with their Ed25519 key
and signature (written by `otpatch risk accept`; accept.py checks it). An entry
without an acceptance loads; it is judged "not accepted".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Mapping

from otpatch.modules.contract.errors import PlaybookError, Problem
from otpatch.modules.risk.due import Due, category, parse_when, window
from otpatch.modules.risk.scoring import RiskError, Score, same_base, score

RULES = {
    "register-vector": "a vector or effective vector that is not a valid CVSS v3.x vector, or "
                       "an effective vector that changes more than environmental metrics",
    "register-score": "a recorded score or severity that its vector does not give",
    "register-due": "a due category that the effective score does not give, or a deadline "
                    "later than the category allows",
    "register-time": "a date or time that is not a real ISO date or date and time",
    "register-acceptance": "an accepted decision on an advisory without the advisory revision "
                           "it was taken on, or a plan on a decision that is not mitigate",
}
HEADER = ("# IEC 62443-2-1 risk register (schemas/risk-register.schema.json), written by "
          "otpatch.\n")


class Decision(str, Enum):
    PATCH = "patch"
    MITIGATE = "mitigate"
    DEFER = "defer"


@dataclass(frozen=True)
class PlanStep:
    """One dated step of a mitigation plan and the controls it puts or keeps in place."""

    step: str
    by: datetime
    controls: tuple[str, ...] = ()
    done: datetime | None = None


@dataclass(frozen=True)
class Acceptance:
    """Who accepted the risk of a defer or mitigate decision, and their signature over the
    entry's binding (decisions.py `binding`)."""

    by: str
    role: str
    at: datetime
    key: str  # base64 Ed25519 public key
    signature: str  # base64 Ed25519 signature
    where: str = field(default="", compare=False)  # file:line:col of `accepted.by`


@dataclass(frozen=True)
class RegisterEntry:
    """One assessed vulnerability of one asset and what was decided about it."""

    asset: str
    vector: str
    effective_vector: str
    base: float
    effective: float
    severity: str  # of effective
    controls: tuple[str, ...]
    decision: Decision
    rationale: str
    due: Due
    owner: str
    advisory: str | None = None
    cves: tuple[str, ...] = ()
    published: datetime | None = None
    advisory_revision: str | None = None  # CSAF document.tracking.version decided on
    review_by: datetime | None = None
    plan: tuple[PlanStep, ...] = ()
    accepted: Acceptance | None = None
    where: str = field(default="", compare=False)  # file:line:col of the entry

    @property
    def label(self) -> str:
        """How messages name the entry: asset and advisory (or its CVEs)."""
        return f"{self.asset} {self.advisory or ', '.join(self.cves)}"


@dataclass(frozen=True)
class RiskRegister:
    entries: tuple[RegisterEntry, ...]
    site: str = ""


def register_entry(scored: Score, due: Due, *, asset: str, decision: Decision | str,
                   rationale: str, owner: str, advisory: str | None = None,
                   cves: Iterable[str] = (), published: datetime | None = None
                   ) -> RegisterEntry:
    """A register entry from a score and its due date; RiskError for what the register's
    schema would refuse (an empty asset, rationale or owner; neither advisory nor CVE)."""
    cves = tuple(cves)
    missing = [name for name, value in (("asset", asset), ("rationale", rationale),
                                        ("owner", owner)) if not value or not value.strip()]
    if missing or not (advisory or cves):
        what = ", ".join(missing) or "an advisory or a CVE"
        raise RiskError(f"risk register entry for {asset or '?'}: {what} must be given")
    if decision not in {d.value for d in Decision}:
        raise RiskError(f"risk register entry for {asset}: decision {decision!r} is not one "
                        f"of {', '.join(d.value for d in Decision)}")
    return RegisterEntry(asset=asset, vector=scored.vector,
                         effective_vector=scored.effective_vector, base=scored.base,
                         effective=scored.effective, severity=scored.severity,
                         controls=scored.controls, decision=Decision(decision),
                         rationale=rationale, due=due, owner=owner, advisory=advisory,
                         cves=cves, published=published)


def dump_register(register: RiskRegister) -> str:
    """The register as a YAML document (valid against the schema and the checks)."""
    import io

    from ruamel.yaml import YAML

    doc: dict[str, Any] = {"apiVersion": "otpatch/v1", "kind": "RiskRegister"}
    if register.site:
        doc["site"] = register.site
    doc["entries"] = [_entry_data(e) for e in register.entries]
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = _representer()
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    yaml.width = 4096  # one line per value: a register is read and diffed by people
    out = io.StringIO()
    yaml.dump(doc, out)
    return HEADER + out.getvalue()


def _representer() -> type:
    """The safe representer, quoting text that YAML 1.1 readers take for a boolean or null
    (`yes`, `off`, `~`): otpatch reads YAML 1.2, other tools may not."""
    import re

    from ruamel.yaml.representer import SafeRepresenter

    special = re.compile(r"^(?:y|n|yes|no|true|false|on|off|null|~|)$", re.IGNORECASE)

    class RegisterRepresenter(SafeRepresenter):
        def represent_str(self, data: str) -> Any:
            style = "'" if special.match(data) else None
            return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    RegisterRepresenter.add_representer(str, RegisterRepresenter.represent_str)
    return RegisterRepresenter


def write_register(path: str | Path, register: RiskRegister) -> None:
    Path(path).write_text(dump_register(register), encoding="utf-8")


def load_register(path: str | Path) -> RiskRegister:
    """The register of a YAML file; PlaybookError carrying every problem otherwise."""
    from otpatch.modules.contract.yamlsrc import read_yaml

    return _register(read_yaml(path))


def parse_register(raw: bytes, file: str) -> RiskRegister:
    """The register of YAML bytes (as if read from `file`): what a writer checks before it
    replaces the file; PlaybookError carrying every problem otherwise."""
    from otpatch.modules.contract.yamlsrc import parse_yaml

    return _register(parse_yaml(raw, file))


def _register(source: Any) -> RiskRegister:
    from otpatch.modules.contract.schemas import schema_problems

    problems = schema_problems(source, "risk-register")
    if problems:
        raise PlaybookError(problems)
    entries = []
    for i, body in enumerate(source.data["entries"]):
        entry, found = _entry(source, i, body)
        problems += found
        entries.append(entry)
    if problems:
        raise PlaybookError(problems)
    return RiskRegister(entries=tuple(entries), site=source.data.get("site", ""))


def _entry_data(e: RegisterEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"asset": e.asset}
    if e.advisory:
        data["advisory"] = e.advisory
    if e.cves:
        data["cves"] = list(e.cves)
    if e.advisory_revision:
        data["advisory_revision"] = e.advisory_revision
    data.update(vector=e.vector, base=e.base, effective_vector=e.effective_vector,
                effective=e.effective, severity=e.severity, controls=list(e.controls),
                decision=e.decision.value, rationale=e.rationale, due=e.due.to_dict(),
                owner=e.owner)
    if e.published:
        data["published"] = e.published.isoformat()
    if e.review_by:
        data["review_by"] = e.review_by.isoformat()
    if e.plan:
        data["plan"] = [_step_data(s) for s in e.plan]
    if e.accepted:
        a = e.accepted
        data["accepted"] = {"by": a.by, "role": a.role, "at": a.at.isoformat(), "key": a.key,
                            "signature": a.signature}
    return data


def _step_data(s: PlanStep) -> dict[str, Any]:
    data: dict[str, Any] = {"step": s.step, "by": s.by.isoformat()}
    if s.controls:
        data["controls"] = list(s.controls)
    if s.done:
        data["done"] = s.done.isoformat()
    return data


def _entry(source: Any, i: int, body: Mapping[str, Any]) -> tuple[Any, list[Problem]]:
    at = ("entries", i)
    times, problems = _times(source, at, body)
    problems += _score_problems(source, at, body) + _due_problems(source, at, body, times)
    problems += _lifecycle_problems(source, at, body)
    due = Due(body["due"]["category"], times.get("deadline"), body["due"]["rule"])
    entry = RegisterEntry(
        asset=body["asset"], vector=body["vector"], effective_vector=body["effective_vector"],
        base=float(body["base"]), effective=float(body["effective"]),
        severity=body["severity"], controls=tuple(body["controls"]),
        decision=Decision(body["decision"]), rationale=body["rationale"], due=due,
        owner=body["owner"], advisory=body.get("advisory"), cves=tuple(body.get("cves", ())),
        published=times.get("published"), advisory_revision=body.get("advisory_revision"),
        review_by=times.get("review_by"), where=_at(source, at),
        plan=tuple(PlanStep(s["step"], times.get(f"plan{j}.by") or _NEVER,
                            tuple(s.get("controls", ())), times.get(f"plan{j}.done"))
                   for j, s in enumerate(body.get("plan", ()))),
        accepted=_acceptance(source, at, body.get("accepted"), times))
    return entry, problems


_NEVER = datetime.max  # a plan date that did not parse: its problem is already reported


def _acceptance(source: Any, at: tuple, body: Mapping[str, Any] | None,
                times: Mapping[str, datetime]) -> Acceptance | None:
    if body is None:
        return None
    return Acceptance(by=body["by"], role=body["role"], at=times.get("accepted.at") or _NEVER,
                      key=body["key"], signature=body["signature"],
                      where=_at(source, at + ("accepted", "by"), value=True))


def _at(source: Any, path: tuple, value: bool = False) -> str:
    line, col = source.locate(path, value=value)
    return f"{source.file}:{line}:{col}"


def _time_fields(at: tuple, body: Mapping[str, Any]) -> list[tuple[str, tuple, Any]]:
    """(name, YAML path, text) of every date the entry gives."""
    fields = [("published", at + ("published",), body.get("published")),
              ("deadline", at + ("due", "deadline"), body["due"].get("deadline")),
              ("review_by", at + ("review_by",), body.get("review_by"))]
    if body.get("accepted"):
        fields.append(("accepted.at", at + ("accepted", "at"), body["accepted"]["at"]))
    for j, step in enumerate(body.get("plan", ())):
        fields += [(f"plan{j}.{k}", at + ("plan", j, k), step.get(k)) for k in ("by", "done")]
    return fields


def _times(source: Any, at: tuple, body: Mapping[str, Any]
           ) -> tuple[dict[str, datetime], list[Problem]]:
    out, problems = {}, []
    for key, path, text in _time_fields(at, body):
        if text is None:
            continue
        try:
            out[key] = parse_when(text, path[-1])  # no offset: UTC, as everywhere in risk
        except RiskError as e:
            problems.append(source.problem(path, "register-time", f"{_show(path)}: {e}"))
    return out, problems


def _lifecycle_problems(source: Any, at: tuple, body: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if body.get("accepted") and body.get("advisory") and not body.get("advisory_revision"):
        problems.append(source.problem(
            at + ("accepted",), "register-acceptance", f"{_show(at)}: an accepted decision "
            f"on {body['advisory']} names the advisory_revision it was taken on (the "
            "advisory's document.tracking.version): a new revision re-opens it"))
    if body.get("plan") and body["decision"] != Decision.MITIGATE.value:
        problems.append(source.problem(
            at + ("plan",), "register-acceptance", f"{_show(at + ('plan',))}: a plan belongs "
            f"to a mitigate decision, not {body['decision']}"))
    return problems


def _score_problems(source: Any, at: tuple, body: Mapping[str, Any]) -> list[Problem]:
    try:
        given = score(body["vector"])
    except RiskError as e:
        return [source.problem(at + ("vector",), "register-vector", f"{_show(at)}: {e}")]
    try:
        effective = score(body["effective_vector"])
    except RiskError as e:
        return [source.problem(at + ("effective_vector",), "register-vector",
                               f"{_show(at)}: {e}")]
    problems = []
    if not same_base(given.vector, effective.vector):
        problems.append(source.problem(
            at + ("effective_vector",), "register-vector", f"{_show(at)}: the effective "
            "vector changes base or temporal metrics; only environmental ones may differ"))
    for key, recorded, computed in (("base", body["base"], given.base),
                                    ("effective", body["effective"], effective.effective),
                                    ("severity", body["severity"], effective.severity)):
        if recorded != computed:
            problems.append(source.problem(
                at + (key,), "register-score", f"{_show(at + (key,))}: {recorded} is not "
                f"what the vector gives ({computed})"))
    return problems


def _due_problems(source: Any, at: tuple, body: Mapping[str, Any],
                  times: Mapping[str, datetime]) -> list[Problem]:
    recorded, expected = body["due"]["category"], category(float(body["effective"]))
    path = at + ("due", "category")
    if recorded != expected:
        return [source.problem(path, "register-due", f"{_show(path)}: {recorded} but "
                               f"effective {body['effective']} gives {expected}")]
    allowed = window(recorded)
    if allowed is None or not {"published", "deadline"} <= set(times):
        return []
    if times["deadline"] > times["published"] + allowed:
        path = at + ("due", "deadline")
        latest = (times["published"] + allowed).isoformat()
        return [source.problem(path, "register-due", f"{_show(path)}: later than {recorded} "
                               f"allows (at the latest {latest})")]
    return []


def _show(path: tuple) -> str:
    from otpatch.modules.contract.yamlsrc import display_path

    return display_path(path)
