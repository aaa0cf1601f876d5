"""What one ansible-playbook run came to: rc, status, per-host recap, and its one-line summary."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from otpatch.modules.contract.module import Result

# ansible-runner's stats keys -> the names of Ansible's own PLAY RECAP
RECAP_FIELDS = {"ok": "ok", "changed": "changed", "failures": "failures", "dark": "unreachable",
                "skipped": "skipped"}


def host_recap(stats: Mapping[str, Any] | None) -> dict[str, dict[str, int]]:
    """Per host: ok/changed/failures/unreachable/skipped counts, from ansible-runner's stats
    (category -> host -> count). Every host Ansible touched is listed, zeros included."""
    stats = stats or {}
    hosts = sorted({h for counts in stats.values() if isinstance(counts, Mapping) for h in counts})
    return {host: {name: int((stats.get(key) or {}).get(host, 0))
                   for key, name in RECAP_FIELDS.items()}
            for host in hosts}


@dataclass(frozen=True)
class PlaybookOutcome:
    """One ansible-playbook run (or one that could not start), as otpatch reports it."""

    playbook: str  # the path as resolved
    rc: int | None  # None: not started, or ended by a signal
    status: str  # ansible-runner's: successful, failed, timeout, canceled; or "not started"
    check_mode: bool
    recap: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    reason: str = ""  # the first thing that went wrong, when something did
    warnings: tuple[str, ...] = ()
    private_data_dir: str = ""

    @classmethod
    def not_started(cls, playbook: str, check_mode: bool, reason: str) -> "PlaybookOutcome":
        return cls(playbook=playbook, rc=None, status="not started", check_mode=check_mode,
                   reason=reason)

    @property
    def changed(self) -> bool:
        return any(counts["changed"] for counts in self.recap.values())

    @property
    def unreachable(self) -> bool:
        return any(counts["unreachable"] for counts in self.recap.values())

    @property
    def failed(self) -> bool:
        return self.status != "successful" or self.rc != 0

    def totals(self) -> dict[str, int]:
        return {name: sum(counts[name] for counts in self.recap.values())
                for name in RECAP_FIELDS.values()}

    def line(self) -> str:
        """`site.yml: ok=3 changed=1 failed=0 unreachable=0 (successful)`, plus the reason."""
        name = self.playbook.rsplit("/", 1)[-1]
        if self.status == "not started":
            return f"{name}: {self.reason}"
        t = self.totals()
        how = f"{self.status}, check mode" if self.check_mode else self.status
        line = (f"{name}: ok={t['ok']} changed={t['changed']} failed={t['failures']} "
                f"unreachable={t['unreachable']} ({how})")
        return f"{line}: {self.reason}" if self.failed and self.reason else line

    def facts(self) -> dict[str, Any]:
        out: dict[str, Any] = {"playbook": self.playbook, "rc": self.rc, "status": self.status,
                               "check_mode": self.check_mode,
                               "stats": {h: dict(c) for h, c in self.recap.items()}}
        if self.private_data_dir:
            out["private_data_dir"] = self.private_data_dir
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    def result(self) -> Result:
        return Result(changed=self.changed, failed=self.failed, msg=self.line(),
                      facts=self.facts(), unreachable=self.unreachable)
