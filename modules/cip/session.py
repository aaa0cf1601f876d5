"""Explicit CIP messaging (TCP 44818) to one device through pycomm3: unconnected, no routing,
so it works against any EtherNet/IP target that answers the encapsulation protocol."""
from __future__ import annotations

import struct

from pycomm3 import CIPDriver
from pycomm3.exceptions import CommError

from otpatch.modules.contract.errors import DeviceUnreachable, OtpatchError
from otpatch.modules.cip import objects

DEFAULT_TIMEOUT = 2.0  # seconds: a device on the plant LAN answers in milliseconds


class CipServiceError(OtpatchError):
    """The device answered, but refused the service (a CIP general status other than 0)."""

    def __init__(self, what: str, status: int | None, detail: str):
        self.status = status
        super().__init__(f"{what}: {detail}")


class CipSession:
    """One session to one device; a context manager. `who` names the device in messages."""

    def __init__(self, address: str, who: str, timeout: float = DEFAULT_TIMEOUT):
        self.address, self.who = address, who
        self._driver = CIPDriver(address)
        self._driver.socket_timeout = timeout

    def __enter__(self) -> "CipSession":
        try:
            opened = self._driver.open()
        except CommError as e:
            self.__exit__()  # pycomm3 leaves the socket of a failed open behind
            raise DeviceUnreachable(f"{self.who}: no EtherNet/IP answer at {self.address}: "
                                    f"{e.__cause__ or e}") from e
        if not opened:
            self.__exit__()
            raise DeviceUnreachable(f"{self.who}: {self.address} refused an EtherNet/IP session")
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._driver.close()
        except CommError:
            pass  # the device went away; nothing left to close

    def call(self, service: int, class_code: int, instance: int = 1, attribute: int | None = None,
             data: bytes = b"", what: str = "") -> bytes:
        """Send one unconnected request; the reply data, or CipServiceError."""
        what = what or f"{self.who}: service 0x{service:02X} on class 0x{class_code:X}"
        try:
            tag = self._driver.generic_message(
                service=service, class_code=class_code, instance=instance,
                attribute=b"" if attribute is None else attribute, request_data=data,
                connected=False, unconnected_send=False, route_path=False,
                return_response_packet=True)  # failures are ours to report, not pycomm3's log
        except CommError as e:
            raise DeviceUnreachable(f"{what}: {self.address} stopped answering: "
                                    f"{e.__cause__ or e}") from e
        response = tag.value
        if not response:
            status = response.service_status
            raise CipServiceError(what, status, objects.status_text(status)
                                  if status is not None else str(response.error))
        return response.data or b""

    def get_all(self, class_code: int, instance: int = 1, what: str = "") -> bytes:
        return self.call(objects.GET_ATTRIBUTES_ALL, class_code, instance, what=what)

    def get_single(self, class_code: int, attribute: int, instance: int = 1,
                   what: str = "") -> bytes:
        return self.call(objects.GET_ATTRIBUTE_SINGLE, class_code, instance, attribute, what=what)

    def set_single(self, class_code: int, attribute: int, data: bytes, instance: int = 1,
                   what: str = "") -> None:
        self.call(objects.SET_ATTRIBUTE_SINGLE, class_code, instance, attribute, data, what=what)

    def identity(self) -> objects.CipIdentity:
        """The Identity object (class 1, instance 1) by Get_Attributes_All."""
        data = self.get_all(objects.IDENTITY, what=f"{self.who}: CIP Identity")
        try:
            return objects.CipIdentity.decode(data)
        except ValueError as e:
            raise CipServiceError(f"{self.who}: CIP Identity", None, str(e)) from e


def advance_clock(session: CipSession, seconds: float) -> None:
    """Tell an otpatch simulator to let `seconds` of simulated time pass (control object)."""
    ms = max(0, round(seconds * 1000))
    while ms > 0:
        step = min(ms, 0xFFFFFFFF)
        session.set_single(objects.SIM_CONTROL, objects.CTRL_ADVANCE_MS, struct.pack("<I", step),
                           what=f"{session.who}: simulator clock")
        ms -= step


def simulator_marker(session: CipSession) -> str | None:
    """The control object's marker, or None when the device has no such object."""
    try:
        raw = session.get_single(objects.SIM_CONTROL, objects.CTRL_MARKER,
                                 what=f"{session.who}: simulator control")
    except CipServiceError:
        return None
    return raw[1:1 + raw[0]].decode("ascii", "replace") if raw else ""
