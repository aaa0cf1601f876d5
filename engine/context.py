"""The run context a module sees: mode, clock, targets, facts, the change store, attest."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from otpatch.engine.clock import iso
from otpatch.modules.base import Attestation


@dataclass
class RunContext:
    """Built by the conductor for each run; modules read it, they never change the run."""

    mode: str
    clock: Any
    run_id: str
    run_dir: Path
    inventory: Any
    playbook_dir: Path
    targets: Mapping[str, tuple[Any, ...]]
    facts: Mapping[str, Any]
    namespace: Mapping[str, Any] = field(default_factory=dict)
    namespace_targets: Mapping[str, Any] = field(default_factory=dict)  # `targets` in templates
    recorder: Callable[[str, Mapping[str, Any]], None] | None = None
    module_name: str = ""
    ask: Callable[[str], str] | None = None  # asks the person at the terminal (execute mode)

    @property
    def dry_run(self) -> bool:
        return self.mode == "dry_run"

    def hosts(self, target: str) -> tuple[Any, ...]:
        try:
            return self.targets[target]
        except KeyError:
            raise KeyError(f"no target {target!r}; declared: {', '.join(self.targets)}") from None

    def record(self, event_type: str, payload: Mapping[str, Any]) -> None:
        if self.recorder is not None:
            self.recorder(event_type, payload)

    def attest(self, statement: str, role: str | None, simulated_answer: bool) -> Attestation:
        at = iso(self.clock.now())
        if self.dry_run:
            return Attestation(statement, simulated_answer, "simulation", at, simulated=True)
        return self._ask_person(statement, role, at)

    def _ask_person(self, statement: str, role: str | None, at: str) -> Attestation:
        ask = self.ask or _no_terminal
        who_role = f" ({role})" if role else ""
        try:
            answer = ask(f"Confirm{who_role}: {statement} [yes/no] ").strip().lower()
            who = ask("Your name: ").strip() if answer in ("y", "yes") else ""
        except EOFError:
            return Attestation(statement, False, "nobody", at, simulated=False,
                               note="no terminal to ask at: not confirmed")
        if answer not in ("y", "yes") or not who:
            return Attestation(statement, False, who or "operator", at, simulated=False,
                               note=f"answered {answer!r}")
        return Attestation(statement, True, who, at, simulated=False)


def _no_terminal(question: str) -> str:
    raise EOFError("no terminal")
