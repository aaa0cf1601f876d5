"""A UDP syslog listener: what arrives on a port, from which address, when."""
from __future__ import annotations

import errno
import select
import socket
from dataclasses import dataclass
from typing import Any, Callable

MAX_DATAGRAM = 65535


class ListenFailed(Exception):
    """The port cannot be listened on (privileges, another daemon); one plain line."""


@dataclass(frozen=True)
class Message:
    at: float     # the run clock's time when it was read (simulated in a dry run)
    source: str   # sender's IP address
    text: str


class SyslogReceiver:
    """Listens on udp `bind`:`port` (port 0: an ephemeral one) until closed."""

    def __init__(self, bind: str, port: int, clock: Callable[[], float]):
        self.clock = clock
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.bind((bind, port))
        except OSError as e:
            self.sock.close()
            raise ListenFailed(_why(bind, port, e)) from e
        self.sock.setblocking(False)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def drain(self, grace: float = 0.0) -> list[Message]:
        """Every datagram waiting now; waits up to `grace` seconds for more to arrive."""
        out: list[Message] = []
        while select.select([self.sock], [], [], grace)[0]:
            try:
                data, addr = self.sock.recvfrom(MAX_DATAGRAM)
            except BlockingIOError:
                break
            out.append(Message(self.clock(), addr[0],
                               data.decode("utf-8", "replace").strip()))
        return out

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "SyslogReceiver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _why(bind: str, port: int, e: OSError) -> str:
    where = f"cannot listen on udp {bind}:{port}"
    if e.errno in (errno.EACCES, errno.EPERM):
        return (f"{where}: permission denied (ports below 1024 need root or "
                "CAP_NET_BIND_SERVICE)")
    if e.errno == errno.EADDRINUSE:
        return f"{where}: already in use (is a syslog daemon listening there?)"
    return f"{where}: {e.strerror or e}"
