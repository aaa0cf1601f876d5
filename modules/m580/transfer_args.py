"""What the firmware-changing M580 modules share about their arguments: the image, the port
and the version, and the checks made on them before anything is sent (never Modbus TCP 502;
the image hashed again right before it is used)."""
from __future__ import annotations

import hmac
from typing import Any

from otpatch.modules.contract.canonical import sha256_hex
from otpatch.modules.firmware.hashing import image_path, recheck_before_transfer
from otpatch.modules.m580.transport import PORTS

REFUSED_PORTS = {"modbus", "modbus_tcp", "modbus-tcp", "502", "tcp/502", "tcp 502"}
PORT_502 = ("refused: firmware is never transferred over Modbus TCP port 502. The article: "
            "\"Transfer M580 firmware via EcoStruxure Control Expert using the Ethernet "
            "management port. Do not use Modbus TCP port 502 for firmware transfer.\" "
            "Use port: ethernet_mgmt (production) or usb (the lab's service port, 115,200 baud)")
PORT_WORDS = {"usb": "the USB service port", "ethernet_mgmt": "the Ethernet management port"}
IMAGE = {"type": "object", "description": "the firmware param's value",
         "x-otpatch-image": True,  # lint: must be {{ params.NAME }} of a firmware param
         "properties": {"path": {"type": "string", "minLength": 1},
                        "algorithm": {"enum": ["sha256", "md5"]},
                        "hash": {"type": "string", "minLength": 1}},
         "required": ["path", "algorithm", "hash"]}
PORT = {"type": ["string", "integer"],
        "description": "usb (lab: USB service port) or ethernet_mgmt (production); "
                       "Modbus TCP 502 is refused"}
VERSION = {"type": "string", "minLength": 1}
ROLE = {"type": "string", "minLength": 1, "default": "operator",
        "description": "on a real CPU, who performs the step in the vendor's tool and attests "
                       "it (an inventory role; default operator)"}


def port_problem(port: Any) -> str | None:
    text = str(port).strip().lower()
    if text in REFUSED_PORTS:
        return PORT_502
    if text not in PORTS:
        return f"unknown port {port!r}: use usb or ethernet_mgmt"
    return None


def role_of(args: Any) -> str:
    return str(args.get("role") or ROLE["default"])


def verified_image(image: dict, ctx: Any) -> tuple[bytes, str | None]:
    """The image's bytes, hashed again right before the transfer (firmware.hashing's check),
    and the bytes actually sent checked against the published SHA-256."""
    problem = recheck_before_transfer(image, ctx)
    if problem:
        return b"", problem
    path = image_path(image, getattr(ctx, "playbook_dir", None))
    data = path.read_bytes()
    if image["algorithm"] == "sha256" and not hmac.compare_digest(
            sha256_hex(data), str(image["hash"]).lower()):
        return b"", f"firmware image {path} changed while it was being read"
    return data, None


def image_name(image: dict, ctx: Any) -> str:
    return image_path(image, getattr(ctx, "playbook_dir", None)).name
