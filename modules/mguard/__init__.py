"""Phoenix Contact FL mGuard: HTTPS driver, simulator and modules (see README.md here)."""

# name -> where its class is; imported when a playbook first uses it (drivers pull in
# pymodbus, pycomm3, requests and cryptography: `otpatch validate` stays fast)
MODULES = {
    "mguard.version": "otpatch.modules.mguard.status:Version",
    "mguard.export_profile": "otpatch.modules.mguard.profiles:ExportProfile",
    "mguard.import_profile": "otpatch.modules.mguard.profiles:ImportProfile",
    "mguard.firmware_update": "otpatch.modules.mguard.firmware:FirmwareUpdate",
    "mguard.wait_ready": "otpatch.modules.mguard.status:WaitReady",
    "mguard.check": "otpatch.modules.mguard.check:Check",
}

# probe(host) -> None (not this kind of device) | (answers as an otpatch simulator, detail)
SIMULATOR_PROBES = ["otpatch.modules.mguard.probe:probe"]

# lab() -> (fault names, start(hosts, faults, options)): the simulators of `otpatch sim up`
SIMULATORS = ["otpatch.modules.mguard.lab:lab"]
