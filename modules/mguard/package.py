"""The otpatch stand-in for an mGuard firmware package, and what otpatch can tell of a
package before it goes anywhere: its firmware version and platform.

A stand-in (the simulator lab's `playbooks/firmware/FL_MGUARD_*.bin`, the tests' packages)
starts with one header line, then filler text that says it is not firmware:

    MGUARD-SIM-FIRMWARE version=8.9.3 platform=RS model=FL MGUARD RS2000/RS4000

`platform` is a key of platform.PLATFORMS (an older header without it: the model's
platform). A real Phoenix Contact package is signed, in a format no public source documents:
otpatch reads nothing from it but the version its file name may carry (`..._10.5.0.bin`)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from otpatch.modules.mguard.platform import (MGUARD2, PLATFORMS, RS, SPLIT_SOURCE, Platform,
                                             classify)

MAGIC = b"MGUARD-SIM-FIRMWARE"
HEADER_BYTES = 512
_HEADER = re.compile(rb"^MGUARD-SIM-FIRMWARE version=(\S+)(?: platform=(\S+))? model=(.+)$")
_VERSION_IN_NAME = re.compile(r"(\d+\.\d+\.\d+)")
SERIES_MODEL = {RS.key: "FL MGUARD RS2000/RS4000", MGUARD2.key: "FL MGUARD 2000/4000"}


@dataclass(frozen=True)
class PackageInfo:
    """What a stand-in package's header says: its firmware, platform (None: unknown) and
    the model text it names."""

    version: str
    platform: Platform | None
    model: str


def read_header(data: bytes) -> PackageInfo | None:
    """The header of a stand-in package; None for any other file (a vendor package)."""
    found = _HEADER.match(data[:HEADER_BYTES].split(b"\n", 1)[0])
    if not found:
        return None
    version, key, model = (g.decode("ascii", "replace") if g else None
                           for g in found.groups())
    platform = PLATFORMS.get(key) if key else classify(model)
    return PackageInfo(str(version), platform, str(model))


def read_package(path: Path) -> PackageInfo | None:
    """The header of the package file at `path` (OSError when it cannot be read)."""
    with open(path, "rb") as f:
        return read_header(f.read(HEADER_BYTES))


def version_in_name(filename: str) -> str | None:
    """The X.Y.Z a vendor package's file name carries, if any."""
    named = _VERSION_IN_NAME.search(filename)
    return named.group(1) if named else None


def stand_in(version: str, model: str | None = None, platform: Platform | None = None,
             size: int = 64 * 1024) -> bytes:
    """A stand-in package of `size` bytes for firmware `version`: for `platform` (default:
    the model's, else the one whose line the version is of), naming `model` (default: the
    platform's series)."""
    platform = platform or classify(model) or next(
        (p for p in (RS, MGUARD2) if p.runs(version)), RS)
    model = model or SERIES_MODEL.get(platform.key, platform.name)
    header = MAGIC + f" version={version} platform={platform.key} model={model}\n".encode()
    note = (f"otpatch simulator lab: stand-in for mGuard firmware {version} "
            f"({platform.name}): NOT a real image\n").encode()
    body = note * (max(0, size - len(header)) // len(note) + 1)
    return header + body[:max(0, size - len(header))]


def refusal(path: Path, host: str, model: str, target: str) -> str | None:
    """Why a package must not go to device `host` of `model` for firmware `target`, if it
    must not: the device's platform unknown, the package or the target of another
    platform's line, or a stand-in holding another version. Read before any upload."""
    device = classify(model)
    if device is None:
        return f"{host}: cannot tell which firmware line its model {model!r} runs"
    try:
        info = read_package(path)
    except OSError:
        info = None  # unreadable: the hash check before the transfer says so
    if info is not None and info.platform is not device:
        what = info.platform.describe() if info.platform else "an unknown platform"
        return (f"the package {path.name} is for the {what} ({info.model}), but {host} "
                f"({model}) is of the {device.describe()}")
    named = info.version if info else version_in_name(path.name)
    for version, what in ((target, "the target firmware"), (named, f"the package {path.name}")):
        if version and not device.runs(version):
            return (f"{what} {version} is not for {host} ({model}), which is of the "
                    f"{device.describe()} ({SPLIT_SOURCE})")
    if info is not None and info.version != target:
        return (f"the package {path.name} holds firmware {info.version!r}, not the target "
                f"{target}")
    return None
