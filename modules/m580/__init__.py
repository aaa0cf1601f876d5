"""Schneider Modicon M580 (and X80 EIO adapters): driver, simulator and modules."""

from otpatch.modules.m580.modules import Identity, SetMode, Status, VerifyVersion, WaitRun
from otpatch.modules.m580.probe import probe
from otpatch.modules.m580.update import FirmwareTransfer, RestorePrevious

MODULES: list = [Identity, Status, SetMode, FirmwareTransfer, VerifyVersion, RestorePrevious,
                 WaitRun]  # the package's Module classes, merged into the registry

SIMULATOR_PROBES = [probe]  # before a dry run: every M580 / X80 target answers as a simulator
