"""The run context a module sees: mode, clock, targets, facts, the change store, attest."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from otpatch.engine.clock import iso
from otpatch.modules.contract.errors import ModuleFailed
from otpatch.engine.people import Dialogue, holders, role_unheld, workstation
from otpatch.engine.prompt import NOBODY, Prompter
from otpatch.modules.contract.module import Attestation


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
    prompter: Prompter | None = None  # asks a person (execute mode); None: nobody to ask
    attestations: tuple = ()  # signed attestation files recorded for the run
    step_at: Mapping[str, Any] | None = None  # {state, index, visit} of the running step
    stage: Any = None  # the running state's stage: a module reaches only hosts of it

    @property
    def dry_run(self) -> bool:
        return self.mode == "dry_run"

    def hosts(self, target: str) -> tuple[Any, ...]:
        """The target's hosts; ModuleFailed, before anything is sent, when the running
        module talks to devices and a host's otpatch_stage is not the state's stage."""
        try:
            hosts = self.targets[target]
        except KeyError:
            raise KeyError(f"no target {target!r}; declared: {', '.join(self.targets)}") from None
        wrong = [h for h in hosts if self.stage is not None and h.stage is not self.stage]
        if wrong and self._module_reaches_device():
            names = ", ".join(f"{h.name} ({h.stage.value})" for h in wrong)
            raise ModuleFailed(f"not sent: target {target} -> {names}, but this state runs in "
                               f"{self.stage.value}: a state reaches only hosts of its stage")
        return hosts

    def _signed_attestation(self, statement: str, role: str, approvers: tuple) -> Any:
        """A signed attestation file recorded for the step now running (`otpatch attest`)."""
        from otpatch.engine.approvals import attestation_for

        where = self.step_at or {}
        return attestation_for(self.attestations, run_id=self.run_id,
                               state=where.get("state"), visit=where.get("visit"),
                               index=where.get("index"),
                               statement=statement, role=role, approvers=approvers)

    def evaluate(self, expression: str) -> Any:
        """The expression's value over the namespace (engine/templating.py's sandbox);
        TemplateProblem, an ExpressionError, when it cannot be evaluated."""
        from otpatch.engine.templating import evaluate

        return evaluate(expression, self.namespace)

    def _module_reaches_device(self) -> bool:
        from otpatch.modules import registry

        cls = registry.modules().get(self.module_name)
        return cls is None or cls.reaches_device

    def record(self, event_type: str, payload: Mapping[str, Any]) -> None:
        if self.recorder is not None:
            self.recorder(event_type, payload)

    def attest(self, statement: str, role: str, simulated_answer: bool) -> Attestation:
        """A person holding `role` in the inventory confirms `statement`: asked through the
        prompter in execute mode (PersonNeeded when nobody answers), the recorded simulation
        answer in a dry run. A role no approver holds fails in both modes (ModuleFailed)."""
        approvers = tuple(self.inventory.approvers)
        if not holders(approvers, role):
            raise ModuleFailed(role_unheld(role, approvers, self.inventory.path))
        prompter = self.prompter or NOBODY
        host, terminal = workstation(prompter)
        if self.dry_run:
            return Attestation(statement, simulated_answer, "simulation",
                               iso(self.clock.now()), simulated=True, role=role, host=host)
        signed = self._signed_attestation(statement, role, approvers)
        if signed is not None:
            doc, person = signed
            return Attestation(statement, bool(doc["confirmed"]), person.name,
                               str(doc["signed_at"]), simulated=False, role=role, host=host,
                               signed=str(doc["public_key"]))
        where = self.inventory.path or "the inventory"
        answer = Dialogue(prompter, role, statement, approvers, where).run()
        return Attestation(statement, answer.confirmed, answer.person, iso(self.clock.now()),
                           simulated=False, role=role, host=host, terminal=terminal,
                           refused=answer.refused)

