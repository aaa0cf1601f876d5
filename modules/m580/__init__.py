"""Schneider Modicon M580 (and X80 EIO adapters): driver, simulator and modules."""

# name -> where its class is; imported when a playbook first uses it (drivers pull in
# pymodbus, pycomm3, requests and cryptography: `otpatch validate` stays fast)
MODULES = {
    "m580.identity": "otpatch.modules.m580.modules:Identity",
    "m580.health": "otpatch.modules.m580.modules:Health",
    "m580.status": "otpatch.modules.m580.modules:Status",
    "m580.set_mode": "otpatch.modules.m580.modules:SetMode",
    "m580.firmware_transfer": "otpatch.modules.m580.update:FirmwareTransfer",
    "m580.verify_version": "otpatch.modules.m580.modules:VerifyVersion",
    "m580.restore_previous": "otpatch.modules.m580.update:RestorePrevious",
    "m580.wait_run": "otpatch.modules.m580.modules:WaitRun",
    # the rollback across 4.20 (FAQ000272937): the application backup, the special
    # downgrade, the application put back and read back, the spare CPU
    "m580.application_backup": "otpatch.modules.m580.application:ApplicationBackup",
    "m580.downgrade": "otpatch.modules.m580.downgrade:Downgrade",
    "m580.application_download": "otpatch.modules.m580.appdownload:ApplicationDownload",
    "m580.verify_application": "otpatch.modules.m580.appdownload:VerifyApplication",
    "m580.spare_swap": "otpatch.modules.m580.spare:SpareSwap",
}

# probe(host) -> None (not this kind of device) | (answers as an otpatch simulator, detail)
SIMULATOR_PROBES = ["otpatch.modules.m580.probe:probe"]

# lab() -> (fault names, start(hosts, faults, options)): the simulators of `otpatch sim up`
SIMULATORS = ["otpatch.modules.m580.sim:lab"]
