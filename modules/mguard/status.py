"""mguard.version and mguard.wait_ready: reading an mGuard, never changing it. On a simulator
through its own status calls; on a real device from a profile exported in this run (its
`#version` names the firmware that wrote it), and for wait_ready a TLS handshake first."""
from __future__ import annotations

from typing import Any, Mapping

from otpatch.modules.contract.errors import DeviceUnreachable
from otpatch.modules.contract.module import Result
from otpatch.modules.mguard.common import (POLL_INTERVAL, READY_TIMEOUT, HostModule, ReadyWait,
                                           duration_arg, earlier_facts, how_long, schema)
from otpatch.modules.mguard.driver import MguardDriver
from otpatch.modules.mguard.guided import (ATV_FORMAT, MANUAL_MANAGEMENT, ROLE, TLS_HANDSHAKE,
                                           firmware_of, fresh_export, guided_export, role_of)
from otpatch.modules.mguard.handshake import handshake
from otpatch.modules.mguard.platform import MANUAL_10, MANUAL_8, classify
from otpatch.modules.polling import poll_until
from otpatch.modules.schema_defs import DURATION, LABEL

VERSION_LABEL = {**LABEL, "description": "names the download a real device's version is read "
                                         "from, when this run has no fresh one"}


class Version(HostModule):
    name = "mguard.version"
    doc = ("Read an mGuard's firmware version, model and serial; facts: firmware_version, "
           "model, serial, part_number, platform (RS | 2000/4000 | 1000), firmware_line "
           "(8.x | 10.x | ...), evidence. On a simulator through its own status call "
           "(evidence simulator). On a real plant: guided: the version is the `#version` of "
           "the newest profile exported in this run that no update or import has made "
           "stale (run mguard.export_profile first and no second download is needed), else "
           "the person (`role`) downloads the running profile now (label `label`, default "
           "version); model, serial and part number are the inventory's (evidence "
           "exported_profile). Nothing is sent to the device.")
    real_device = "guided"
    sources = (ATV_FORMAT, MANUAL_MANAGEMENT, MANUAL_10, MANUAL_8)
    args_schema = schema({"role": ROLE, "label": VERSION_LABEL})

    def on_host(self, args, ctx, host, driver: MguardDriver) -> Result:
        v = driver.version()
        facts = {"firmware_version": v.get("firmware"), "model": v.get("model"),
                 "serial": v.get("serial"), "part_number": v.get("part_number"),
                 **_platform(v.get("model"), v.get("part_number")), "evidence": "simulator"}
        return Result(msg=_said(host, facts), facts=facts)

    def on_real_host(self, args, ctx, host) -> Result:
        saved = fresh_export(earlier_facts(ctx, args["target"], host.name))
        downloaded: dict[str, Any] = {}
        if saved is None:
            label = args.get("label", "version")
            saved = guided_export(ctx, host, label, role_of(args))
            if isinstance(saved, Result):
                return saved
            downloaded = {"profiles": {label: saved}}
        facts = {"firmware_version": firmware_of(saved), "model": host.model,
                 "serial": host.serial, "part_number": host.part_number,
                 **_platform(host.model, host.part_number),
                 "evidence": {"source": "exported_profile", "read": "#version",
                              "identity": "inventory",
                              **{k: saved.get(k) for k in ("label", "path", "sha256",
                                                           "saved_at")}}, **downloaded}
        return Result(msg=_said(host, facts) + f" (the #version of {saved['label']}, "
                                               "exported in the web UI)", facts=facts)


def _platform(model: str | None, part_number: str | None) -> dict[str, Any]:
    platform = classify(model, part_number)
    return {"platform": platform.key if platform else None,
            "firmware_line": platform.line if platform else None}


def _said(host: Any, facts: Mapping[str, Any]) -> str:
    note = ""
    if host.firmware and host.firmware != facts["firmware_version"]:
        note = f" (the inventory says {host.firmware})"
    return (f"{facts['model']} serial {facts['serial']}: firmware "
            f"{facts['firmware_version']}{note}")


class WaitReady(HostModule):
    name = "mguard.wait_ready"
    doc = ("Wait until an mGuard answers HTTPS again and reports `ready` (after a firmware "
           "update or a reboot), up to `timeout` (default 10m), polling every `interval` "
           "(default 5s); with `expect_version`, a ready device must report that firmware. "
           "A changed certificate or a refused login ends the wait at once. A dry run "
           "passes the time virtually, and the simulator with it. On a simulator through its "
           "status call. On a real plant: a TLS handshake on its HTTPS port, polled until "
           "it answers with the pinned (or CA-trusted) certificate (nothing else is sent), "
           "then the version from the running profile the person (`role`) downloads (label "
           "`label`, default ready): facts firmware_version, tls.fingerprint, evidence.")
    real_device = "guided"
    sources = (TLS_HANDSHAKE, ATV_FORMAT, MANUAL_MANAGEMENT)
    args_schema = schema({"timeout": DURATION, "interval": DURATION,
                          "expect_version": {"type": "string", "minLength": 1},
                          "role": ROLE,
                          "label": {**LABEL, "description": "names the download on a real "
                                                            "device (default ready)"}})
    verifies = {"firmware": ("expect_version",)}

    def on_host(self, args, ctx, host, driver: MguardDriver) -> Result:
        wait = ReadyWait(driver, args.get("expect_version"))
        state, waited = wait.run(ctx, duration_arg(args, "timeout", READY_TIMEOUT),
                                 duration_arg(args, "interval", POLL_INTERVAL))
        facts = {"ready_after_s": waited if state else None, "waited_s": waited}
        if state is None:
            return Result(failed=True, unreachable=not wait.answered, facts=facts,
                          msg=f"not ready after {how_long(ctx, waited)}; last: {wait.last}")
        facts["firmware_version"] = state.get("firmware")
        wrong = wait.wrong_version(state)
        if wrong:
            return Result(failed=True, msg=wrong, facts=facts)
        return Result(msg=f"ready after {how_long(ctx, waited)}, firmware "
                          f"{state.get('firmware')}", facts=facts)

    def on_real_host(self, args, ctx, host) -> Result:
        fingerprint, waited, last = _tls_answers(args, ctx, host)
        facts: dict[str, Any] = {"ready_after_s": waited if fingerprint else None,
                                 "waited_s": waited}
        if fingerprint is None:
            return Result(failed=True, unreachable=True, facts=facts,
                          msg=f"no TLS answer after {how_long(ctx, waited)}; last: {last}")
        label = args.get("label", "ready")
        saved = guided_export(ctx, host, label, role_of(args))
        if isinstance(saved, Result):
            return saved
        version = firmware_of(saved)
        facts.update(firmware_version=version, tls={"fingerprint": fingerprint},
                     evidence={"source": "tls_handshake+exported_profile", "label": label,
                               "sha256": saved["sha256"]}, profiles={label: saved})
        expected = args.get("expect_version")
        if expected and version != expected:
            return Result(failed=True, facts=facts,
                          msg=f"answers TLS with its pinned certificate, but its running "
                              f"profile names firmware {version}, expected {expected}")
        return Result(facts=facts, msg=f"answered TLS after {how_long(ctx, waited)} "
                                       f"({fingerprint}); its running profile names firmware "
                                       f"{version}")


def _tls_answers(args, ctx, host) -> tuple[str | None, float, str]:
    """(fingerprint or None, time waited, the last reason) polling the TLS handshake; a
    certificate that is not the trusted one ends the wait at once (CertificateRefused)."""
    last = ["no answer yet"]

    def check() -> str | None:
        try:
            return handshake(host)
        except DeviceUnreachable as e:
            last[0] = str(e)
            return None

    fingerprint, waited = poll_until(ctx, check,
                                     timeout=duration_arg(args, "timeout", READY_TIMEOUT),
                                     interval=duration_arg(args, "interval", POLL_INTERVAL))
    return fingerprint, waited, last[0]

