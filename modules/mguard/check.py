"""mguard.check: is the firewall intact after a change? Rule counts, VLANs, IPsec tunnels and
a digest of the rules, against what was expected: on a simulator read through its own status
calls and profile export; on a real device from a profile exported in this run (guided.py),
the tunnels being up attested by a person (no public interface reads them: the manual's
`nph-vpn.cgi?name=X&cmd=up` starts a connection, and otpatch never sends it)."""
from __future__ import annotations

from typing import Any, Mapping

from otpatch.modules.contract.attest import attested
from otpatch.modules.contract.module import Result
from otpatch.modules.mguard import profile
from otpatch.modules.mguard.common import HostModule, earlier_facts, schema
from otpatch.modules.mguard.driver import MguardDriver
from otpatch.modules.mguard.guided import (ATV_FORMAT, MANUAL_MANAGEMENT, ROLE,
                                           firmware_of, fresh_export, guided_export, role_of,
                                           serial_of)
from otpatch.modules.schema_defs import LABEL

CGI_APPENDIX = ("User manual mGuard 10.5 (110191_en_09), appendix \"CGI interface\": "
                "nph-vpn.cgi?name=Athen&cmd=up, an action (not sent), https://help.mguard.com/"
                "en/mguard10/manual/10.5/110191_en_09/Section19/Section19.htm")
VPN_STATUS = "IPsec VPN >> IPsec Status"


class Check(HostModule):
    name = "mguard.check"
    doc = ("Verify after a change that the firewall is intact: the active firewall rule "
           "count, the VLANs (routing between VLAN 10/20/30), the IPsec tunnels that must be "
           "up, and a digest of the rules. Expected values come from `expect` "
           "({rules: N, vlans: [10, 20], tunnels_up: [name], rules_digest: sha256:...}) or, "
           "with `expect_from: exported_profile`, from the profile mguard.export_profile "
           "recorded earlier for this target (explicit `expect` keys win). Without either it "
           "only records what it sees. Facts: checks.<label> (expected, observed, problems, "
           "evidence) so before/after counts stay side by side in the change record. On a "
           "simulator through its status calls and profile export. On a real plant: from "
           "the newest profile exported in this run that no update or import made stale "
           "(else a guided download, label check_<label>): rules as configured (how many "
           "are active no public interface shows: rules_active null), VLANs, rules digest; "
           "the tunnels in tunnels_up are attested by the person (`role`) from the web UI's "
           f"{VPN_STATUS} page: otpatch does not send nph-vpn.cgi, which starts connections.")
    real_device = "guided"
    sources = (MANUAL_MANAGEMENT, ATV_FORMAT, CGI_APPENDIX)
    args_schema = schema({
        "expect": {"type": "object", "additionalProperties": False, "properties": {
            "rules": {"type": "integer", "minimum": 0},
            "vlans": {"type": "array", "items": {"type": "integer", "minimum": 1,
                                                 "maximum": 4094}},
            "tunnels_up": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "rules_digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}}},
        "expect_from": {"enum": ["exported_profile"]},
        "label": LABEL,
        "role": ROLE,
    })
    verifies = {"configuration": ("expect", "expect_from")}

    def on_host(self, args, ctx, host, driver: MguardDriver) -> Result:
        expected = _expected(args, ctx, host)
        if isinstance(expected, str):
            return Result(failed=True, msg=expected)
        return _judged(args, expected, observe(driver), {"source": "simulator"})

    def on_real_host(self, args, ctx, host) -> Result:
        expected = _expected(args, ctx, host)
        if isinstance(expected, str):
            return Result(failed=True, msg=expected)
        label = args.get("label", "check")
        saved = fresh_export(earlier_facts(ctx, args["target"], host.name)) or \
            guided_export(ctx, host, f"check_{label}", role_of(args))
        if isinstance(saved, Result):
            return saved
        observed = observe_profile(saved)
        evidence = {"source": "exported_profile", "profile": {
            k: saved.get(k) for k in ("label", "path", "sha256", "saved_at")}}
        wanted = [n for n in expected.get("tunnels_up") or () if n in observed["tunnels"]]
        if wanted:  # one not even configured is missing: nobody is asked about it
            evidence["tunnels"] = _tunnels_attested(args, ctx, host, wanted, observed)
        return _judged(args, expected, observed, evidence)


def _judged(args: Mapping[str, Any], expected: dict[str, Any], observed: dict[str, Any],
            evidence: dict[str, Any]) -> Result:
    problems = compare(expected, observed)
    label = args.get("label", "check")
    facts = {"checks": {label: {"ok": not problems, "expected": expected,
                                "observed": observed, "problems": problems,
                                "evidence": evidence}}}
    if observed["rules_active"] is None:
        rules = f"{observed['rules_configured']} rules configured"
    else:
        rules = f"{observed['rules_active']} active rules"
    seen = (f"{rules}, VLANs {observed['vlans']}, tunnels up: "
            f"{', '.join(observed['tunnels_up']) or 'none'}")
    if problems:
        return Result(failed=True, msg=f"{label}: " + "; ".join(problems), facts=facts)
    return Result(msg=f"{label}: {seen}" + (" as expected" if expected else ""), facts=facts)


def observe(driver: MguardDriver) -> dict[str, Any]:
    """What a simulator shows now: firmware, active rules, VLANs, tunnels, rules digest."""
    firewall, tunnels = driver.firewall(), driver.tunnels()
    running = profile.load(driver.export_profile(), f"{driver.host.name} running profile")
    summary = profile.summary(running.document)
    return {"firmware_version": driver.state().get("firmware"),
            "rules_active": firewall["rules_active"],
            "rules_configured": summary["rules"]["total"], "restore": firewall["restore"],
            "vlans": firewall["vlans"], "tunnels": tunnels,
            "tunnels_up": sorted(n for n, s in tunnels.items() if s == "up"),
            "rules_digest": summary["rules_digest"]}


def observe_profile(saved: Mapping[str, Any]) -> dict[str, Any]:
    """What an exported profile of a real device shows: configured, not live, state."""
    return {"firmware_version": firmware_of(saved), "rules_active": None,
            "rules_configured": saved["rules"]["total"], "restore": None,
            "vlans": [v for v in saved["vlans"] if v is not None],
            "tunnels": {_tunnel_name(t): "not read" for t in saved["tunnels"]},
            "tunnels_up": [], "rules_digest": saved["rules_digest"]}


def _tunnels_attested(args, ctx, host, wanted: list[str], observed: dict[str, Any]) -> dict:
    """The person confirms from the web UI that the wanted connections are established."""
    confirmed, record = attested(ctx, f"{host.name} (serial {serial_of(host)}): the web UI's "
                                      f"{VPN_STATUS} page shows the IPsec connections "
                                      f"{', '.join(wanted)} established", role_of(args))
    for name in wanted:
        observed["tunnels"][name] = "up" if confirmed else "not confirmed up"
    observed["tunnels_up"] = sorted(wanted) if confirmed else []
    return {"attested": confirmed, "attestation": record}


def _tunnel_name(tunnel: Mapping[str, Any]) -> str:
    return str(tunnel["name"] or tunnel["rid"] or tunnel["path"])


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
                    "tunnels_up": sorted(_tunnel_name(t) for t in saved["tunnels"]
                                         if t["started"]),
                    "rules_digest": saved["rules_digest"]}
    expected.update(args.get("expect") or {})
    return expected


def compare(expected: Mapping[str, Any], observed: Mapping[str, Any]) -> list[str]:
    """Each difference between what was expected and what the device shows, in words (a
    real device's rules as configured: how many are active it does not show publicly)."""
    problems = []
    if observed["restore"] not in ("idle", None):
        problems.append("a profile restore is still running")
    live = observed["rules_active"] is not None
    count = observed["rules_active"] if live else observed["rules_configured"]
    if "rules" in expected and count != expected["rules"]:
        problems.append(f"{count} firewall rules {'active' if live else 'configured'}, "
                        f"expected {expected['rules']}")
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
