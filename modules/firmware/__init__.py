"""Firmware packages: hash verification against the published value, staging."""

from otpatch.modules.firmware.verify import Stage, Verify

MODULES: list = [Verify, Stage]
