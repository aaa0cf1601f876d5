"""ansible-runner events as compact otpatch journal entries, and what they say went wrong."""
from __future__ import annotations

import json
from typing import Any, Mapping

from otpatch.modules.ansible.outcome import host_recap

PAYLOAD_LIMIT = 2048  # bytes of JSON per journaled event; the runner's artifacts keep the rest
TEXT_LIMIT = 300

FAILED_EVENTS = frozenset({"runner_on_failed", "runner_item_on_failed", "runner_on_async_failed"})
UNREACHABLE_EVENTS = frozenset({"runner_on_unreachable"})
RESULT_EVENTS = FAILED_EVENTS | UNREACHABLE_EVENTS | frozenset(
    {"runner_on_ok", "runner_item_on_ok", "runner_on_skipped", "runner_item_on_skipped",
     "runner_on_async_ok"})
TEXT_EVENTS = frozenset({"verbose", "warning", "error", "deprecated", "debug"})


def clip(text: Any, limit: int = TEXT_LIMIT) -> str:
    """One line, at most `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def compact_event(event: Mapping[str, Any], phase: str) -> dict[str, Any]:
    """Event name, counter, play/task/host, changed/failed flags and a short message; never the
    runner's stdout blob or the task's full result."""
    name = str(event.get("event", ""))
    data = event.get("event_data") or {}
    res = data.get("res") if isinstance(data.get("res"), Mapping) else {}
    payload: dict[str, Any] = {"phase": phase, "event": name, "counter": event.get("counter")}
    for key in ("play", "task", "host"):
        if data.get(key):
            payload[key] = clip(data[key], 120)
    if data.get("resolved_action") and name != "playbook_on_play_start":
        payload["action"] = clip(data["resolved_action"], 120)
    if name in RESULT_EVENTS:
        payload["changed"] = bool(res.get("changed"))
        payload["failed"] = name in FAILED_EVENTS
        if name in UNREACHABLE_EVENTS:
            payload["unreachable"] = True
        if data.get("ignore_errors"):
            payload["ignore_errors"] = True
        if (name in FAILED_EVENTS or name in UNREACHABLE_EVENTS) and res.get("msg"):
            payload["msg"] = clip(res["msg"])
    if name == "runner_on_file_diff" and _diff_targets(data.get("diff")):
        payload["diff_of"] = _diff_targets(data.get("diff"))
    if name == "playbook_on_stats":
        payload["stats"] = host_recap(data)
    if name in TEXT_EVENTS and str(event.get("stdout", "")).strip():
        payload["text"] = clip(event["stdout"])
    return _capped(payload)


def _diff_targets(diff: Any) -> list[str]:
    """What a diff is about: its headers (a file's path), or the path in a state diff."""
    names = []
    for d in diff if isinstance(diff, list) else [diff]:
        if not isinstance(d, Mapping):
            continue
        after = d.get("after") if isinstance(d.get("after"), Mapping) else {}
        name = d.get("after_header") or d.get("before_header") or after.get("path")
        if name and clip(name, 120) not in names:
            names.append(clip(name, 120))
    return names[:5]


def _capped(payload: dict[str, Any]) -> dict[str, Any]:
    """Within PAYLOAD_LIMIT: a recap of many hosts is the only field that can outgrow it, and
    the step's result keeps the whole recap."""
    if len(json.dumps(payload, default=str)) <= PAYLOAD_LIMIT:
        return payload
    slim = {k: v for k, v in payload.items() if k != "stats"}
    if "stats" in payload:
        slim["hosts"] = len(payload["stats"])
    slim["truncated"] = True
    return slim


class EventLog:
    """ansible-runner's event_handler: journals each event as it arrives (so a crash mid-play
    still leaves the trail) and keeps what the step's result needs."""

    def __init__(self, ctx: Any, phase: str):  # ctx: the step's Context; only .record is used
        self._ctx = ctx
        self._phase = phase
        self.count = 0
        self.pid: int | None = None  # ansible-playbook's own process
        self.warnings: list[str] = []
        self._task_failure = ""
        self._unreachable = ""
        self._error_line = ""
        self._first_text = ""

    def __call__(self, event: Mapping[str, Any]) -> bool:
        payload = compact_event(event, self._phase)
        self._ctx.record("ansible_event", payload)
        self.count += 1
        if self.pid is None and isinstance(event.get("pid"), int):
            self.pid = event["pid"]
        self._note(payload)
        return True  # keep it: the runner also writes it to its artifacts

    def _note(self, p: Mapping[str, Any]) -> None:
        text = p.get("text", "")
        if p["event"] in FAILED_EVENTS and not p.get("ignore_errors") and not self._task_failure:
            self._task_failure = f"task {p.get('task', '?')!r} on {p.get('host', '?')}: " \
                                 f"{p.get('msg', 'failed')}"
        elif p["event"] in UNREACHABLE_EVENTS and not self._unreachable:
            self._unreachable = f"{p.get('host', '?')} unreachable: {p.get('msg', '')}".rstrip(": ")
        elif p["event"] == "warning" and text:
            self.warnings.append(text)
        elif text.startswith(("[ERROR]", "ERROR")) and not self._error_line:
            self._error_line = text.removeprefix("[ERROR]:").removeprefix("ERROR!").strip()
        elif text and not self._first_text:
            self._first_text = text

    def reason(self) -> str:
        """The first failed task, else the first unreachable host, else Ansible's own error
        line (a playbook that does not parse), else the first thing it printed."""
        return self._task_failure or self._unreachable or self._error_line or self._first_text
