"""Advisories: CSAF 2.0 documents loaded, validated and matched against an inventory."""

# name -> where its class is; imported when a playbook first uses it (drivers pull in
# pymodbus, pycomm3, requests and cryptography: `otpatch validate` stays fast)
MODULES = {
    "advisories.match": "otpatch.modules.advisories.step:AdvisoriesMatch",
}

CLI = ["otpatch.modules.advisories.cli:register"]  # `otpatch advisories ...`
SCHEMAS = ["csaf/csaf_json_schema.json"]
