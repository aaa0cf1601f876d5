"""The record's sign-off part, as blocks (blocks.py): approvals and what each signature
binds, attestations, deviations, budgets and the journal's verdict on the run."""
from __future__ import annotations

from typing import Any

from otpatch.engine.report.blocks import (Code, Heading, Para, Stamp, Strong, Table, value,
                                          words, yes)
from otpatch.modules.contract.durations import format_duration


def approvals(run: dict[str, Any]) -> list[Any]:
    head = Heading("Approvals", 3, "approvals")
    if not run["approvals"]:
        return [head, Para("No approval was given in this run.")]
    rows = tuple((a["person"] or "not in the register", Code(a["role"]), Code(a["gate"] or "-"),
                  a["reason"], Stamp(a["signed_at"]), Stamp(a["expires"] or "never"),
                  Strong("REVOKED") if a["revoked"] else "valid") for a in run["approvals"])
    blocks: list[Any] = [head, Table(("Person", "Role", "Gate", "Reason", "Signed at",
                                      "Expires", "Status"), rows,
                                     tuple("failed" if a["revoked"] else "" for a in run["approvals"]))]
    for a in run["approvals"]:
        blocks += [Heading(f"What {a['person'] or 'an unknown key'} ({a['role']}) signed", 4,
                           "signed"), Table(("Signed over", "Value"), _signed_over(a), (), "summary")]
    return blocks


BOUND_FIRST = ("playbook", "firmware", "evidence", "targets", "windows", "budgets")


def _signed_over(a: dict[str, Any]) -> tuple[tuple[Any, ...], ...]:
    """What the signature binds: the playbook, firmware and evidence first, the rest sorted."""
    over = a["signed_over"]
    keys = [k for k in BOUND_FIRST if k in over] + sorted(k for k in over if k not in BOUND_FIRST)
    rows: list[tuple[Any, ...]] = [(words(k), _bound(k, over[k])) for k in keys]
    rows += [("public key", Code(a["public_key"])), ("document", Code(a.get("document_id") or "-")),
             ("added by", a.get("added_by") or "-")]
    return tuple(rows)


def _bound(key: str, bound: Any) -> Any:
    """One thing an approval binds, in words: a playbook, firmware hashes, evidence entries."""
    if key == "playbook" and isinstance(bound, dict):
        return (f"{bound.get('name')} {bound.get('version')} ", Code(str(bound.get("hash"))))
    if key == "firmware" and isinstance(bound, dict):
        return _lines([(f"{n}: {f.get('algorithm')} ", Code(str(f.get("hash"))))
                       for n, f in sorted(bound.items())])
    if key == "evidence" and isinstance(bound, list):
        return _lines([(f"{e.get('state')} ({e.get('stage') or 'no stage'}) in {e.get('run_id')}"
                        f", entry #{e.get('entry')}, record ", Code(str(e.get("record") or "-")))
                       for e in bound])
    if key == "targets" and isinstance(bound, dict):
        return _lines([(f"{n}: " + ", ".join(_asset(x) for x in hosts),)
                       for n, hosts in sorted(bound.items())])
    if key == "windows" and isinstance(bound, dict):
        return _lines([(f"{n}: ", Stamp(w.get("start")), " to ", Stamp(w.get("end")))
                       for n, w in sorted(bound.items())])
    if key == "budgets" and isinstance(bound, dict):
        return ", ".join(f"{n} {format_duration(v) if isinstance(v, (int, float)) else value(v)}"
                         for n, v in sorted(bound.items()))
    if isinstance(bound, list) and all(isinstance(x, str) for x in bound):
        return ", ".join(bound) or "none"
    return value(bound)


def _asset(asset: Any) -> str:
    if not isinstance(asset, dict):
        return value(asset)
    return (f"{asset.get('asset')} ({asset.get('part_number') or 'part not read'}, serial "
            f"{asset.get('serial') or 'not read'}, firmware {asset.get('firmware') or 'not read'})")


def _lines(parts: list[tuple[Any, ...]]) -> Any:
    """Cells, one per line; `none` for none."""
    return tuple(p for i, cell in enumerate(parts) for p in (("\n",) if i else ()) + cell) or "none"


def attestations(run: dict[str, Any]) -> list[Any]:
    head = Heading("Attestations", 3, "attestations")
    if not run["attestations"]:
        return [head, Para("No attestation in this run.")]
    rows = tuple((Code(t["state"]), t["statement"], Code(t["role"]), t["person"] or "not named",
                  yes(t["confirmed"]), Stamp(t["at"] or "-"),
                  "signed attestation file" if t["signed"] else "typed confirmation",
                  yes(t["simulated"])) for t in run["attestations"])
    return [head, Table(("State", "Statement", "Role", "Person", "Confirmed", "At", "How",
                         "Simulated"), rows, tuple("" if t["confirmed"] else "failed"
                                                   for t in run["attestations"]))]


def post_change(run: dict[str, Any]) -> list[Any]:
    """The post-change check's findings (services and firewall against the as-found)."""
    rows = run.get("post_change") or []
    if not rows:
        return []
    return [Heading("Post-change check", 3, "post-change"),
            Table(("State", "Check", "Host", "Finding"),
                  tuple((Code(r["state"]), Code(r["check"]), r["host"] or "-", r["finding"])
                        for r in rows),
                  tuple("" if r["finding"] == "no finding" or r["finding"].startswith(
                      "services not checked") else "failed" for r in rows))]


def deviations(run: dict[str, Any]) -> list[Any]:
    head = Heading("Deviations, waivers and rollbacks", 3, "deviations")
    if not run["deviations"]:
        return [head, Para("No deviation: no waiver, failure or rollback.")]
    rows = tuple((Strong(words(d["kind"])), Code(d["state"] or "-"),
                  "-" if d.get("at") is None else format_duration(d["at"]), d["detail"])
                 for d in run["deviations"])
    return [head, Table(("Kind", "State", "At", "Detail"), rows,
                        tuple(d["kind"] for d in run["deviations"]))]


def budgets(run: dict[str, Any]) -> list[Any]:
    head = Heading("Budgets", 3, "budgets")
    budgets = run["budgets"]
    if not budgets:
        return [head, Para("No time budget.")]
    rows = tuple((Code(name), *_budget(b)) for name, b in sorted(budgets.items()))
    return [head, Table(("Budget", "Limit", "Used", "Over"), rows,
                        tuple("failed" if isinstance(b, dict) and b.get("over") else ""
                              for _, b in sorted(budgets.items())))]


def _budget(b: Any) -> tuple[Any, Any, Any]:
    if not isinstance(b, dict):
        return value(b), "", ""
    seconds = [format_duration(b[k]) if isinstance(b.get(k), (int, float)) else value(b.get(k))
               for k in ("limit", "used")]
    return seconds[0], seconds[1], Strong("OVER") if b.get("over") else "no"


def journal(run: dict[str, Any]) -> list[Any]:
    j = run["journal"]
    cp = j["checkpoint"]
    signed = ((f"covers {cp['entries']} entries, head ", Code(cp["head_hash"]),
               "; signed at ", Stamp(cp["signed_at"]), " by host key ", Code(cp["public_key"]))
              if cp else "none covers the record yet")
    verified = "yes" if j["verified"] else Strong("NO")
    rows = (("Entries", f"{j['entries']} (#{j['first']} to #{j['last']})"),
            ("Record hash", Code(j["record"]) if j["record"] else "none: the run has not ended"),
            ("Signed checkpoint", signed), ("Verified", verified),
            ("Problems", "\n".join(j["problems"]) or "none"))
    return [Heading("Journal", 3, "journal"), Table(("Journal", Code(run["run_id"])), rows, (),
                                                    "summary")]
