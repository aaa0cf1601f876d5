"""firmware.verify and firmware.stage: the package checked against the published hash."""
from __future__ import annotations

import shutil
from pathlib import Path

from otpatch.modules.contract.module import Module, Result
from otpatch.modules.firmware.hashing import file_digests, image_path, verify_file

PARAM = {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$",
         "description": "the name of a firmware param of the playbook",
         "x-otpatch-param": "firmware"}


def _image(args, ctx):
    """The firmware param's value (path, algorithm, published hash) or a failed Result."""
    image = (ctx.namespace.get("params") or {}).get(args["param"])
    if not isinstance(image, dict) or not {"path", "algorithm", "hash"} <= set(image):
        return None, Result(failed=True, msg=f"param {args['param']!r} is not a firmware param")
    return image, None


class Verify(Module):
    name = "firmware.verify"
    reaches_device = False  # it hashes a file on the otpatch host: no device, no target
    doc = ("Step 1 of the procedure: hash the downloaded firmware package with the algorithm "
           "its vendor published (SHA-256 for Schneider Electric, MD5 for Phoenix Contact) and "
           "compare with the published value pinned in the playbook. A SHA-256 is recorded "
           "whatever the algorithm (MD5 is broken for collision resistance). The verified hash "
           "becomes the fact the `hash_verified` requirement checks.")
    args_schema = {"type": "object", "properties": {"param": PARAM}, "required": ["param"],
                   "additionalProperties": False}

    def run(self, args, ctx) -> Result:
        image, problem = _image(args, ctx)
        if problem:
            return problem
        path = image_path(image, ctx.playbook_dir)
        try:
            check = verify_file(path, image["algorithm"], image["hash"])
        except OSError as e:
            return Result(failed=True, msg=f"cannot read firmware package {path}: "
                                           f"{e.strerror or e}")
        if not check.ok:
            return Result(failed=True, msg=f"{path.name}: {check.algorithm} {check.actual} does "
                                           f"not match the published {check.published}",
                          facts={"rejected": {args["param"]: check.fact()}})
        note = ("; MD5 is broken for collision resistance, so SHA-256 " f"{check.sha256} is "
                "recorded too" if check.algorithm == "md5" else "")
        return Result(msg=f"{path.name}: {check.algorithm} matches the published value{note}",
                      facts={"verified": {args["param"]: check.fact()}})


class Stage(Module):
    name = "firmware.stage"
    reaches_device = False  # a copy into the run's change store: no device, no target
    doc = ("Pre-stage a verified firmware package in the run's change store, so the transfer "
           "uses a copy nobody can swap; the copy is hashed again and must match what "
           "firmware.verify recorded.")
    args_schema = Verify.args_schema

    def run(self, args, ctx) -> Result:
        image, problem = _image(args, ctx)
        if problem:
            return problem
        verified = (ctx.facts.get("verified") or {}).get(args["param"])
        if not verified:
            return Result(failed=True, msg=f"{args['param']}: not verified in this run; "
                                           "run firmware.verify first")
        source = image_path(image, ctx.playbook_dir)
        staged = Path(ctx.run_dir) / "firmware" / source.name
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staged)
        sha256 = file_digests(staged)["sha256"]
        if sha256 != verified["sha256"]:
            return Result(failed=True, msg=f"staged copy of {source.name} has SHA-256 {sha256}, "
                                           f"verified {verified['sha256']}")
        return Result(changed=True, msg=f"staged {source.name} ({sha256[:16]}…)",
                      facts={"staged": {args["param"]: {"path": str(staged), "sha256": sha256}}})
