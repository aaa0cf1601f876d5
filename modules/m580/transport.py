"""Firmware transfer and restore-previous-version: the transport interface and its two kinds.

A real M580 takes firmware only through Schneider's tools (EcoStruxure Automation Device
Maintenance, Control Expert, Unity Loader) over UMAS, which has no public API. So the transfer
is an interface: `SimulatorTransport` speaks to otpatch's simulator (its CIP firmware loader
object); on a host the inventory marks `simulator: false` the modules take a guided step
instead (guided.py: a person in EADM, an attestation, public reads back), and
`VendorToolTransport` is the plug point for a site that scripts its tool: a site transport
would be chosen in the modules' guided branch (update.py `_guided`) and still be read back
through public reads. Unplugged it refuses before sending anything and never pretends a
transfer happened. `M580Driver.transport()` hands out the simulator's only to a host that
answers as one."""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.cip import objects
from otpatch.modules.cip.session import CipSession
from otpatch.modules.m580.registers import TransferState
from otpatch.modules.m580.versions import FirmwareVersion
from otpatch.modules.simulator_only import NotOnRealDevice

PORTS = ("usb", "ethernet_mgmt")
CHUNK = 32 * 1024  # bytes per loader request (an encapsulation frame holds up to 64 KiB)


class TransportUnavailable(NotOnRealDevice):
    """No transport for a real CPU is plugged in; the message starts with "not available on
    a real device: "."""


@dataclass(frozen=True)
class TransferStatus:
    """What the device says about the last transfer."""

    state: TransferState
    progress: int  # percent
    device_sha256: str  # the SHA-256 the device computed over what it received; "" until done


class FirmwareTransport(Protocol):
    """How an image reaches a CPU, and how the CPU is asked to go back to its previous one."""

    name: str

    def send_image(self, image: bytes, version: FirmwareVersion, port: str) -> None:
        """Hand the whole image to the device and start the update; returns at once."""

    def status(self) -> TransferStatus:
        """The device's view of the transfer under way or last done."""

    def restore_previous(self) -> None:
        """Start "PLC - Restore Previous Version"; returns at once."""


class SimulatorTransport:
    """The simulator's firmware loader object (CIP class 0x65) over EtherNet/IP."""

    name = "simulator"

    def __init__(self, address: str, who: str, timeout: float):
        self.address, self.who, self.timeout = address, who, timeout

    def _session(self) -> CipSession:
        return CipSession(self.address, self.who, self.timeout)

    def send_image(self, image: bytes, version: FirmwareVersion, port: str) -> None:
        begin = objects.loader_begin(len(image), port, version.major, version.minor,
                                     sha256_hex(image))
        what = f"{self.who}: firmware loader"
        with self._session() as s:
            s.call(objects.LOADER_BEGIN, objects.FIRMWARE_LOADER, data=begin, what=what)
            for offset in range(0, len(image), CHUNK):
                s.call(objects.LOADER_CHUNK, objects.FIRMWARE_LOADER, what=what,
                       data=struct.pack("<I", offset) + image[offset:offset + CHUNK])
            s.call(objects.LOADER_COMMIT, objects.FIRMWARE_LOADER, what=what)

    def status(self) -> TransferStatus:
        with self._session() as s:
            raw = s.get_all(objects.FIRMWARE_LOADER, what=f"{self.who}: firmware loader")
        loader = objects.LoaderStatus.decode(raw)
        return TransferStatus(TransferState(loader.state), loader.progress, loader.reported_sha256)

    def restore_previous(self) -> None:
        with self._session() as s:
            s.call(objects.LOADER_RESTORE_PREVIOUS, objects.FIRMWARE_LOADER,
                   what=f"{self.who}: restore previous version")


class VendorToolTransport:
    """The plug point for a real CPU. A site that scripts EcoStruxure Automation Device
    Maintenance or Control Expert implements FirmwareTransport with it (the three methods
    above); the modules' guided branch is where it would replace the person, the read-back
    staying public (FC 43/14 and the CIP Identity, never the simulator's register map).
    Until then every call refuses with "not available on a real device: ..."."""

    name = "vendor-tool"
    WHY = ("{what} on a real M580 goes through EcoStruxure Control Expert / Unity Loader "
           "(UMAS, proprietary, no public API) and no site transport is plugged in; on a host "
           "marked `simulator: false` the step is guided: a person does it in EcoStruxure "
           "Automation Device Maintenance and attests it")

    def __init__(self, who: str):
        self.who = who

    def send_image(self, image: bytes, version: FirmwareVersion, port: str) -> None:
        raise TransportUnavailable(f"{self.who}: " + self.WHY.format(what="firmware transfer"))

    def status(self) -> TransferStatus:
        raise TransportUnavailable(f"{self.who}: " + self.WHY.format(what="transfer status"))

    def restore_previous(self) -> None:
        raise TransportUnavailable(f"{self.who}: " + self.WHY.format(
            what="PLC - Restore Previous Version"))
