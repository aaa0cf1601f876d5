"""The mGuard simulator: an HTTPS server (stdlib http.server + ssl, in a thread) with basic
auth, the CGI paths the driver uses, and a simulator-only control channel:

  GET  /sim/identity   (no auth) {"simulator": "otpatch-mguard-sim", "device": NAME, ...}
  POST /sim/advance    (basic auth) body `seconds=N`: pass N seconds of simulated time

Every request is kept in `requests` (method, path, query, whether it carried a login) and
every completed TLS handshake counted in `handshakes`, so a test can prove what a host that
is not treated as a simulator received: nothing, or at most a handshake.

Its clock moves only through /sim/advance (a dry run's virtual clock drives it), or, when
started with a `time_scale` (real seconds per simulated second: 0.002 makes a 120 s reboot
take 0.24 s), also in real time. While the simulated device reboots, the device paths close
the connection without an answer (like a device whose web server is down); /sim/* answers.
Listens on loopback addresses only."""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import logging
import selectors
import shutil
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from otpatch.modules.mguard.simcert import load_or_create, self_signed, write_pair
from otpatch.modules.mguard.simdevice import (DeviceError, MguardDevice, SyslogSender,
                                              device_model)
from otpatch.modules.mguard.simmark import SIM_ID

LOG = logging.getLogger(__name__)
MAX_BODY = 512 * 1024 * 1024
TICK_S = 0.02
IDLE_WAKE_S = 1.0  # the accept loop's longest sleep (stop() wakes it at once)


class MguardSimulator:
    """One simulated mGuard served over HTTPS on `bind`:`port` (0: an ephemeral port)."""

    def __init__(self, name: str, *, username: str, password: str, port: int = 0,
                 bind: str = "127.0.0.1", faults: frozenset[str] = frozenset(),
                 time_scale: float | None = None, syslog_to: tuple[str, int] | None = None,
                 cert_dir: Path | None = None, **device: Any):
        if not loopback(bind):
            raise ValueError(f"simulators listen on loopback addresses only, not {bind}")
        if time_scale is not None and time_scale <= 0:
            raise ValueError("time_scale must be positive (real seconds per simulated second)")
        device_model(device.get("model"), device.get("firmware"), who=name)  # before any port
        self.name, self.bind, self.time_scale = name, bind, time_scale
        self._login = (username, password)
        self._tmp = Path(tempfile.mkdtemp(prefix="otpatch-mguard-sim-"))
        try:
            self.cert = load_or_create(cert_dir or self._tmp / "cert", name, (bind,))
            self._context = self.cert.server_context()
            self._first_cert = (self.cert, self._context)
            self._server = _Server((bind, port), self)  # OSError: the port is taken
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        sender = SyslogSender(syslog_to, bind) if syslog_to else None
        self.device = MguardDevice(name, faults=frozenset(faults), syslog=sender, **device)
        self.device.on_booted.append(self._booted)
        self.device.on_power.append(self._server.drop_connections)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.requests: list[dict[str, Any]] = []  # the request log, in arrival order
        self.handshakes = 0
        self._log_lock = threading.Lock()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"{self.bind}:{self.port}"

    @property
    def fingerprint(self) -> str:
        """The SHA-256 fingerprint of the certificate presented now."""
        return self.cert.fingerprint

    def tls(self) -> ssl.SSLContext:
        return self._context

    def identity(self) -> dict[str, Any]:
        return {"simulator": SIM_ID, "device": self.name, "model": self.device.model,
                "platform": self.device.platform.key,
                "sim_time": round(self.device.now, 3), "time_scale": self.time_scale,
                "note": "a simulator: not a Phoenix Contact device"}

    def check_login(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (hmac.compare_digest(user.encode(), self._login[0].encode())
                & hmac.compare_digest(password.encode(), self._login[1].encode()))

    def logged(self, method: str, path: str, login: bool) -> None:
        """Keep one request in the log (sent by the handler before it answers)."""
        url = urlsplit(path)
        with self._log_lock:
            self.requests.append({"method": method, "path": url.path, "query": url.query,
                                  "login": login})

    def handshake_done(self) -> None:
        with self._log_lock:
            self.handshakes += 1

    def reset(self, faults: frozenset[str]) -> None:
        """The device as delivered, with these faults, presenting its first certificate
        again (see MguardDevice.reset). Call it while no client is talking to it."""
        self.cert, self._context = self._first_cert
        self.device.reset(faults)

    def _booted(self, why: str) -> None:
        if why == "update" and "https_cert_changed" in self.device.faults:
            self.cert = write_pair(self._tmp / "cert-after-update",
                                   *self_signed(self.name, (self.bind,)))
            self._context = self.cert.server_context()
            LOG.info("%s: presents a new self-signed certificate %s", self.name,
                     self.fingerprint)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "MguardSimulator":
        self._spawn(self._serve, "https")
        if self.time_scale:
            self._spawn(self._tick, "clock")
        return self

    def _spawn(self, target: Callable[[], None], what: str) -> None:
        thread = threading.Thread(target=target, name=f"mguard-sim-{self.name}-{what}",
                                  daemon=True)
        thread.start()
        self._threads.append(thread)

    def _serve(self) -> None:
        """Accept connections until stop(). socketserver's serve_forever wakes every
        poll_interval (0.05 s here before) to look for a shutdown: a lab of 200 simulators
        polled 4000 times a second. This waits for a connection, waking once a second at
        most when idle; stop() knocks at the port, so it still returns at once. A poll()
        selector, as socketserver's: it holds no file descriptor of its own (a process past
        1024 of them breaks every select()-based client in it, pymodbus's among them)."""
        with selectors.PollSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            while not self._stop.is_set():
                if selector.select(IDLE_WAKE_S) and not self._stop.is_set():
                    self._server.handle_request()  # accepts the waiting one, hands it off

    def _knock(self) -> None:
        """Wake the accept loop for stop(): a connection to this simulator's own port,
        closed at once; the loop sees the stop before it would accept it."""
        try:
            socket.create_connection(self._server.server_address[:2], timeout=1).close()
        except OSError:
            pass  # the loop wakes within IDLE_WAKE_S anyway

    def _tick(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            self.device.advance((now - last) / self.time_scale)
            last = now

    def stop(self) -> None:
        if self._stop.is_set():
            return  # stopped already (stop() then leaving the with block)
        self._stop.set()
        if self._threads:
            self._knock()
        for thread in self._threads:
            thread.join(timeout=5)
        self._server.server_close()
        if self.device.syslog:
            self.device.syslog.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "MguardSimulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    timeout = 1.0  # handle_request's own wait, once _serve saw a connection waiting

    def __init__(self, address: tuple[str, int], sim: MguardSimulator):
        self.sim = sim
        self.connections: dict[Any, int] = {}  # socket -> the handler thread serving it
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def drop_connections(self) -> None:
        """A reboot drops every TCP connection: close them all, except the one whose request
        caused this (its handler closes it after answering)."""
        me = threading.get_ident()
        with self.connections_lock:
            others = [sock for sock, thread in self.connections.items() if thread != me]
        for sock in others:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms ACK stalls
        # the handshake runs in the handler's thread (setup), never in the accept loop
        return self.sim.tls().wrap_socket(sock, server_side=True,
                                          do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address) -> None:
        LOG.debug("mguard sim %s: connection from %s ended with an error", self.sim.name,
                  client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mGuard-simulator"
    timeout = 5
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        self.power_events = self.server.sim.device.power_events
        self.request.do_handshake()  # a failed one ends here: finish() is not called
        self.server.sim.handshake_done()
        with self.server.connections_lock:
            self.server.connections[self.request] = threading.get_ident()
        super().setup()

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.pop(self.request, None)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        LOG.debug("mguard sim %s: " + format, self.server.sim.name, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        sim.logged(method, self.path, "Authorization" in self.headers)
        if (method, url.path) == ("GET", "/sim/identity"):
            return self._send(200, json.dumps(sim.identity()), "application/json")
        if not sim.check_login(self.headers.get("Authorization")):
            return self._send(401, "authentication required\n",
                              headers={"WWW-Authenticate": 'Basic realm="mGuard"'})
        body = self._body() if method == "POST" else b""
        if body is None:
            return None
        if (method, url.path) == ("POST", "/sim/advance"):
            return self._advance(body)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with sim.device.lock:
            if not sim.device.answers_https:
                self.close_connection = True  # rebooting: no answer at all
                return None
            self._device_call(method, url.path, query, body)
        return None

    def _device_call(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        action = query.get("action", "")
        route = ROUTES.get((method, path, action))
        if route is None:
            return self._send(400 if path in CGI_PATHS else 404,
                              f"unknown request {method} {path} action={action!r}\n")
        status, call = route
        try:
            answer = call(self.server.sim.device, body, query)
        except DeviceError as e:
            return self._send(e.status, f"{e}\n")
        if isinstance(answer, dict):
            return self._send(status, "".join(f"{k}={v}\n" for k, v in answer.items()))
        return self._send(status, answer, "application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{self.server.sim.name}.atv"'})

    def _advance(self, body: bytes) -> None:
        try:
            seconds = float(parse_qs(body.decode("ascii"))["seconds"][0])
        except (KeyError, ValueError, UnicodeDecodeError):
            return self._send(400, "expected seconds=N\n")
        now = self.server.sim.device.advance(seconds)
        return self._send(200, json.dumps({"sim_time": round(now, 3)}), "application/json")

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            self._send(411, "a Content-Length up to 512 MiB is required\n")
            return None
        return self.rfile.read(int(length))

    def _send(self, status: int, text: str | bytes, ctype: str = "text/plain; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.send_response(status)
        if self.server.sim.device.power_events != self.power_events:
            self.send_header("Connection", "close")  # rebooted meanwhile: this one goes too
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


CGI_PATHS = ("/nph-status.cgi", "/nph-action.cgi")
Route = Callable[[MguardDevice, bytes, dict[str, str]], Any]
ROUTES: dict[tuple[str, str, str], tuple[int, Route]] = {
    ("GET", "/nph-status.cgi", "version"): (200, lambda d, b, q: d.version()),
    ("GET", "/nph-status.cgi", "state"): (200, lambda d, b, q: d.state()),
    ("GET", "/nph-status.cgi", "firewall"): (200, lambda d, b, q: d.firewall()),
    ("GET", "/nph-status.cgi", "vpn"): (200, lambda d, b, q: d.vpn()),
    ("GET", "/nph-action.cgi", "profile/export"): (200, lambda d, b, q: d.export_profile()),
    ("POST", "/nph-action.cgi", "profile/import"): (202, lambda d, b, q: d.import_profile(b)),
    ("POST", "/nph-action.cgi", "firmware/upload"):
        (200, lambda d, b, q: d.upload_firmware(b, q.get("filename", ""))),
    ("POST", "/nph-action.cgi", "firmware/install"): (202, lambda d, b, q: d.install_firmware()),
    ("POST", "/nph-action.cgi", "reboot"): (202, lambda d, b, q: d.reboot()),
}


def loopback(address: str) -> bool:
    """Whether `address` is a loopback IP address (simulators listen nowhere else)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
