"""Phoenix Contact FL mGuard: HTTPS driver, simulator and modules (see README.md here)."""

from otpatch.modules.mguard.firmware import FirmwareUpdate
from otpatch.modules.mguard.lab import LabHandle, start_simulators
from otpatch.modules.mguard.probe import probe
from otpatch.modules.mguard.profiles import ExportProfile, ImportProfile
from otpatch.modules.mguard.simdevice import FAULTS
from otpatch.modules.mguard.status import Check, Version, WaitReady

MODULES: list = [Version, ExportProfile, ImportProfile, FirmwareUpdate, WaitReady, Check]

# probe(host) -> None (not an mGuard) | (answers as an otpatch simulator, detail)
SIMULATOR_PROBES = [probe]

__all__ = ["MODULES", "SIMULATOR_PROBES", "FAULTS", "start_simulators", "LabHandle"]
