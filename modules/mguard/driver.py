"""The mGuard HTTPS driver: the CGI interface of mGuard 10.x, over `requests`, with basic auth
and the certificate verified or pinned (tls.py). See README.md in this folder for every path.

Real mGuard 10.x serves nph-status.cgi, nph-action.cgi, nph-vpn.cgi and nph-diag.cgi over
HTTPS with a login (user manual 10.5, 110191_en_09, appendix 15.1 "CGI interface",
https://help.mguard.com/en/mguard10/manual/10.5/110191_en_09/Section19/Section19.htm: the
four script names, the characters allowed in user names and passwords, and two examples,
`nph-vpn.cgi?name=Athen&cmd=up` and `nph-action.cgi?action=tools%2Ftcpdump-start&
interface=eth1`; everything else is deferred to UM EN MGUARD APPNOTES, not found).
The script names and the login are modelled on the device; every `action` value we send,
the answers' `key=value` line format and the upload/install split are ours, served by sim.py:
no public source documents them. So every call below is the otpatch simulator's own
interface: before the first one, the driver reads `/sim/identity` without credentials,
once, and unless the host answers as the simulator of this very host it refuses ("not
available on a real device: ...") with nothing else sent: no Basic-auth header, no upload,
no action. The credentials are attached only after that answer."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, BinaryIO, Mapping

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from otpatch.modules.contract.errors import DeviceUnreachable, RunError
from otpatch.modules.mguard import creds
from otpatch.modules.mguard.simmark import SIM_ID
from otpatch.modules.mguard.tls import PinnedAdapter, Trust, presented_fingerprint
from otpatch.modules.simulator_only import Answer, SimulatorCheck

LOG = logging.getLogger(__name__)

STATUS = "/nph-status.cgi"
ACTION = "/nph-action.cgi"
SIM_IDENTITY = "/sim/identity"  # simulator only; the one path read before the check
SIM_ADVANCE = "/sim/advance"    # simulator only
SIMULATOR_CALLS = (
    "{purpose} sends the otpatch simulator's own HTTPS calls (its `action=` names on "
    "nph-status.cgi and nph-action.cgi, /sim/), which no public source documents for a real "
    "mGuard (the 10.x manual, appendix \"CGI interface\", names the scripts and defers their "
    "parameters to UM EN MGUARD APPNOTES); on a real mGuard use its web UI, or `mg update` "
    "over SSH for an online update from its configured update server (same appendix, 15.2)")
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


def simulator_answer(identity: Mapping[str, Any] | None, host: Any, where: str) -> Answer:
    """Whether a `/sim/identity` answer is the otpatch simulator of this very host."""
    if not identity or identity.get("simulator") != SIM_ID:
        return False, f"{where} answers HTTPS but not as an otpatch simulator"
    if identity.get("device") != host.name:
        return False, (f"{where} is the simulator of {identity.get('device')!r}, not of this "
                       "host (check the inventory's endpoints)")
    return True, f"otpatch mGuard simulator at {where}"


class MguardDriver:
    """One mGuard over HTTPS. Raises DeviceUnreachable (no answer), CertificateRefused,
    AuthRefused, DeviceAnswer, or NotOnRealDevice (the host does not answer as an otpatch
    simulator); the password is read from where the inventory says, and sent only to a
    host that answered as a simulator. `purpose` names the step in refusals."""

    def __init__(self, host: Any, *, timeout: tuple[float, float] = TIMEOUT,
                 login: bool = True, purpose: str = "this step"):
        self.host, self.timeout, self.purpose = host, timeout, purpose
        self.address, self.port = endpoint_of(host)
        netloc = f"[{self.address}]" if ":" in self.address else self.address
        self.base = f"https://{netloc}:{self.port}"
        self.trust = Trust.for_host(host)
        self._login = (creds.username_of(host), creds.password_of(host)) if login else None
        self.session = self._session()
        self.simulator_check = SimulatorCheck(
            host, lambda: simulator_answer(self.sim_identity(), host, self.base))

    def _session(self) -> requests.Session:
        """No credentials yet: they are attached once the host answered as a simulator."""
        session = requests.Session()
        session.trust_env = False  # no proxies or .netrc between us and a field device
        session.verify = self.trust.ca_file or True
        session.mount("https://", PinnedAdapter(self.trust.pin, self.trust.ca_file,
                                                max_retries=RETRY) if self.trust.pin
                      else HTTPAdapter(max_retries=RETRY))
        return session

    def require_simulator(self) -> None:
        """Return once the host has answered as an otpatch simulator (asked at most once,
        `/sim/identity` without credentials), then log in; else NotOnRealDevice."""
        self.simulator_check.require(SIMULATOR_CALLS.format(purpose=self.purpose))
        if self._login is not None and self.session.auth is None:
            self.session.auth = self._login

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
        """One call of the device interface: every one is the simulator's (module doc), so
        the host is confirmed to answer as one first."""
        self.require_simulator()
        return self._send(method, path, params=params, data=data, timeout=timeout,
                          expect=expect)

    def _send(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
              data: bytes | BinaryIO | None = None, timeout: Any = None,
              expect: tuple[int, ...] | None = (200,)) -> requests.Response:
        """Send as it is; `expect=None` takes any HTTP status (the identity read)."""
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
        if expect is None:
            return resp
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
        """The simulator's identity, or None when the server does not answer as one. Sent
        without credentials (they are not attached before the answer), whatever the host."""
        resp = self._send("GET", SIM_IDENTITY, expect=None)
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
