"""How urgent a match is: CVSS score, effective score with the covering controls, and due date."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from otpatch.modules.advisories.model import Advisory, AdvisoryScore, Urgency

DUE_BASIS = {"initial": "initial_release_date", "current": "current_release_date"}
CATEGORY_RANK = {"emergency_72h": 0, "within_30d": 1, "next_cycle": 2}


class Assessor:
    """Scores and due dates for one inventory and one set of controls; scores cached."""

    def __init__(self, inventory: Any, controls: Iterable[Any] | Mapping[str, Any] = (),
                 due_from: str = "initial", next_cycle: datetime | None = None):
        if due_from not in DUE_BASIS:
            raise ValueError(f"due_from must be one of {', '.join(DUE_BASIS)}")
        self.inventory = inventory
        self.controls = tuple(controls.values() if isinstance(controls, Mapping) else controls)
        self.basis = DUE_BASIS[due_from]
        self.next_cycle = next_cycle
        self._scores: dict[tuple, tuple[Any, tuple[str, ...]]] = {}
        self._covering: dict[str, tuple[Any, ...]] = {}
        self._urgency: dict[tuple, Urgency] = {}

    def covering(self, host: Any) -> tuple[Any, ...]:
        """The controls whose applies_to covers the host (by name, zone or group)."""
        if host.name not in self._covering:
            self._covering[host.name] = tuple(
                c for c in self.controls if c.applies_to.covers(host, self.inventory))
        return self._covering[host.name]

    def assess(self, host: Any, advisory: Advisory, stated: AdvisoryScore | None) -> Urgency:
        """The urgency of a vulnerability on a host (the same for every host that the same
        controls cover)."""
        controls = self.covering(host)
        key = (id(advisory), stated, tuple(c.id for c in controls))
        if key not in self._urgency:
            self._urgency[key] = self._assess(controls, advisory, stated)
        return self._urgency[key]

    def _assess(self, controls: tuple[Any, ...], advisory: Advisory,
                stated: AdvisoryScore | None) -> Urgency:
        from otpatch.modules.risk.due import due

        published = (advisory.initial_release if self.basis == "initial_release_date"
                     else advisory.current_release)
        if stated is None:
            return Urgency(published=published, notes=("the advisory states no CVSS score: "
                                                        "assess by hand",))
        if not stated.vector.startswith("CVSS:3"):
            base = stated.base
            return Urgency(stated.version, stated.vector, base, base, "", stated.vector, (),
                           due(base, published, self.next_cycle) if base is not None else None,
                           published, (f"CVSS v{stated.version} vector: scored as stated, "
                                       "controls not applied",))
        scored, notes = self._score(stated.vector, controls)
        if stated.base is not None and abs(stated.base - scored.base) > 0.05:
            notes += (f"the advisory states base {stated.base}, its vector computes "
                      f"{scored.base}",)
        return Urgency(stated.version, stated.vector, stated.base, scored.effective,
                       scored.severity, scored.effective_vector, scored.controls,
                       due(scored.effective, published, self.next_cycle), published, notes)

    def _score(self, vector: str, controls: tuple[Any, ...]) -> tuple[Any, tuple[str, ...]]:
        key = (vector, tuple(c.id for c in controls))
        if key not in self._scores:
            self._scores[key] = _mitigated(vector, controls)
        return self._scores[key]


def _mitigated(vector: str, controls: tuple[Any, ...]) -> tuple[Any, tuple[str, ...]]:
    """The score with every covering control that does not raise it (a control written for
    network exposure must not make a local-only flaw look remote); what was left out, why."""
    from otpatch.modules.risk.scoring import RiskError, score

    plain = score(vector)
    kept, notes = [], []
    for control in controls:
        try:
            alone = score(vector, (control,))
        except RiskError as e:
            notes.append(f"control {control.id} not applied: {e}")
            continue
        if alone.effective > plain.effective:
            notes.append(f"control {control.id} ({control.metrics_text()}) not applied: it "
                         f"would raise {plain.effective} to {alone.effective}")
        else:
            kept.append(control)
    try:
        return score(vector, kept), tuple(notes)
    except RiskError as e:  # two kept controls disagree on a metric
        return plain, tuple(notes) + (f"controls not applied: {e}",)
