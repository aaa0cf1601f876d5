"""JSON Schema fragments shared by module argument schemas."""

DURATION = {
    "description": "seconds, or a duration like 90s, 8m, 4h, 1h30m; at most 30 days",
    "oneOf": [
        {"type": "number", "minimum": 0, "maximum": 30 * 86400},
        {"type": "string", "pattern": r"^\s*([0-9]+(\.[0-9]+)?h)?\s*([0-9]+(\.[0-9]+)?m)?\s*"
                                      r"([0-9]+(\.[0-9]+)?s)?\s*([0-9]+(\.[0-9]+)?ms)?\s*$",
         "minLength": 1, "maxLength": 40},
    ],
    "x-otpatch-duration": True,  # lint's duration-bound rule checks the 30 days of a string
}

TARGET = {"type": "string", "description": "a target name declared under the playbook's targets",
          "x-otpatch-target": True}

TEXT = {"type": "string", "minLength": 1}

LABEL = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$",
         "description": "names this record in the facts, e.g. before / after / as_found"}

SHA256 = {"type": "string", "pattern": "^(sha256:)?[0-9a-fA-F]{64}$",
          "description": "a SHA-256, hex (a sha256: prefix allowed)"}
