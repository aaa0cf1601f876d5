"""CIP object layouts over EtherNet/IP: the one place their bytes are packed and unpacked.

Used by the drivers (reading) and by the simulators (answering). The Identity object is the
ODVA one (class 0x01). The I/O connection diagnostics object (class 0x352) is the
simulator's own: neither its class number nor its layout is confirmed for a real X80 adapter
(no public source here; check the vendor's documentation before reading a real one). The
simulator control (0x64) and firmware loader (0x65) objects are otpatch's, in the
vendor-specific class range 0x64-0xC7."""
from __future__ import annotations

import struct
from dataclasses import dataclass

SCHNEIDER_VENDOR_ID = 243
VENDOR_NAMES = {SCHNEIDER_VENDOR_ID: "Schneider Electric", 1: "Rockwell Automation/Allen-Bradley"}
DEVICE_TYPE_PLC = 0x0E
DEVICE_TYPE_COMMS_ADAPTER = 0x0C
DEVICE_TYPE_NAMES = {DEVICE_TYPE_PLC: "programmable logic controller",
                     DEVICE_TYPE_COMMS_ADAPTER: "communications adapter"}
EXTENDED_STATUS_MASK = 0x00F0  # Identity status bits 4-7
STATUS_FIRMWARE_UPDATE = 0x0010  # extended status 0001: firmware update in progress
SIMULATOR_MARKER = "otpatch simulator"

# Class codes
IDENTITY = 0x01
SIM_CONTROL = 0x64
FIRMWARE_LOADER = 0x65
IO_CONNECTION_DIAGNOSTICS = 0x352

# Services
GET_ATTRIBUTES_ALL = 0x01
GET_ATTRIBUTE_SINGLE = 0x0E
SET_ATTRIBUTE_SINGLE = 0x10
LOADER_BEGIN = 0x4B  # size UDINT, port USINT, version USINT major, USINT minor, sha256[32]
LOADER_CHUNK = 0x4C  # offset UDINT, bytes
LOADER_COMMIT = 0x4D  # the image is complete: the device starts writing it
LOADER_RESTORE_PREVIOUS = 0x4E

# Simulator control attributes (class 0x64, instance 1)
CTRL_MARKER = 1  # SHORT_STRING "otpatch simulator"
CTRL_CLOCK_MS = 2  # ULINT: simulated milliseconds since the simulator started
CTRL_ADVANCE_MS = 3  # UDINT, set only: let this much simulated time pass at once
CTRL_TIME_SCALE = 4  # REAL: wall seconds per simulated second; 0 when only advanced by hand

# General status codes (CIP Vol. 1, appendix B), with the words a message uses
SUCCESS = 0x00
STATUS_TEXT = {
    0x05: "path destination unknown", 0x08: "service not supported",
    0x09: "invalid attribute value", 0x0C: "object state conflict",
    0x10: "device state conflict", 0x13: "not enough data", 0x14: "attribute not supported",
    0x15: "too much data", 0x16: "object does not exist",
}
PATH_UNKNOWN, NOT_SUPPORTED, INVALID_VALUE, STATE_CONFLICT = 0x05, 0x08, 0x09, 0x0C
DEVICE_STATE_CONFLICT, NOT_ENOUGH_DATA, ATTRIBUTE_NOT_SUPPORTED = 0x10, 0x13, 0x14
OBJECT_DOES_NOT_EXIST = 0x16


def status_text(code: int) -> str:
    return STATUS_TEXT.get(code, f"CIP general status 0x{code:02X}")


def short_string(text: str) -> bytes:
    raw = text.encode("ascii", "replace")[:255]
    return bytes([len(raw)]) + raw


@dataclass(frozen=True)
class CipIdentity:
    """Identity object instance 1, attributes 1-7 (and 8, state)."""

    vendor_id: int
    device_type: int
    product_code: int
    revision_major: int
    revision_minor: int
    status: int
    serial: int
    product_name: str
    state: int = 3  # operational

    def attributes(self) -> dict[int, bytes]:
        """Get_Attribute_Single reply data by attribute number (CIP Vol. 1, 5A-2.2)."""
        return {1: struct.pack("<H", self.vendor_id), 2: struct.pack("<H", self.device_type),
                3: struct.pack("<H", self.product_code),
                4: bytes([self.revision_major, self.revision_minor]),
                5: struct.pack("<H", self.status), 6: struct.pack("<I", self.serial),
                7: short_string(self.product_name), 8: bytes([self.state])}

    def encode(self) -> bytes:
        """Get_Attributes_All reply data: attributes 1-8 in order."""
        return _all(self.attributes())

    @classmethod
    def decode(cls, data: bytes) -> "CipIdentity":
        """From Get_Attributes_All reply data; ValueError when it is too short."""
        if len(data) < 15:
            raise ValueError(f"Identity reply of {len(data)} bytes, expected at least 15")
        vendor, dtype, code, major, minor, status, serial = struct.unpack_from("<HHHBBHI", data)
        n = data[14]
        name = data[15:15 + n].decode("ascii", "replace")
        state = data[15 + n] if len(data) > 15 + n else 0xFF
        return cls(vendor, dtype, code, major, minor, status, serial, name, state)

    @property
    def vendor(self) -> str:
        return VENDOR_NAMES.get(self.vendor_id, f"vendor id {self.vendor_id}")

    @property
    def firmware_update_in_progress(self) -> bool:
        return self.status & EXTENDED_STATUS_MASK == STATUS_FIRMWARE_UPDATE

    @property
    def serial_hex(self) -> str:
        return f"{self.serial:08x}"

    def fact(self) -> dict:
        return {"vendor_id": self.vendor_id, "vendor": self.vendor,
                "device_type": self.device_type,
                "device_type_name": DEVICE_TYPE_NAMES.get(self.device_type, "other"),
                "product_code": self.product_code,
                "revision": f"{self.revision_major}.{self.revision_minor:02d}",
                "status": self.status,
                "firmware_update_in_progress": self.firmware_update_in_progress,
                "serial": self.serial_hex, "product_name": self.product_name}


def _all(attributes: dict[int, bytes]) -> bytes:
    """Get_Attributes_All reply data: every attribute, in attribute-number order."""
    return b"".join(attributes[n] for n in sorted(attributes))


def list_identity_item(identity: CipIdentity, ip: str, port: int) -> bytes:
    """The CIP Identity item (type 0x0C) of a ListIdentity reply, with its CPF count."""
    sockaddr = struct.pack(">hH4s8x", 2, port, bytes(int(p) for p in ip.split(".")))
    body = struct.pack("<H", 1) + sockaddr + identity.encode()
    return struct.pack("<HHH", 1, 0x0C, len(body)) + body


@dataclass(frozen=True)
class IoConnectionDiagnostics:
    """One implicit I/O connection as an adapter sees it (class 0x352, one instance each):
    established, RPI in each direction (microseconds), timeouts and frames since power-up."""

    established: bool
    rpi_ot_us: int
    rpi_to_us: int
    timeouts: int
    frames: int

    _LAYOUT = "<BIIII"

    def attributes(self) -> dict[int, bytes]:
        """Attributes 1-5 (this simulator's numbering): the fields in order."""
        values = (int(self.established), self.rpi_ot_us, self.rpi_to_us,
                  self.timeouts & 0xFFFFFFFF, self.frames & 0xFFFFFFFF)
        return {n: struct.pack("<" + kind, value)
                for n, (kind, value) in enumerate(zip(self._LAYOUT[1:], values), start=1)}

    def encode(self) -> bytes:
        return _all(self.attributes())

    @classmethod
    def decode(cls, data: bytes) -> "IoConnectionDiagnostics":
        if len(data) < struct.calcsize(cls._LAYOUT):
            raise ValueError(f"I/O connection diagnostics of {len(data)} bytes, expected "
                             f"{struct.calcsize(cls._LAYOUT)}")
        established, ot, to, timeouts, frames = struct.unpack_from(cls._LAYOUT, data)
        return cls(bool(established), ot, to, timeouts, frames)


@dataclass(frozen=True)
class LoaderStatus:
    """The firmware loader object (class 0x65, instance 1): the last transfer's state."""

    state: int  # registers.TransferState
    progress: int  # percent
    port: int  # 0 none, 1 usb, 2 ethernet_mgmt
    reported_sha256: str  # what the device computed over the image it received; "" until done

    def attributes(self) -> dict[int, bytes]:
        """Attributes 1-4 (otpatch's numbering): state, progress, port, reported SHA-256."""
        digest = bytes.fromhex(self.reported_sha256) if self.reported_sha256 else bytes(32)
        return {1: bytes([self.state]), 2: bytes([self.progress]), 3: bytes([self.port]),
                4: digest}

    def encode(self) -> bytes:
        return _all(self.attributes())

    @classmethod
    def decode(cls, data: bytes) -> "LoaderStatus":
        if len(data) < 35:
            raise ValueError(f"loader status of {len(data)} bytes, expected 35")
        state, progress, port = struct.unpack_from("<BBB", data)
        digest = data[3:35]
        return cls(state, progress, port, digest.hex() if any(digest) else "")


LOADER_PORTS = {"usb": 1, "ethernet_mgmt": 2}


def loader_begin(size: int, port: str, major: int, minor: int, sha256: str) -> bytes:
    return struct.pack("<IBBB", size, LOADER_PORTS[port], major, minor) + bytes.fromhex(sha256)


def parse_loader_begin(data: bytes) -> tuple[int, int, int, int, str]:
    """(size, port code, major, minor, declared sha256); ValueError when malformed."""
    if len(data) != 39:
        raise ValueError("loader begin request must be 39 bytes")
    size, port, major, minor = struct.unpack_from("<IBBB", data)
    return size, port, major, minor, data[7:39].hex()
