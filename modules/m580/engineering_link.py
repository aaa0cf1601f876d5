"""The 4.20 line: an M580 CPU on firmware 4.20 or later goes back to a version without the
Engineering Link feature (e.g. 3.20) only with a special firmware from Schneider support,
and then rejects and erases its application (Schneider FAQ000272937). The one place the
rule, its wording and its sources live: the modules refuse a plain way back across it before
sending anything, and the simulator refuses one too."""
from __future__ import annotations

from otpatch.modules.m580.versions import FirmwareVersion

ENGINEERING_LINK_SINCE = FirmwareVersion(4, 20)

# The article as found (English text; one localised copy names 4.10 instead of 3.20 and
# leaves out the special firmware: the stricter reading is the one built here).
FAQ000272937 = (
    "Schneider Electric FAQ000272937, \"Factory reset of M580 CPU with Engineering Link set to "
    "'Enforced'\" (products: M580 CPU with firmware 4.20 and up), Resolution: Method 1, "
    "EcoStruxure Automation Device Maintenance downgrades the CPU to firmware 3.20 with a "
    "special firmware from Schneider technical support, which checks whether the CPU's "
    "product version (PV) allows it; the CPU rejects and erases the application. Method 2, an "
    "M580 SD card (BMXRMS004GPF) and a spare M580 CPU of the same model: the application on "
    "the SD card is loaded at power-up. https://www.se.com/kr/ko/faqs/FAQ000272937 (English "
    "text; also /tw/zh/ and /be/fr/)")
CPU_STATES = (
    "EcoStruxure Control Expert 16.0 help, Modicon M580 Hardware Reference Manual, topic "
    "D-SE-0028879 \"Operating States\": NOCONF, the application program is not valid; STOP; "
    "HALT; RUN; OS DOWNLOAD, a controller firmware download is in progress "
    "(mirror: https://www.igatamus.com/CE_HELP_V16.0/eng/hardM580/hardM580_D-SE-0028879.htm)")
ARCHIVE_FILES = (
    "EcoStruxure Control Expert help, topic D-SA-0025860 (file types: *.STA Archived "
    "Application File, created by File > Save Archive once the project is built), "
    "https://filedn.eu/l6oFb0aAwOAyRLLaUMiUmzz/CE_HELP/eng/ref/ref_D-SA-0025860.htm; "
    "Schneider Electric FAQ000259996 (.STU, .STA, .ZEF, .XEF), "
    "https://se.com/tr/tr/faqs/FAQ000259996")
EADM = "EcoStruxure Automation Device Maintenance (EADM)"  # FAQ000272937's tool; no public API


def crosses_down(running: FirmwareVersion, target: FirmwareVersion) -> bool:
    """Whether going from `running` to `target` leaves 4.20 or later for a version before it."""
    return (not target.is_none and running >= ENGINEERING_LINK_SINCE
            and target < ENGINEERING_LINK_SINCE)


def crossing_refused(who: str, running: FirmwareVersion, target: FirmwareVersion) -> str:
    """Why a plain restore or transfer across the line is refused, and the two ways back."""
    return (f"{who}: going back from {running} to {target} crosses 4.20 downward: a CPU on "
            "firmware 4.20 or later goes back to a version without Engineering Link only with "
            "a special firmware from Schneider support, which checks the CPU's product "
            "version (PV), and the CPU then erases its application (Schneider "
            "FAQ000272937). The vendor-supported ways back: m580.downgrade with that special "
            "firmware, then m580.application_download of the as-found application backup; "
            "or m580.spare_swap to the pre-registered spare CPU with the application on its "
            "SD card. Nothing was sent")
