"""firewall.review: review a saved mGuard profile against the site policy, and, given the
earlier profile, say which rules a change lost or changed (the semantic diff, diff.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.errors import InputError
from otpatch.modules.contract.module import Module, Result
from otpatch.modules.schema_defs import LABEL, TEXT


class FirewallReview(Module):
    name = "firewall.review"
    reaches_device = False  # it reads a saved profile file, never the firewall
    doc = ("Review a saved mGuard configuration profile (`profile`, typically "
           "{{ facts.<target>.profiles.<label>.path }} from mguard.export_profile) against "
           "the firewall policy (`policy`, relative to the playbook; default: the shipped "
           "one, the seed's plant): S7 and Modbus into the control zone, EtherNet/IP "
           "(UDP 2222 I/O, TCP/UDP 44818) to or from any address, HTTP management, ICMP, "
           "remote syslog to the SIEM, any-to-any and shadowed rules, unlogged cross-zone "
           "accepts. With `compare_to` (the earlier profile) the result carries the "
           "semantic diff, and with `fail_on_lost_rules` the step fails when the change "
           "lost or changed a rule. Facts firewall.<label>: rule counts per table, "
           "findings (id, severity, location, message), diff summary. Findings alone never "
           "fail the step. Reads files only; the same in a dry run.")
    args_schema = {
        "type": "object",
        "properties": {
            "profile": {**TEXT, "description": "the saved profile (.atv or ECS .tar.gz)"},
            "policy": {**TEXT, "description": "a firewall policy file (YAML)"},
            "label": {**LABEL, "description": "names the review in the facts, e.g. "
                                              "lab_before, lab_after"},
            "compare_to": {**TEXT, "description": "the earlier profile: diff against it"},
            "fail_on_lost_rules": {"type": "boolean"},
        },
        "required": ["profile"],
        "additionalProperties": False,
    }

    def run(self, args: Mapping[str, Any], ctx: Any) -> Result:
        try:
            return _review(args, ctx)
        except InputError as e:  # PlaybookError too: a bad policy, every problem located
            return Result(failed=True, msg="; ".join(line.removeprefix("otpatch: ")
                                                     for line in e.lines()))


def _review(args: Mapping[str, Any], ctx: Any) -> Result:
    from otpatch.modules.firewall.policy import load_policy
    from otpatch.modules.firewall.review import read_profile, review

    label = args.get("label", "review")
    policy_file = _path(args.get("policy"), ctx)
    policy = load_policy(policy_file)
    saved = read_profile(_path(args["profile"], ctx))
    found = review(saved.ruleset, policy)
    facts: dict[str, Any] = {"profile": saved.ruleset.source, "sha256": saved.sha256,
                             "policy": policy.source, "version": found.version,
                             "counts": found.counts, "by_severity": found.by_severity(),
                             "findings": [_brief(f) for f in found.findings]}
    compared = _compare(args, ctx, saved.ruleset, found, policy) \
        if args.get("compare_to") else None
    if compared is not None:
        facts["diff"], facts["new_findings"] = compared["summary"], compared["new_findings"]
    ctx.record("firewall_review", {"label": label, **{k: facts[k] for k in (
        "profile", "sha256", "policy", "counts", "by_severity", "findings")},
        "diff": compared["diff"] if compared else None})
    msg = f"{label}: {_summary(found)}" + (f"; {compared['words']}" if compared else "")
    if compared and compared["summary"]["lost"] and args.get("fail_on_lost_rules"):
        return Result(failed=True, msg=msg, facts={"firewall": {label: facts}})
    return Result(msg=msg, facts={"firewall": {label: facts}})


def _compare(args: Mapping[str, Any], ctx: Any, after: Any, found: Any, policy: Any
             ) -> dict[str, Any]:
    """The semantic diff against the earlier profile, and the findings new since it."""
    from otpatch.modules.firewall.review import read_profile, review, short_name

    earlier = read_profile(_path(args["compare_to"], ctx))
    changes = _diff(earlier.ruleset, after)
    # diff.py: `lost` is every before rule removed or changed in meaning; `changed` those
    # of them still there in another form
    lost, changed = len(changes.lost), len(changes.of_kind("changed"))
    # a finding is new when no earlier finding of its id is about a rule of the same
    # meaning (positions shift when a rule goes; the rule's meaning does not)
    before = {_about(f, earlier.ruleset) for f in review(earlier.ruleset, policy).findings}
    new = sorted({f.id for f in found.findings if _about(f, after) not in before})
    # the post-change check (issue 16): a rule the change added, such as a temporary
    # maintenance rule left in place, is named for the record, whatever the policy says
    added = [f"{c.after.where}: {c.after.describe()}" for c in changes.of_kind("added")
             if c.after is not None]
    words = (f"against {short_name(earlier.ruleset.source)}: " + (
        f"{lost} rule(s) lost ({changed} of them changed in meaning): "
        + "; ".join(rule.where for rule in changes.lost) if lost
        else "no rule lost or changed") + (f"; new findings: {', '.join(new)}" if new else "")
        + (f"; {len(added)} rule(s) added by the change: {'; '.join(added)}" if added else ""))
    return {"summary": {"compared_to": earlier.ruleset.source, "sha256": earlier.sha256,
                        "lost": lost, "changed": changed, "added": added},
            "diff": changes.to_json(), "new_findings": new, "words": words}


def _about(finding: Any, ruleset: Any) -> tuple:
    """A finding's id and what it is about: its rule's meaning, else its setting's path."""
    rule = next((r for r in ruleset.rules() if r.path == finding.location.path), None)
    return finding.id, rule.meaning() if rule is not None else finding.location.path


def _diff(before: Any, after: Any) -> Any:
    try:
        from otpatch.modules.firewall.diff import diff
    except ImportError as e:
        raise InputError("compare_to: the semantic diff (otpatch.modules.firewall.diff) is "
                         f"not available here: {e}") from None
    return diff(before, after)


def _brief(finding: Any) -> dict[str, Any]:
    return {"id": finding.id, "severity": finding.severity.value,
            "location": finding.location.to_json(), "message": finding.message}


def _summary(found: Any) -> str:
    from otpatch.modules.firewall.review import short_name

    counted = ", ".join(f"{n} {s}" for s, n in found.by_severity().items() if n)
    return (f"{found.counts['total']} firewall rules in {short_name(found.source)}; "
            f"findings: {counted or 'none'}")


def _path(name: str | None, ctx: Any) -> Path | None:
    """A file named in the playbook: absolute, or relative to the playbook's folder."""
    if not name:
        return None
    path = Path(name).expanduser()
    return path if path.is_absolute() else Path(getattr(ctx, "playbook_dir", None)
                                                or Path.cwd()) / path
