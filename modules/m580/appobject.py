"""The layouts of the simulated CPU's application store (CIP class 0x66) and hardware object
(class 0x67), otpatch's own classes (sim.py's docstring lists them): packed and unpacked here
only, for the simulator (answering) and appstore.py (asking)."""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

from otpatch.modules.cip.objects import short_string


class DownloadState(IntEnum):
    IDLE = 0
    IN_PROGRESS = 1  # the CPU is loading the downloaded image (not running an application)
    COMPLETE = 2


class SwapState(IntEnum):
    IDLE = 0
    IN_PROGRESS = 1  # the CPU is powered down and being replaced
    COMPLETE = 2


def crc32(image: bytes) -> int:
    """The application checksum the simulated CPU shows: CRC-32 (zlib) over the image."""
    return zlib.crc32(image) & 0xFFFFFFFF


def checksum_text(crc: int) -> str:
    return f"crc32:{crc:08x}"


def _text(data: bytes, at: int) -> str:
    n = data[at] if len(data) > at else 0
    return data[at + 1:at + 1 + n].decode("ascii", "replace")


@dataclass(frozen=True)
class ApplicationStatus:
    """Class 0x66, instance 1: attributes 1 present (USINT), 2 CRC-32 (UDINT), 3 size
    (UDINT), 4 download state (USINT), 5 name (SHORT_STRING); 0 and "" without one."""

    present: bool
    crc32: int
    size: int
    download: DownloadState
    name: str

    @property
    def checksum(self) -> str:
        return checksum_text(self.crc32) if self.present else ""

    def attributes(self) -> dict[int, bytes]:
        return {1: bytes([int(self.present)]), 2: struct.pack("<I", self.crc32),
                3: struct.pack("<I", self.size), 4: bytes([self.download]),
                5: short_string(self.name)}

    def encode(self) -> bytes:
        return b"".join(value for _, value in sorted(self.attributes().items()))

    @classmethod
    def decode(cls, data: bytes) -> "ApplicationStatus":
        if len(data) < 11:
            raise ValueError(f"application status of {len(data)} bytes, expected at least 11")
        present, crc, size, download = struct.unpack_from("<BIIB", data)
        return cls(bool(present), crc, size, DownloadState(download), _text(data, 10))

    def fact(self) -> dict:
        return {"present": self.present, "name": self.name, "checksum": self.checksum,
                "size": self.size, "download": self.download.name.lower()}


@dataclass(frozen=True)
class HardwareStatus:
    """Class 0x67, instance 1: attributes 1 product version (USINT), 2 swap state (USINT),
    3 spare registered (USINT, 0/1)."""

    product_version: int
    swap: SwapState
    spare_registered: bool

    def attributes(self) -> dict[int, bytes]:
        return {1: bytes([self.product_version]), 2: bytes([self.swap]),
                3: bytes([int(self.spare_registered)])}

    def encode(self) -> bytes:
        return b"".join(value for _, value in sorted(self.attributes().items()))

    @classmethod
    def decode(cls, data: bytes) -> "HardwareStatus":
        if len(data) < 3:
            raise ValueError(f"hardware status of {len(data)} bytes, expected 3")
        return cls(data[0], SwapState(data[1]), bool(data[2]))


def upload_request(offset: int, length: int) -> bytes:
    return struct.pack("<IH", offset, length)


def parse_upload_request(data: bytes) -> tuple[int, int]:
    if len(data) != 6:
        raise ValueError("upload request must be 6 bytes (offset UDINT, length UINT)")
    return struct.unpack("<IH", data)


def download_begin(size: int, crc: int, name: str) -> bytes:
    return struct.pack("<II", size, crc) + short_string(name)


def parse_download_begin(data: bytes) -> tuple[int, int, str]:
    """(size, declared CRC-32, name); ValueError when malformed."""
    if len(data) < 9 or len(data) != 9 + data[8]:
        raise ValueError("download begin must be size UDINT, CRC-32 UDINT, name SHORT_STRING")
    size, crc = struct.unpack_from("<II", data)
    return size, crc, _text(data, 8)
