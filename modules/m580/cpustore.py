"""The simulated CPU's application store (CIP class 0x66) and hardware (class 0x67): the part
of device.py's SimulatedCpu that Control Expert's upload and download, and a person swapping
the CPU for its registered spare, stand for in a simulator (no public API: sim.py)."""
from __future__ import annotations

from otpatch.modules.cip import objects
from otpatch.modules.m580 import registers as R
from otpatch.modules.m580.appobject import (ApplicationStatus, DownloadState, HardwareStatus,
                                            SwapState)
from otpatch.modules.m580.simapp import (UPLOAD_MAX, Application, ApplicationDownload,
                                         Hardware, SimRefused)
from otpatch.modules.m580.simfigures import APP_DOWNLOAD_S, SPARE_SWAP_S
from otpatch.modules.m580.versions import NO_VERSION


class ApplicationAndHardware:
    """Mixed into SimulatedCpu, whose state (timeline, clock, config, state, running ...)
    these methods read and change; SimulatedCpu.reset() sets what they keep."""

    def application_status(self) -> ApplicationStatus:
        self.timeline.settle()
        app = self.application
        return ApplicationStatus(app is not None, app.crc32 if app else 0,
                                 len(app.image) if app else 0, self.download_state,
                                 app.name if app else "")

    def upload(self, offset: int, length: int) -> bytes:
        """`length` bytes of the application image from `offset` (Control Expert's upload)."""
        self.timeline.settle()
        if self.application is None:
            raise SimRefused(objects.STATE_CONFLICT, "no application in the CPU (NOCONF)")
        if length > UPLOAD_MAX or offset > len(self.application.image):
            raise SimRefused(objects.INVALID_VALUE, f"upload of {length} bytes at {offset}")
        return self.application.image[offset:offset + length]

    def begin_download(self, size: int, crc: int, name: str) -> None:
        self._refuse_if_busy()
        if self.state == R.CpuState.HALTED:  # hung at boot: Control Expert cannot connect
            raise SimRefused(objects.DEVICE_STATE_CONFLICT, "CPU is halted")
        if size <= 0:
            raise SimRefused(objects.INVALID_VALUE, "empty application image")
        self._download = ApplicationDownload(size, crc, name)

    def download_chunk(self, offset: int, data: bytes) -> None:
        if self._download is None:
            raise SimRefused(objects.STATE_CONFLICT, "no application download begun")
        self._download.add(offset, data)

    def commit_download(self) -> None:
        """The image complete and its CRC-32 as declared: the CPU stops (or stays without an
        application) while it loads it, then runs it."""
        if self._download is None:
            raise SimRefused(objects.STATE_CONFLICT, "no application download begun")
        received = self._download.complete()
        self._refuse_if_busy()
        self._download, self.downloads = None, self.downloads + 1
        self.download_state = DownloadState.IN_PROGRESS
        self.state = R.CpuState.STOP if self.application else R.CpuState.NOCONF
        self.timeline.at(self.clock.now() + APP_DOWNLOAD_S,
                         lambda due: self._loaded(received))

    def hardware_status(self) -> HardwareStatus:
        self.timeline.settle()
        return HardwareStatus(self.hardware.product_version, self.swap_state,
                              self.config.spare is not None)

    def swap_spare(self) -> None:
        """What a person does: power the CPU down, put the registered spare in its place
        with its SD card, power up (SPARE_SWAP_S; the simulator keeps answering meanwhile).
        Whatever the old CPU was doing (a transfer, a reboot, a download) ends with its power:
        a swap is refused only while another swap is under way."""
        self.timeline.settle()
        if self.swap_state == SwapState.IN_PROGRESS:
            raise SimRefused(objects.DEVICE_STATE_CONFLICT, "a spare swap is under way")
        spare = self.config.spare
        if spare is None:
            raise SimRefused(objects.STATE_CONFLICT, "no spare CPU registered (spare_cpu)")
        if self.hardware.serial == spare.serial:
            raise SimRefused(objects.STATE_CONFLICT, f"the spare {spare.serial} is already in")
        self.swaps += 1
        self.timeline.cancel()
        self._transfer, self._download = None, None
        self.download_state = DownloadState.IDLE if self.download_state == \
            DownloadState.IN_PROGRESS else self.download_state
        self.swap_state, self.state = SwapState.IN_PROGRESS, R.CpuState.REBOOTING
        self.timeline.at(self.clock.now() + SPARE_SWAP_S, self._swapped)

    # -- as simulated time passes
    def _loaded(self, application: Application) -> None:
        self.application, self.download_state = application, DownloadState.COMPLETE
        self.state = R.CpuState.RUN

    def _swapped(self, due: float) -> None:
        """The spare runs its own firmware, loads the application from its SD card at
        power-up (FAQ000272937 Method 2) and starts in RUN; it has no firmware history."""
        spare, c = self.config.spare, self.config
        pv = spare.product_version if spare.product_version is not None else c.product_version
        self.hardware = Hardware(spare.serial, spare.part_number or c.part_number, pv)
        self.running, self.staged, self.previous = spare.firmware or c.version, NO_VERSION, \
            NO_VERSION
        self.transfer_state, self.progress, self.reported_sha256 = R.TransferState.IDLE, 0, ""
        self._transfer, self.restore_state = None, R.RestoreState.IDLE
        self.application = Application.as_configured(c.application_name)
        self.swap_state, self.state = SwapState.COMPLETE, R.CpuState.RUN
