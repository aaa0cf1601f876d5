"""What the simulated CPU holds besides its firmware: its application (name, image, CRC-32)
and its hardware (serial, part number, product version), and an application download being
received. Values only: device.py's SimulatedCpu decides what happens to them."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from otpatch.modules.cip import objects
from otpatch.modules.m580.appobject import crc32
from otpatch.modules.m580.hardware import cip_serial_of

APPLICATION_SIZE = 40 * 1024  # a stand-in image: more than one upload request of UPLOAD_MAX
UPLOAD_MAX = 16 * 1024  # bytes the application store answers per upload request


class SimRefused(Exception):
    """The simulated device refuses a request: a CIP general status and the reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Application:
    """An application in the CPU (or on its SD card): its name and image."""

    name: str
    image: bytes

    @property
    def crc32(self) -> int:
        return crc32(self.image)

    @classmethod
    def as_configured(cls, name: str) -> "Application":
        """The stand-in image of the application `name`: the same bytes for the same name,
        so the CPU and its spare's SD card carry the same application."""
        seed, blocks = f"otpatch simulator application {name}".encode(), []
        while sum(map(len, blocks)) < APPLICATION_SIZE:
            seed = hashlib.sha256(seed).digest()
            blocks.append(seed)
        return cls(name, b"".join(blocks)[:APPLICATION_SIZE])


@dataclass(frozen=True)
class Hardware:
    """The CPU module itself: what the spare swap replaces."""

    serial: str
    part_number: str
    product_version: int

    @property
    def cip_serial(self) -> int:
        return cip_serial_of(self.serial)


@dataclass
class ApplicationDownload:
    """An application image being received, chunk by chunk, with its declared CRC-32."""

    size: int
    declared_crc: int
    name: str
    image: bytearray = field(default_factory=bytearray)

    def add(self, offset: int, data: bytes) -> None:
        if offset != len(self.image) or offset + len(data) > self.size:
            raise SimRefused(objects.STATE_CONFLICT, "chunk out of sequence")
        self.image += data

    def complete(self) -> Application:
        """The application received; refused when incomplete or its CRC-32 differs from
        the one declared (the CPU keeps what it had)."""
        if len(self.image) != self.size:
            raise SimRefused(objects.STATE_CONFLICT, "application image incomplete")
        received = Application(self.name, bytes(self.image))
        if received.crc32 != self.declared_crc:
            raise SimRefused(objects.INVALID_VALUE,
                             f"application CRC-32 {received.crc32:08x} of the image received, "
                             f"{self.declared_crc:08x} declared: not loaded")
        return received
