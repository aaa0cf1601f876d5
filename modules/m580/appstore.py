"""The simulated CPU's application store (CIP class 0x66) and hardware object (class 0x67),
asked over EtherNet/IP: what Control Expert's upload / download and a person swapping in the
spare CPU stand for in the simulator. Simulator only: `for_simulator(drv)` hands it out after
the driver's simulator check, which refuses a host that does not answer as one."""
from __future__ import annotations

import struct

from otpatch.modules.cip import objects
from otpatch.modules.cip.session import CipSession
from otpatch.modules.m580 import appobject
from otpatch.modules.m580 import hosts as H
from otpatch.modules.m580.appobject import ApplicationStatus, HardwareStatus

CHUNK = 16 * 1024  # bytes per upload or download request

APPLICATION_STORE = ("{purpose} uses the otpatch simulator's application store (CIP class "
                     "0x66), which a real M580 does not have: there the application goes "
                     "through EcoStruxure Control Expert (UMAS, proprietary, no public API)")
HARDWARE = ("{purpose} uses the otpatch simulator's hardware object (CIP class 0x67, its "
            "stand-in for a person swapping the CPU), which a real M580 does not have")


class SimulatedApplicationStore:
    """One simulated CPU's classes 0x66 and 0x67."""

    def __init__(self, address: str, who: str, timeout: float):
        self.address, self.who, self.timeout = address, who, timeout

    def _session(self) -> CipSession:
        return CipSession(self.address, self.who, self.timeout)

    def status(self) -> ApplicationStatus:
        with self._session() as s:
            raw = s.get_all(objects.APPLICATION_STORE, what=f"{self.who}: application store")
        return ApplicationStatus.decode(raw)

    def upload(self, size: int) -> bytes:
        """The application image, `size` bytes, read back chunk by chunk."""
        what, image = f"{self.who}: application upload", bytearray()
        with self._session() as s:
            while len(image) < size:
                ask = min(CHUNK, size - len(image))
                image += s.call(objects.APP_UPLOAD_CHUNK, objects.APPLICATION_STORE,
                                data=appobject.upload_request(len(image), ask), what=what)
        return bytes(image)

    def download(self, name: str, image: bytes) -> None:
        """Hand the whole image to the CPU with its CRC-32; the CPU loads it, then runs it."""
        what = f"{self.who}: application download"
        begin = appobject.download_begin(len(image), appobject.crc32(image), name)
        with self._session() as s:
            s.call(objects.APP_DOWNLOAD_BEGIN, objects.APPLICATION_STORE, data=begin, what=what)
            for offset in range(0, len(image), CHUNK):
                s.call(objects.APP_DOWNLOAD_CHUNK, objects.APPLICATION_STORE, what=what,
                       data=struct.pack("<I", offset) + image[offset:offset + CHUNK])
            s.call(objects.APP_DOWNLOAD_COMMIT, objects.APPLICATION_STORE, what=what)

    def hardware(self) -> HardwareStatus:
        with self._session() as s:
            raw = s.get_all(objects.CPU_HARDWARE, what=f"{self.who}: hardware")
        return HardwareStatus.decode(raw)

    def swap_spare(self) -> None:
        with self._session() as s:
            s.call(objects.HW_SWAP_SPARE, objects.CPU_HARDWARE,
                   what=f"{self.who}: spare CPU swap")


def for_simulator(drv, purpose: str, what: str = APPLICATION_STORE
                  ) -> SimulatedApplicationStore:
    """The store of a host that answers as an otpatch simulator; NotOnRealDevice otherwise,
    with nothing sent but the identity read."""
    drv.simulator_check.require(what.format(purpose=purpose))
    address, port = H.endpoint(drv.host, "enip")
    return SimulatedApplicationStore(f"{address}:{port}", drv.host.name, drv.timeout)
