"""CIP object layouts over EtherNet/IP: the one place their bytes are packed and unpacked.

Used by the drivers (reading) and by the simulators (answering). The Identity object (class
0x01) and the Connection Manager object (class 0x06) are ODVA's (CIP Vol. 1 sections 5-2
and 3-4.1); the Forward_Open / Forward_Close requests and the class-1 I/O packets are laid
out in cip/connected.py. The simulator control (0x64) and firmware loader (0x65) objects are
otpatch's, in the vendor-specific class range 0x64-0xC7."""
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
CONNECTION_MANAGER = 0x06
SIM_CONTROL = 0x64
FIRMWARE_LOADER = 0x65

# Services
GET_ATTRIBUTES_ALL = 0x01
GET_ATTRIBUTE_SINGLE = 0x0E
SET_ATTRIBUTE_SINGLE = 0x10
FORWARD_CLOSE = 0x4E  # Connection Manager (CIP Vol. 1 3-5.5.3)
FORWARD_OPEN = 0x54  # Connection Manager (CIP Vol. 1 3-5.5.2)
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


# The Connection Manager's instance 1 counters (CIP Vol. 1 section 3-4.1, UINT each; the
# names as Wireshark's packet-cip.c dissects them), in attribute order 1-8.
CM_COUNTERS = ("open_requests", "open_format_rejects", "open_resource_rejects",
               "open_other_rejects", "close_requests", "close_format_requests",
               "close_other_requests", "connection_timeouts")
CM_COUNTER_NAMES = dict(zip(CM_COUNTERS, (
    "Open Requests", "Open Format Rejects", "Open Resource Rejects", "Open Other Rejects",
    "Close Requests", "Close Format Requests", "Close Other Requests", "Connection Timeouts")))
UINT_RANGE = 0x10000


@dataclass(frozen=True)
class ConnectionManagerCounters:
    """Connection Manager instance 1, attributes 1-8: what it counted since power-up, each
    a UINT that wraps at 65536. None for an attribute the device does not have (optional)."""

    open_requests: int | None = 0
    open_format_rejects: int | None = 0
    open_resource_rejects: int | None = 0
    open_other_rejects: int | None = 0
    close_requests: int | None = 0
    close_format_requests: int | None = 0
    close_other_requests: int | None = 0
    connection_timeouts: int | None = 0

    def attributes(self) -> dict[int, bytes]:
        """Get_Attribute_Single reply data by attribute number (those the device has)."""
        return {n: struct.pack("<H", value % UINT_RANGE)
                for n, value in enumerate(self.values(), start=1) if value is not None}

    def encode(self) -> bytes:
        return _all(self.attributes())

    def values(self) -> tuple[int | None, ...]:
        return tuple(getattr(self, name) for name in CM_COUNTERS)

    @classmethod
    def from_attributes(cls, found: dict[int, bytes | None]) -> "ConnectionManagerCounters":
        """From Get_Attribute_Single replies by attribute number (None: not answered)."""
        def value(n: int) -> int | None:
            raw = found.get(n)
            return None if raw is None else struct.unpack_from("<H", raw)[0]
        return cls(*(value(n) for n in range(1, len(CM_COUNTERS) + 1)))

    def fact(self) -> dict[str, int | None]:
        return dict(zip(CM_COUNTERS, self.values()))


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


# The simulated CPU's application store and hardware objects (otpatch's, vendor-specific
# range; layouts in m580/appobject.py). They stand in for what Control Expert (application
# upload / download over UMAS) and a person (swapping the CPU for its spare) do: no public API.
APPLICATION_STORE = 0x66
CPU_HARDWARE = 0x67
APP_UPLOAD_CHUNK = 0x4B  # offset UDINT, length UINT -> that many bytes of the image
APP_DOWNLOAD_BEGIN = 0x4C  # size UDINT, CRC-32 UDINT, name SHORT_STRING
APP_DOWNLOAD_CHUNK = 0x4D  # offset UDINT, bytes
APP_DOWNLOAD_COMMIT = 0x4E  # the image is complete: the CPU checks its CRC-32 and loads it
HW_SWAP_SPARE = 0x4B  # a person swaps in the pre-registered spare CPU with its SD card
