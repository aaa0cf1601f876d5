"""The device kinds an inventory host may be (`otpatch_device`), and the old inference from
part number and model for inventories that do not say.

The kinds are the schema's enum (schemas/inventory.schema.json `$defs.device_kind`; a test
keeps the two equal). A package that learns a new kind adds it to both."""
from __future__ import annotations

M580, X80, NOC, MGUARD, SOFTWARE = "m580", "x80", "noc", "mguard", "software"
DEVICE_KINDS = {
    M580: "a Modicon M580 CPU (hot standby included)",
    X80: "a Modicon X80 EIO drop adapter",
    NOC: "a Modicon M580 / X80 network module (BMENOC, BMXNOC): not a CPU",
    MGUARD: "a Phoenix Contact mGuard firewall",
    SOFTWARE: "software on a PC or server (engineering tools, SCADA): advisories only",
}

# Part number prefixes decide first: a BMENOC0321 whose model text says "M580" is a NOC.
_PART_PREFIXES = (
    (("BMEP58", "BMEH58"), M580),
    (("BMECRA", "BMXCRA"), X80),
    (("BMENOC", "BMXNOC", "BMENOS"), NOC),
)
_MODEL_WORDS = (("M580", M580), ("X80", X80), ("MGUARD", MGUARD))


def infer_device(part_number: str, model: str) -> str | None:
    """The kind an inventory without `otpatch_device` has always been taken for: by part
    number prefix, else by a word of the model text; None when neither says."""
    part = (part_number or "").upper().replace(" ", "")
    for prefixes, kind in _PART_PREFIXES:
        if part.startswith(prefixes):
            return kind
    text = (model or "").upper()
    for word, kind in _MODEL_WORDS:
        if word in text:
            return kind
    return None
