"""A stand-in device for the crash tests: a JSON file holding values, and an operations log.

It stands in for a PLC because the crash test must count, across SIGKILLs, every time a
device-changing action really ran and every read-back; a real device cannot report that.
The engine's behaviour under test (journal, resume, read-back) is the product's own."""
from __future__ import annotations

import json
import os
from pathlib import Path

from otpatch.modules.contract.module import Module, ReadBack, Result


def _log(device: Path, op: str, action: str) -> None:
    with open(device.with_suffix(".ops"), "a") as f:
        f.write(f"{op} {action}\n")
        f.flush()
        os.fsync(f.fileno())


def _values(device: Path) -> dict:
    return json.loads(device.read_text()) if device.exists() else {}


class SetValue(Module):
    name = "logdevice.set_value"
    doc = "Write key=value on the stand-in device (a JSON file), logging the operation."
    changes_device = True
    changes = ("value",)
    verifies = {"value": ()}  # it reads the key back after writing it
    read_back_doc = "read the key back and compare with the intended value"
    args_schema = {"type": "object", "required": ["device", "key", "value"],
                   "additionalProperties": False,
                   "properties": {"device": {"type": "string"}, "key": {"type": "string"},
                                  "value": {"type": ["string", "integer"]}}}

    def run(self, args, ctx) -> Result:
        device = Path(args["device"])
        values = _values(device)
        before = values.get(args["key"])
        values[args["key"]] = args["value"]
        tmp = device.with_suffix(".tmp")
        tmp.write_text(json.dumps(values))
        os.replace(tmp, device)
        _log(device, "apply", f"{args['key']}={args['value']}")
        seen = _values(device).get(args["key"])
        if seen != args["value"]:
            return Result(failed=True, changed=True, msg=f"{args['key']} reads back {seen!r}")
        return Result(changed=before != args["value"], msg=f"{args['key']}={args['value']}",
                      facts={args["key"]: args["value"]})

    def read_back(self, args, ctx) -> ReadBack:
        device = Path(args["device"])
        _log(device, "read_back", f"{args['key']}={args['value']}")
        value = _values(device).get(args["key"])
        if value == args["value"]:
            return ReadBack(True, Result(changed=True, msg=f"read back {args['key']}={value}",
                                         facts={args["key"]: value}))
        return ReadBack(False, Result(msg=f"read back {args['key']}={value!r}, not applied"))


MODULES = [SetValue]
