"""Commands that belong to a simulator's own interface: refused unless the host answers as an
otpatch simulator, asked once per driver, with nothing sent before but the identity read.

An inventory's `simulator: true` is necessary, never sufficient: a typo in an address, or a
lab entry copied for a plant device, must not send a simulator's register writes, invented
CGI actions, firmware images or credentials to a real device. A host marked
`simulator: false` is not even asked."""
from __future__ import annotations

import functools
from typing import Any, Callable

from otpatch.modules.contract.errors import ModuleFailed
from otpatch.modules.contract.module import ReadBack, Result

REFUSAL = "not available on a real device: "
Answer = tuple[bool, str]  # (answers as an otpatch simulator, what was seen)


class NotOnRealDevice(ModuleFailed):
    """A simulator's own interface asked of a host that is not, or does not answer as, an
    otpatch simulator. The message starts with "not available on a real device: "."""

    def __init__(self, detail: str):
        super().__init__(REFUSAL + detail)


class SimulatorCheck:
    """Whether one host answers as an otpatch simulator, asked of the device at most once.

    `ask()` sends the identity read only (public identification, or the simulator's
    unauthenticated identity) and answers (True, detail) or (False, detail). An answer is
    kept for the life of the driver, so a polling loop asks once; a device that does not
    answer at all raises (DeviceUnreachable) and is asked again next time."""

    def __init__(self, host: Any, ask: Callable[[], Answer]):
        self.host, self._ask = host, ask
        self._answer: Answer | None = None

    def answer(self) -> Answer:
        if not self.host.simulator:
            return False, (f"the inventory marks {self.host.name} `simulator: false`: "
                           "nothing was sent")
        if self._answer is None:
            ok, detail = self._ask()
            self._answer = (ok, detail if ok else
                            f"{detail}; nothing but the identity read was sent")
        return self._answer

    def confirmed(self) -> bool:
        return self.answer()[0]

    def require(self, what: str) -> None:
        """Return if the host answers as a simulator; else NotOnRealDevice naming `what`
        (the simulator-only interface asked for, and what a real device offers instead)."""
        ok, detail = self.answer()
        if not ok:
            seen = detail.removeprefix(f"{self.host.name}: ")
            raise NotOnRealDevice(f"{self.host.name}: {what}; {seen}")


def refusal_cannot_tell(read_back: Callable[..., ReadBack]) -> Callable[..., ReadBack]:
    """For a module's read_back: a device the check refuses cannot tell whether the change
    took effect (applied None: a human decides), and says why in the usual words."""

    @functools.wraps(read_back)
    def checked(self: Any, args: Any, ctx: Any) -> ReadBack:
        try:
            return read_back(self, args, ctx)
        except NotOnRealDevice as e:
            return ReadBack(None, Result(failed=True, msg=str(e)))
    return checked
