"""mguard.version, mguard.wait_ready, mguard.check: reading an mGuard, never changing it."""
from __future__ import annotations

from typing import Any, Mapping

from otpatch.modules.contract.module import Result
from otpatch.modules.mguard import profile
from otpatch.modules.mguard.common import (POLL_INTERVAL, READY_TIMEOUT, HostModule, ReadyWait,
                                           duration_arg, earlier_facts, how_long, schema)
from otpatch.modules.mguard.driver import MguardDriver
from otpatch.modules.schema_defs import DURATION, LABEL


class Version(HostModule):
    name = "mguard.version"
    doc = ("Read an mGuard's firmware version, model and serial over HTTPS "
           "(nph-status.cgi); facts: firmware_version, model, serial, part_number. "
           "Simulator only (no public source documents the call): refused on a real "
           "device, having read nothing but /sim/identity, without credentials.")
    args_schema = schema({})

    def on_host(self, args, ctx, host, driver: MguardDriver) -> Result:
        v = driver.version()
        facts = {"firmware_version": v.get("firmware"), "model": v.get("model"),
                 "serial": v.get("serial"), "part_number": v.get("part_number")}
        note = ""
        if host.firmware and host.firmware != facts["firmware_version"]:
            note = f" (the inventory says {host.firmware})"
        return Result(msg=f"{facts['model']} serial {facts['serial']}: firmware "
                          f"{facts['firmware_version']}{note}", facts=facts)


class WaitReady(HostModule):
    name = "mguard.wait_ready"
    doc = ("Wait until an mGuard answers HTTPS again and reports `ready` (after a firmware "
           "update or a reboot), up to `timeout` (default 10m), polling every `interval` "
           "(default 5s); with `expect_version`, a ready device must report that firmware. "
           "A changed certificate or a refused login ends the wait at once. A dry run "
           "passes the time virtually, and the simulator with it. Simulator only (its "
           "status action): refused on a real device.")
    args_schema = schema({"timeout": DURATION, "interval": DURATION,
                          "expect_version": {"type": "string", "minLength": 1}})
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


class Check(HostModule):
    name = "mguard.check"
    doc = ("Verify after a change that the firewall is intact: the active firewall rule "
           "count, the VLANs (routing between VLAN 10/20/30), the IPsec tunnels that must be "
           "up, and a digest of the rules. Expected values come from `expect` "
           "({rules: N, vlans: [10, 20], tunnels_up: [name], rules_digest: sha256:...}) or, "
           "with `expect_from: exported_profile`, from the profile mguard.export_profile "
           "recorded earlier for this target (explicit `expect` keys win). Without either it "
           "only records what it sees. Facts: checks.<label> (expected, observed, problems) "
           "so before/after counts stay side by side in the change record. Simulator only "
           "(its status actions and profile export): refused on a real device.")
    args_schema = schema({
        "expect": {"type": "object", "additionalProperties": False, "properties": {
            "rules": {"type": "integer", "minimum": 0},
            "vlans": {"type": "array", "items": {"type": "integer", "minimum": 1,
                                                 "maximum": 4094}},
            "tunnels_up": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "rules_digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}}},
        "expect_from": {"enum": ["exported_profile"]},
        "label": LABEL,
    })
    verifies = {"configuration": ("expect", "expect_from")}

    def on_host(self, args, ctx, host, driver: MguardDriver) -> Result:
        expected = _expected(args, ctx, host)
        if isinstance(expected, str):
            return Result(failed=True, msg=expected)
        observed = observe(driver)
        problems = compare(expected, observed)
        label = args.get("label", "check")
        facts = {"checks": {label: {"ok": not problems, "expected": expected,
                                    "observed": observed, "problems": problems}}}
        seen = (f"{observed['rules_active']} active rules, VLANs {observed['vlans']}, "
                f"tunnels up: {', '.join(observed['tunnels_up']) or 'none'}")
        if problems:
            return Result(failed=True, msg=f"{label}: " + "; ".join(problems), facts=facts)
        return Result(msg=f"{label}: {seen}" + (" as expected" if expected else ""),
                      facts=facts)


def observe(driver: MguardDriver) -> dict[str, Any]:
    """What the device shows now: firmware, active rules, VLANs, tunnels, rules digest."""
    firewall, tunnels = driver.firewall(), driver.tunnels()
    running = profile.load(driver.export_profile(), f"{driver.host.name} running profile")
    summary = profile.summary(running.document)
    return {"firmware_version": driver.state().get("firmware"),
            "rules_active": firewall["rules_active"],
            "rules_configured": summary["rules"]["total"], "restore": firewall["restore"],
            "vlans": firewall["vlans"], "tunnels": tunnels,
            "tunnels_up": sorted(n for n, s in tunnels.items() if s == "up"),
            "rules_digest": summary["rules_digest"]}


def _expected(args: Mapping[str, Any], ctx: Any, host: Any) -> dict[str, Any] | str:
    """The expected values, or why they cannot be known."""
    expected: dict[str, Any] = {}
    if args.get("expect_from") == "exported_profile":
        saved = earlier_facts(ctx, args["target"], host.name).get("profile")
        if not saved:
            return (f"no exported profile recorded for target {args['target']}: run "
                    "mguard.export_profile first, or give `expect`")
        expected = {"rules": saved["rules"]["total"],
                    "vlans": [v for v in saved["vlans"] if v is not None],
                    "tunnels_up": sorted(t["name"] or t["rid"] or t["path"]
                                         for t in saved["tunnels"] if t["started"]),
                    "rules_digest": saved["rules_digest"]}
    expected.update(args.get("expect") or {})
    return expected


def compare(expected: Mapping[str, Any], observed: Mapping[str, Any]) -> list[str]:
    """Each difference between what was expected and what the device shows, in words."""
    problems = []
    if observed["restore"] != "idle":
        problems.append("a profile restore is still running")
    if "rules" in expected and observed["rules_active"] != expected["rules"]:
        problems.append(f"{observed['rules_active']} firewall rules active, expected "
                        f"{expected['rules']}")
    if "vlans" in expected:
        missing = sorted(set(expected["vlans"]) - set(observed["vlans"]))
        extra = sorted(set(observed["vlans"]) - set(expected["vlans"]))
        if missing or extra:
            problems.append(f"VLANs missing {missing}, unexpected {extra}")
    for name in expected.get("tunnels_up", ()):
        state = observed["tunnels"].get(name, "missing")
        if state != "up":
            problems.append(f"IPsec tunnel {name} is {state}")
    if "rules_digest" in expected and observed["rules_digest"] != expected["rules_digest"]:
        problems.append("the firewall rules differ from the expected ones (rules digest)")
    return problems
