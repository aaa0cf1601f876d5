"""advisories.match: the playbook step that matches CSAF advisories against the inventory."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from otpatch.modules.contract.module import Module, Result
from otpatch.modules.schema_defs import TARGET, TEXT


class AdvisoriesMatch(Module):
    name = "advisories.match"
    reaches_device = False  # the inventory's records of its target only
    doc = ("Monitor advisories (IEC TR 62443-2-3): validate the CSAF 2.0 files under "
           "`advisories` (files or folders, relative to the playbook) against the official "
           "schema, match them against the inventory (or the hosts of `target`) by vendor, "
           "part number or model and firmware, and score each match with the compensating "
           "controls of `controls_file` that cover the asset. Facts: advisories.{count, "
           "matches (most urgent first: host, cve, confidence, reason, fixed_version, "
           "remediation, cvss, due), skipped, most_urgent}. Broken files are skipped and "
           "listed, never fatal. Reads files only; the same in a dry run.")
    args_schema = {
        "type": "object",
        "properties": {
            "advisories": {"oneOf": [TEXT, {"type": "array", "items": TEXT, "minItems": 1}]},
            "controls_file": TEXT,
            "target": TARGET,
            "due_from": {"enum": ["initial", "current"]},
        },
        "required": ["advisories"],
        "additionalProperties": False,
    }

    def run(self, args: Mapping[str, Any], ctx: Any) -> Result:
        from otpatch.modules.contract.errors import InputError

        try:
            return _match(args, ctx)
        except InputError as e:
            return Result(failed=True, msg="; ".join(x.removeprefix("otpatch: ")
                                                      for x in e.lines()))


def _match(args: Mapping[str, Any], ctx: Any) -> Result:
    from otpatch.modules.advisories.load import load_advisories
    from otpatch.modules.advisories.match import match
    from otpatch.modules.advisories.report import match_dict
    from otpatch.modules.risk.controls import load_controls

    given = args["advisories"]
    paths = [_path(p, ctx) for p in ([given] if isinstance(given, str) else given)]
    loaded = load_advisories(paths)
    controls = load_controls(_path(args["controls_file"], ctx)) if args.get(
        "controls_file") else {}
    hosts = ctx.hosts(args["target"]) if args.get("target") else None
    found = match(ctx.inventory, loaded.advisories, controls, hosts=hosts,
                  due_from=args.get("due_from", "initial"))
    now = datetime.fromtimestamp(ctx.clock.now(), timezone.utc)
    rows = [match_dict(m, now) for m in found]
    facts = {"count": len(rows), "matches": rows, "most_urgent": rows[0] if rows else None,
             "skipped": [s.line() for s in loaded.skipped], "notes": list(loaded.notes)}
    head = (f"{rows[0]['host']} {rows[0]['cve']} ({rows[0]['due']['category']})"
            if rows else "none")
    msg = (f"{len(rows)} affected asset/CVE pair(s) from {len(loaded.advisories)} advisories "
           f"({len(loaded.skipped)} file(s) skipped); most urgent: {head}")
    return Result(msg=msg, facts={"advisories": facts})


def _path(name: str, ctx: Any) -> Path:
    path = Path(name)
    return path if path.is_absolute() else Path(getattr(ctx, "playbook_dir", None)
                                                or Path.cwd()) / path
