"""Send one RFC 5424 syslog message over UDP (the SIEM's audit trail receiver)."""
from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from typing import Mapping

FACILITY_AUDIT = 13  # RFC 5424 table 1: "log audit"
SEVERITY_INFO = 6
ENTERPRISE = 32473  # RFC 5612: the enterprise number reserved for documentation and examples
MAX_DATAGRAM = 65000


class SendFailed(OSError):
    """The datagram could not be sent (no route, unknown host); one plain line."""


def format_5424(app: str, msgid: str, params: Mapping[str, str], text: str, *,
                sd_id: str = "otpatch", hostname: str | None = None,
                now: datetime | None = None) -> str:
    """<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID@ENTERPRISE k="v" ...] MSG"""
    pri = FACILITY_AUDIT * 8 + SEVERITY_INFO
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="microseconds")
    host = _token(hostname or socket.gethostname())
    sd = "".join(f' {k}="{_sd_escape(v)}"' for k, v in params.items())
    return (f"<{pri}>1 {stamp.replace('+00:00', 'Z')} {host} {_token(app)} {os.getpid()} "
            f"{_token(msgid)} [{sd_id}@{ENTERPRISE}{sd}] {text}")


def send_udp(host: str, port: int, message: str) -> None:
    """One datagram to host:port; SendFailed on any socket error."""
    data = message.encode("utf-8")[:MAX_DATAGRAM]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.sendto(data, address)
    except OSError as e:
        raise SendFailed(f"cannot send syslog to udp {host}:{port}: {e.strerror or e}") from e


def _sd_escape(value: str) -> str:
    """RFC 5424 section 6.3.3: '"', '\\' and ']' are escaped in PARAM-VALUE."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _token(value: str) -> str:
    """HOSTNAME, APP-NAME and MSGID are printable US-ASCII without spaces, or '-'."""
    cleaned = "".join(c for c in value if 33 <= ord(c) <= 126)
    return cleaned[:48] or "-"


def send_event(host: str, port: int, app: str, msgid: str, params: Mapping[str, str],
               text: str) -> None:
    """One RFC 5424 message (format_5424) to host:port over UDP; SendFailed (an OSError)
    when it cannot leave this machine. Declared as the package's SENDERS["siem"]."""
    send_udp(host, port, format_5424(app, msgid, params, text))
