"""JSON Schema fragments shared by module argument schemas."""

DURATION = {
    "description": "seconds, or a duration like 90s, 8m, 4h, 1h30m",
    "oneOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?h)?\s*(\d+(\.\d+)?m)?\s*(\d+(\.\d+)?s)?"
                                      r"\s*(\d+(\.\d+)?ms)?\s*$", "minLength": 1},
    ],
}

TARGET = {"type": "string", "description": "a target name declared under the playbook's targets",
          "x-otpatch-target": True}

TEXT = {"type": "string", "minLength": 1}

LABEL = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$",
         "description": "names this record in the facts, e.g. before / after / as_found"}
