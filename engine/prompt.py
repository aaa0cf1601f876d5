"""Who answers a run's questions (core.attest in execute mode): the Prompter protocol, the
person at this process's terminal, and nobody."""
from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Callable, Protocol, TextIO, runtime_checkable

from otpatch.modules.contract.platform import terminal_name


@runtime_checkable
class Prompter(Protocol):
    """Asks a person one question and returns the line they answered.

    `ask` raises EOFError when nobody can answer (no terminal, the input closed, no one at
    the web page): the step then pauses the run, awaiting a person, and `resume` asks again.
    A prompter may also name the terminal its answers come from (`terminal`, a device path
    such as /dev/pts/3), which the attestation records; one that does not records none."""

    def ask(self, question: str) -> str: ...


class Nobody:
    """No one to ask: every question pauses the run (the API's default)."""

    terminal = None

    def ask(self, question: str) -> str:
        raise EOFError("nobody to ask")


NOBODY = Nobody()


class TerminalPrompter:
    """The person at this process's terminal: stdin must be a terminal, else EOFError.

    `on_stderr` asks on stderr (when stdout carries one JSON document); otherwise the
    question goes through input() after `flush` (the display's stream) is flushed. `aside`
    makes a context in which a live display steps aside while the person answers."""

    def __init__(self, flush: TextIO | None = None, *, on_stderr: bool = False,
                 aside: Callable[[], AbstractContextManager] = nullcontext) -> None:
        self.flush, self.on_stderr, self.aside = flush, on_stderr, aside

    @property
    def terminal(self) -> str | None:
        """The terminal on stdin, if any: where the answers are typed (None on Windows,
        whose console has no device path: platform.terminal_name)."""
        try:
            return terminal_name(sys.stdin.fileno()) if _at_terminal() else None
        except (OSError, ValueError):  # stdin replaced by something with no file descriptor
            return None

    def ask(self, question: str) -> str:
        if not _at_terminal():
            raise EOFError("no terminal")
        with self.aside():
            return self._on_stderr(question) if self.on_stderr else self._input(question)

    def _input(self, question: str) -> str:
        if self.flush is not None:
            self.flush.flush()
        return input(question)

    @staticmethod
    def _on_stderr(question: str) -> str:
        sys.stderr.write(question)
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise EOFError("end of input at the terminal")
        return line.rstrip("\n")


def _at_terminal() -> bool:
    return bool(sys.stdin) and sys.stdin.isatty()
