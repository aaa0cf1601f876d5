"""Risk: CVSS v3.x scores, compensating controls, due dates and the risk register."""

# name -> where its class is; imported when a playbook first uses it (drivers pull in
# pymodbus, pycomm3, requests and cryptography: `otpatch validate` stays fast)
MODULES = {
    "risk.assess": "otpatch.modules.risk.assess:Assess",
}

CLI = ["otpatch.modules.risk.cli:register"]  # register(subparsers, host): `otpatch risk ...`
SCHEMAS = ["controls.schema.json", "risk-register.schema.json", "patch-sources.schema.json"]
