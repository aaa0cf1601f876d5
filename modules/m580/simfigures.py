"""The simulated M580 CPU's figures in one place: durations (the article's, or the
simulator's own estimates where no public source gives one), the special downgrade's
product-version rule, and the stand-ins a simulator knows things by."""
from __future__ import annotations

# From the article this project is built from:
TRANSFER_S = 8 * 60  # a full BME P58 1020 image over the USB service port at 115,200 baud
REBOOT_S = 52  # the automatic reboot after a transfer: the article gives 45-60 s
RESTORE_S = 6 * 60  # Control Expert "PLC - Restore Previous Version", restart included
ABORT_AT = 0.37  # transfer_abort: the share of the transfer done when it breaks off
# A special downgrade (FAQ000272937) is a transfer like any other: TRANSFER_S, then REBOOT_S.

# No public source gives these: the simulator's estimates.
APP_DOWNLOAD_S = 3 * 60  # Control Expert downloads the application, then the CPU goes to RUN
SPARE_SWAP_S = 18 * 60  # a person swaps in the spare CPU with its SD card (15-20 minutes)
MIN_DOWNGRADE_PV = 5  # the lowest product version the special downgrade accepts (the FAQ
#                       leaves the check to Schneider support and names no figure)
SIM_PRODUCT_VERSION = 7  # the product version of a CPU whose inventory gives none
DEFAULT_APPLICATION = "M580_APP"  # the application of a CPU whose inventory names none

# The first bytes of a stand-in special downgrade firmware (playbooks/firmware/): the real one
# comes from Schneider support; the simulator knows the stand-in by this header only.
SPECIAL_FIRMWARE_MARKER = b"OTPATCH SIMULATOR STAND-IN: M580 SPECIAL DOWNGRADE FIRMWARE\n"
# CIP Identity status of a CPU without an application (NOCONF): not configured (bit 2
# clear) and extended status 0011, no I/O connections established (CIP Vol. 1 5-2.4).
NOCONF_STATUS = 0x0030
