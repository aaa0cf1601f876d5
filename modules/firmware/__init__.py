"""Firmware packages: hash verification against the published value, staging."""

# name -> where its class is; imported when a playbook first uses it (drivers pull in
# pymodbus, pycomm3, requests and cryptography: `otpatch validate` stays fast)
MODULES = {
    "firmware.verify": "otpatch.modules.firmware.verify:Verify",
    "firmware.stage": "otpatch.modules.firmware.verify:Stage",
}
