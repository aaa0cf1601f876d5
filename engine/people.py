"""People who attest: the inventory's approvers holding a role, and the dialogue in which
one of them names themself at the terminal and answers yes or no."""
from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, Callable

from otpatch.engine.prompt import Prompter
from otpatch.modules.contract.errors import PersonNeeded

MAX_UNLISTED = 3  # names that hold no such role, before the run pauses for the right person
YES, NO = ("y", "yes"), ("n", "no")


def holders(approvers: tuple[Any, ...], role: str) -> tuple[Any, ...]:
    """The approvers who hold `role`, in inventory order."""
    return tuple(a for a in approvers if role in a.roles)


def role_unheld(role: str, approvers: tuple[Any, ...], inventory_path: str | None) -> str:
    """Why no one can attest as `role`: who holds which roles instead."""
    where = inventory_path or "the inventory (none given)"
    if not approvers:
        return f"no one can attest as {role}: {where} lists no approvers"
    held = "; ".join(f"{a.name}: {', '.join(a.roles)}" for a in approvers)
    return f"no one in {where} holds role {role}, so no one can attest as {role} ({held})"


def needs_person(role: str, statement: str) -> str:
    return f"needs a person at a terminal: {role}: {statement}"


def workstation(prompter: Prompter | None = None) -> tuple[str, str | None]:
    """Where the answer is given: this host's name and the terminal the prompter asks at,
    when it names one (engine/prompt.py TerminalPrompter: the terminal on stdin)."""
    return socket.gethostname(), getattr(prompter, "terminal", None)


@dataclass(frozen=True)
class Answer:
    """Who answered, and what: a listed person's yes or no."""

    person: str
    confirmed: bool
    refused: tuple[str, ...] = ()  # what was typed first that named no one holding the role


class Dialogue:
    """One attestation asked at the terminal: the holders of the role listed by number, the
    person picks theirs (or types their name), then confirms the statement yes or no.

    A name that does not hold the role is refused and asked again; after MAX_UNLISTED such
    names, or with no one to answer (EOFError from the prompter), PersonNeeded: the run
    pauses. `prompter` is an engine/prompt.py Prompter, or a bare `ask(question)` function."""

    def __init__(self, prompter: Prompter | Callable[[str], str], role: str, statement: str,
                 approvers: tuple[Any, ...], where: str) -> None:
        self.ask: Callable[[str], str] = getattr(prompter, "ask", prompter)
        self.role, self.statement = role, statement
        self.people, self.approvers, self.where = holders(approvers, role), approvers, where

    def run(self) -> Answer:
        try:
            person, refused = self._identify()
            return Answer(person.name, self._confirm(person), refused)
        except EOFError:
            raise PersonNeeded(needs_person(self.role, self.statement),
                               asks=self._asks()) from None

    def _identify(self) -> tuple[Any, tuple[str, ...]]:
        listed = "".join(f"    {n}. {p.name}\n" for n, p in enumerate(self.people, 1))
        question = (f"  attestation ({self.role}): {self.statement}\n"
                    f"  who holds {self.role} in {self.where}:\n{listed}")
        refused: list[str] = []
        while len(refused) < MAX_UNLISTED:
            typed = " ".join(self.ask(question + "  your number or your name: ").split())
            person = self._pick(typed)
            if person is not None:
                return person, tuple(refused)
            if typed:
                refused.append(typed)
            question = f"  refused: {self._why_not(typed)}\n" if typed else ""
        names = ", ".join(repr(name) for name in refused)
        raise PersonNeeded(f"{needs_person(self.role, self.statement)} (refused {names}: "
                           f"not approvers holding {self.role})", asks=self._asks())

    def _asks(self) -> dict[str, str]:
        return {"statement": self.statement, "role": self.role}

    def _pick(self, typed: str) -> Any | None:
        if typed.isascii() and typed.isdecimal() and 1 <= int(typed) <= len(self.people):
            return self.people[int(typed) - 1]
        return next((p for p in self.people if p.name.casefold() == typed.casefold()), None)

    def _why_not(self, typed: str) -> str:
        span = f"1-{len(self.people)}" if len(self.people) > 1 else "1"
        known = next((a for a in self.approvers if a.name.casefold() == typed.casefold()), None)
        if typed.isdecimal():
            reason = f"{typed} is not on the list"
        elif known is not None:
            reason = f"{known.name} holds {', '.join(known.roles)}, not {self.role}"
        else:
            reason = f"{typed} is not an approver holding {self.role}"
        return f"{reason}: pick {span} or type a listed name"

    def _confirm(self, person: Any) -> bool:
        question = f"  {person.name} ({self.role}): do you confirm it? [yes/no] "
        while True:
            answer = self.ask(question).strip().lower()
            if answer in YES or answer in NO:
                return answer in YES
            question = f"  answer yes or no: {person.name} ({self.role}), do you confirm it? "
