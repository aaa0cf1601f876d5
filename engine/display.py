"""Run progress for people: a live rich display on a terminal, plain lines otherwise."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator, Protocol, TextIO

from otpatch.engine.prompt import TerminalPrompter
from otpatch.modules.contract.durations import format_duration


class Observer(Protocol):
    """What a run tells whoever watches it (the conductor calls these; engine/api.py takes
    one): a display on a terminal, a fleet module's event log, a web page's feed."""

    def attach_clock(self, clock: Any) -> None: ...
    def started(self, progress: Any, playbook: Any, resumed: bool = False) -> None: ...
    def state(self, state: Any, progress: Any) -> None: ...
    def gate(self, dest: str, req: Any, verdict: Any) -> None: ...
    def step(self, state: Any, index: int, step: Any) -> None: ...
    def result(self, state: Any, index: int, step: Any, result: Any,
               duration: float) -> None: ...
    def ended(self, progress: Any) -> None: ...


def clock_label(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class PlainDisplay:
    """One line per event; what a log file or a pipe gets."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.simulated = False
        self.elapsed = 0.0

    def _line(self, text: str) -> None:
        sim = "sim " if self.simulated else ""
        self.stream.write(f"[{sim}{clock_label(self.elapsed)}] {text}\n")

    def attach_clock(self, clock: Any) -> None:
        """The run's clock, for a display that shows time passing (plain lines do not)."""

    def prompter(self) -> TerminalPrompter:
        """The person at the terminal (core.attest in execute mode), asked below these
        lines; EOFError without one (stdin not a terminal, or closed with Ctrl-D)."""
        return TerminalPrompter(self.stream)

    def started(self, progress: Any, playbook: Any, resumed: bool = False) -> None:
        self.simulated = progress.config.mode == "dry_run"
        self.elapsed = progress.elapsed
        verb = "resumed" if resumed else "started"
        meta = playbook.metadata
        only = f", {progress.config.stage} stage only" if progress.config.stage else ""
        self._line(f"run {progress.run_id} {verb}: {progress.config.mode} of "
                   f"{meta.name} {meta.version} ({playbook.content_hash[:19]}){only}")
        for record in progress.config.evidence or ():
            self._line(f"  evidence run: {record}")
        unsigned = (progress.config.register or {}).get("reason")
        if unsigned and progress.config.mode == "dry_run":
            self._line("site register: not signed (a dry run may use it): "
                       + unsigned.removeprefix("site register not signed: "))

    def state(self, state: Any, progress: Any) -> None:
        self.elapsed = progress.elapsed
        stage = f" [{state.stage.value}]" if state.stage else ""
        rb = " (rolling back)" if progress.rolling_back else ""
        run_stage = progress.config.stage
        skip = (f": skipped (a {run_stage} stage run)"
                if run_stage and state.stage and state.stage.value != run_stage else "")
        self._line(f"state {state.name}{stage}{rb}{skip}")

    def gate(self, dest: str, req: Any, verdict: Any) -> None:
        mark = "passed" if verdict.passed else "REFUSED"
        self._line(f"  gate {req.describe()}: {mark}: {verdict.detail}")

    def step(self, state: Any, index: int, step: Any) -> None:
        pass  # the result line says it all; the live display shows the running step

    def result(self, state: Any, index: int, step: Any, result: Any, duration: float) -> None:
        self.elapsed += duration
        mark = "FAILED" if result.failed else ("changed" if result.changed else "ok")
        took = f" ({format_duration(duration)})" if duration >= 1 else ""
        self._line(f"  step {index + 1}/{len(state.do)} {step.label}: {mark}{took}: {result.msg}")

    def ended(self, progress: Any) -> None:
        self.elapsed = progress.elapsed
        msg = f": {progress.message}" if progress.message else ""
        self._line(f"run {progress.run_id} {progress.status.value} in state {progress.state}{msg}")


class NullDisplay(PlainDisplay):
    """Nothing on screen (--json prints one document at the end); the API's default
    observer."""

    def _line(self, text: str) -> None:
        pass

    def prompter(self) -> TerminalPrompter:
        """Asked on stderr: stdout carries only the JSON document."""
        return TerminalPrompter(on_stderr=True)


class LiveDisplay(PlainDisplay):
    """A rich live panel (state, step, run clock) above the lines PlainDisplay prints."""

    def __init__(self, console: Any) -> None:
        super().__init__(console.file)
        from rich.live import Live

        self.console = console
        self.current = ""
        self.clock: Any = None
        self.live = Live(self, console=console, refresh_per_second=4, transient=True)

    def attach_clock(self, clock: Any) -> None:
        self.clock = clock

    def __rich__(self):
        """Rendered at every refresh, so the run clock ticks during a long step."""
        from rich.text import Text

        now = self.clock.elapsed() if self.clock is not None else self.elapsed
        sim = "simulated " if self.simulated else ""
        return Text(f"{sim}clock {clock_label(now)}  {self.current}", style="bold cyan")

    def _panel(self):
        return self

    def _line(self, text: str) -> None:
        from rich.markup import escape

        sim = "sim " if self.simulated else ""
        self.console.print(f"[dim]\\[{sim}{clock_label(self.elapsed)}][/dim] {escape(text)}",
                           highlight=False, markup=True)
        self.live.update(self._panel())

    def started(self, progress: Any, playbook: Any, resumed: bool = False) -> None:
        self.live.start()
        super().started(progress, playbook, resumed)

    def step(self, state: Any, index: int, step: Any) -> None:
        self.current = f"{state.name}: step {index + 1}/{len(state.do)} {step.label}"
        self.live.update(self._panel())

    def prompter(self) -> TerminalPrompter:
        """The live line steps aside while a person answers."""
        return TerminalPrompter(self.stream, aside=self._aside)

    @contextmanager
    def _aside(self) -> Iterator[None]:
        self.live.stop()
        try:
            yield
        finally:
            self.live.start()

    def ended(self, progress: Any) -> None:
        super().ended(progress)
        self.live.stop()


def for_terminal(json_output: bool) -> PlainDisplay:
    """Live on a terminal, plain lines when piped, nothing with --json."""
    if json_output:
        return NullDisplay()
    if sys.stdout.isatty():
        from rich.console import Console

        return LiveDisplay(Console())
    return PlainDisplay()


def actors(entries: Any) -> list[dict[str, Any]]:
    """Who wrote a run's entries (IEC 62443-3-3 SR 2.8), as spans of consecutive entries by
    one person at one host: a run is one span, an approval or a resume by someone else
    another. What `status RUN_ID` shows, and its --json."""
    spans: list[dict[str, Any]] = []
    for e in entries:
        last = spans[-1] if spans else None
        if last is not None and (last["operator"], last["host"]) == (e.operator, e.host):
            last.update(entries=last["entries"] + 1, last_seq=e.seq, last_event=e.event_type)
            continue
        spans.append({"operator": e.operator, "host": e.host, "entries": 1,
                      "first_seq": e.seq, "first_event": e.event_type,
                      "last_seq": e.seq, "last_event": e.event_type})
    return spans


def actor_line(span: dict[str, Any]) -> str:
    """`alice at op@eng-ws-1: 14 entries, #3 run_started to #40 run_ended`."""
    if span["operator"] is None and span["host"] is None:
        who = "not recorded (written by an older otpatch)"
    else:
        who = f"{span['operator'] or 'nobody named'} at {span['host'] or 'an unknown host'}"
    if span["entries"] == 1:
        return f"{who}: #{span['first_seq']} {span['first_event']}"
    return (f"{who}: {span['entries']} entries, #{span['first_seq']} {span['first_event']} "
            f"to #{span['last_seq']} {span['last_event']}")
