"""One error hierarchy for otpatch; CLI-facing errors carry their exit code."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Where:
    """Where a node stands in its source file (1-based) and its YAML path."""

    file: str
    line: int = 1
    col: int = 1
    path: str = ""

EXIT_OK = 0
EXIT_NOT_COMPLETED = 1  # the run ended but not completed: rolled back, aborted, halted
EXIT_BAD_INPUT = 2
EXIT_GATE_REFUSED = 3  # the run is awaiting: a gate refused, or a step needs a person


ECHO_LIMIT = 200  # characters of a user's input echoed back in a message


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text`, or its first `limit` characters, an ellipsis and its length: a message never
    echoes a 100 KB input in full."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


class OtpatchError(Exception):
    """Base of every error otpatch raises on purpose."""

    exit_code = EXIT_BAD_INPUT

    def lines(self) -> list[str]:
        """What the CLI prints, one line per problem."""
        return [f"otpatch: {self}"]


@dataclass(frozen=True)
class Problem:
    """One located problem in a file a user wrote."""

    file: str
    line: int  # 1-based
    col: int  # 1-based
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: [{self.rule}] {self.message}"


class InputError(OtpatchError):
    """Bad input a user handed us (a file, an argument, a run id); exit 2."""


class PlaybookError(InputError):
    """A playbook or inventory failed to load or validate; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col, p.rule))
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class RunError(OtpatchError):
    """A run-time failure of the engine itself (not of a device step)."""

    exit_code = EXIT_NOT_COMPLETED


class ModuleFailed(RunError):
    """A module reported failure; the conductor turns it into a failure event."""


class DeviceUnreachable(RunError):
    """A device did not answer; wraps the driver's error (raise ... from e)."""


class PersonNeeded(RunError):
    """A step needs a person who is not there (no terminal to ask at). Not a failure: the
    runner turns it into an awaiting result, the run pauses (exit 3), resume asks again.
    `asks`: the attestation asked ({"statement", "role"}), when it is one: the pause records
    it, so `otpatch attest` can answer a guided step of any module, not only core.attest."""

    def __init__(self, message: str, asks: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.asks = dict(asks) if asks else None


class JournalError(OtpatchError):
    """The journal cannot be read, written or trusted."""

    exit_code = EXIT_NOT_COMPLETED


class NotImplementedFeature(OtpatchError):
    """A capability that is planned but not built: says so plainly, never pretends."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, what: str):
        super().__init__(f"not implemented: {what}")


class ExpressionError(ValueError):
    """An expression or template that does not compile or does not evaluate; the message
    says why (the engine's templating raises its subclass, TemplateProblem)."""
