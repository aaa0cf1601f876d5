"""The mGuard HTTPS driver: the CGI interface of mGuard 10.x, over `requests`, with basic auth
and the certificate verified or pinned (tls.py). See README.md in this folder for every path.

Real mGuard 10.x serves nph-status.cgi, nph-action.cgi, nph-vpn.cgi and nph-diag.cgi over
HTTPS with basic auth (manual, appendix "CGI interface"; `nph-action.cgi?action=tools%2F...`).
The script names and the auth are modelled on the device; the `action` values, the answers'
`key=value` line format and the upload/install split are ours, served by sim.py, and must be
checked against a real unit (UM EN MGUARD APPNOTES) before production use."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from otpatch.engine.errors import DeviceUnreachable, RunError
from otpatch.modules.mguard import creds
from otpatch.modules.mguard.tls import PinnedAdapter, Trust, presented_fingerprint

LOG = logging.getLogger(__name__)

STATUS = "/nph-status.cgi"
ACTION = "/nph-action.cgi"
SIM_IDENTITY = "/sim/identity"  # simulator only
SIM_ADVANCE = "/sim/advance"    # simulator only
TIMEOUT = (5.0, 30.0)           # connect, read (seconds)
UPLOAD_TIMEOUT = (5.0, 600.0)
# A kept-alive connection the device dropped (a reboot) is retried once, for GET only:
# reading twice is harmless, an action sent twice is not.
RETRY = Retry(total=2, connect=1, read=1, status=0, other=0, allowed_methods={"GET"},
              raise_on_status=False, backoff_factor=0)


class AuthRefused(RunError):
    """The device refused the credentials (HTTP 401)."""


class CertificateRefused(RunError):
    """The device's certificate is not the trusted one: nothing was sent to it."""


class DeviceAnswer(RunError):
    """The device answered, but not as expected (an HTTP error, an unreadable answer)."""


def endpoint_of(host: Any) -> tuple[str, int]:
    """(address, port) of the host's `https` endpoint: `10.0.0.1`, `10.0.0.1:8443` or
    `https://10.0.0.1:443`; the port defaults to 443."""
    raw = str((host.endpoints or {}).get("https") or "")
    if not raw:
        raise DeviceUnreachable(f"{host.name}: no `https` endpoint in the inventory")
    text = raw.split("://", 1)[-1].rstrip("/")
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        return address, int(rest.lstrip(":") or 443)
    address, _, port = text.partition(":")
    return address, int(port or 443)


def parse_kv(text: str) -> dict[str, str]:
    """`key=value` lines (the CGI answers) -> dict; blank lines and `#` comments skipped."""
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


class MguardDriver:
    """One mGuard over HTTPS. Raises DeviceUnreachable (no answer), CertificateRefused,
    AuthRefused or DeviceAnswer; the password is read from where the inventory says."""

    def __init__(self, host: Any, *, timeout: tuple[float, float] = TIMEOUT,
                 login: bool = True):
        self.host, self.timeout = host, timeout
        self.address, self.port = endpoint_of(host)
        netloc = f"[{self.address}]" if ":" in self.address else self.address
        self.base = f"https://{netloc}:{self.port}"
        self.trust = Trust.for_host(host)
        self.session = self._session(login)

    def _session(self, login: bool) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxies or .netrc between us and a field device
        session.verify = self.trust.ca_file or True
        session.mount("https://", PinnedAdapter(self.trust.pin, self.trust.ca_file,
                                                max_retries=RETRY) if self.trust.pin
                      else HTTPAdapter(max_retries=RETRY))
        if login:
            session.auth = (creds.username_of(self.host), creds.password_of(self.host))
        return session

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "MguardDriver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                data: bytes | BinaryIO | None = None, timeout: Any = None,
                expect: tuple[int, ...] = (200,)) -> requests.Response:
        url = self.base + path
        LOG.debug("%s: %s %s %s", self.host.name, method, path, dict(params or {}))
        try:
            resp = self.session.request(method, url, params=params, data=data,
                                        timeout=timeout or self.timeout, allow_redirects=False)
        except requests.exceptions.SSLError as e:
            if _verification_failed(e):
                raise self._certificate_refused(e) from e
            raise DeviceUnreachable(f"{self.host.name}: TLS with {self.base} broke off "
                                    f"({_reason(e)})") from e
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
            raise DeviceUnreachable(f"{self.host.name}: no answer from {self.base} "
                                    f"({_reason(e)})") from e
        if resp.status_code == 401:
            raise AuthRefused(f"{self.host.name}: {self.base} refused the login of user "
                              f"{creds.username_of(self.host)!r} (HTTP 401): check the "
                              f"password in {creds.where_password(self.host)}")
        if resp.status_code not in expect:
            raise DeviceAnswer(f"{self.host.name}: {method} {path} answered HTTP "
                               f"{resp.status_code}: {resp.text.strip()[:200]}")
        return resp

    def _certificate_refused(self, e: Exception) -> CertificateRefused:
        seen = presented_fingerprint(self.address, self.port)
        presents = f"it presents {seen}" if seen else "its certificate could not be read"
        why = "not the pinned one" if "Fingerprints did not match" in str(e) else \
            f"not trusted ({_reason(e)})"
        return CertificateRefused(
            f"{self.host.name}: the HTTPS certificate of {self.base} is {why}; expected "
            f"{self.trust.describe()}; {presents}. Nothing was sent. If the device's "
            "certificate changed on purpose (a firmware update can regenerate it), confirm "
            "the new fingerprint out of band before trusting it")

    def get_kv(self, path: str, **params: str) -> dict[str, str]:
        return parse_kv(self.request("GET", path, params=params).text)

    def post_kv(self, path: str, data: Any = None, timeout: Any = None,
                **params: str) -> dict[str, str]:
        resp = self.request("POST", path, params=params, data=data, timeout=timeout,
                            expect=(200, 202))
        return parse_kv(resp.text)

    # -- device -------------------------------------------------------------------------------
    def version(self) -> dict[str, str]:
        """firmware, model, serial, part_number."""
        return self.get_kv(STATUS, action="version")

    def state(self) -> dict[str, str]:
        """state (ready | installing | importing ...), firmware, uptime_s."""
        return self.get_kv(STATUS, action="state")

    def firewall(self) -> dict[str, Any]:
        """rules_active, rules_configured, vlans (list of ints), restore (idle|restoring)."""
        raw = self.get_kv(STATUS, action="firewall")
        try:
            return {"rules_active": int(raw["rules_active"]),
                    "rules_configured": int(raw.get("rules_configured", raw["rules_active"])),
                    "vlans": [int(v) for v in raw.get("vlans", "").split(",") if v],
                    "restore": raw.get("restore", "idle")}
        except (KeyError, ValueError) as e:
            raise DeviceAnswer(f"{self.host.name}: unreadable firewall status ({e})") from e

    def tunnels(self) -> dict[str, str]:
        """VPN connection name -> up | down."""
        raw = self.get_kv(STATUS, action="vpn")
        return {k.split(".", 1)[1]: v for k, v in raw.items() if k.startswith("tunnel.")}

    def export_profile(self) -> bytes:
        return self.request("GET", ACTION, params={"action": "profile/export"}).content

    def import_profile(self, data: bytes) -> dict[str, str]:
        return self.post_kv(ACTION, data=data, action="profile/import")

    def upload_firmware(self, path: Path) -> dict[str, str]:
        """Stream the image; the device answers what it received (size, SHA-256, MD5) and
        the version the image carries."""
        with open(path, "rb") as f:
            return self.post_kv(ACTION, data=f, timeout=UPLOAD_TIMEOUT,
                                action="firmware/upload", filename=path.name)

    def install_firmware(self) -> dict[str, str]:
        return self.post_kv(ACTION, action="firmware/install")

    def reboot(self) -> dict[str, str]:
        return self.post_kv(ACTION, action="reboot")

    # -- simulator control (never on a real device) -------------------------------------------
    def sim_identity(self) -> dict[str, Any] | None:
        """The simulator's identity, or None when the server does not answer as one."""
        resp = self.request("GET", SIM_IDENTITY, expect=(200, 404, 401, 403))
        if resp.status_code != 200:
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def advance_sim_clock(self, seconds: float) -> None:
        """Let the simulator pass `seconds` of simulated time (a dry run's virtual clock)."""
        self.request("POST", SIM_ADVANCE, data=f"seconds={seconds:.3f}".encode())


_REFUSALS = ("Fingerprints did not match", "CERTIFICATE_VERIFY_FAILED", "doesn't match",
             "certificate verify failed")


def _verification_failed(e: Exception) -> bool:
    """An SSL error that is a refusal of the peer's certificate (not a dropped handshake)."""
    return any(mark in str(e) for mark in _REFUSALS)


def _reason(e: Exception) -> str:
    """The innermost cause of a requests error, short."""
    inner: BaseException = e
    while True:
        nxt = getattr(inner, "reason", None) or inner.__cause__ or inner.__context__
        if nxt is None or nxt is inner or not isinstance(nxt, BaseException):
            break
        inner = nxt
    text = str(inner) or type(inner).__name__
    return text if len(text) < 160 else text[:157] + "..."
