"""How otpatch trusts an mGuard's HTTPS certificate: verified against a CA file, or pinned
by its SHA-256 fingerprint (like an SSH known_hosts entry), or both.

Host variables (inventory):
  tls_ca_file:     PEM file of the CA that signed the device certificate, or of the device's
                   own self-signed certificate (the lab simulators write theirs there).
                   Checks the chain and that the certificate names the address we dial.
  tls_fingerprint: "sha256:AB:CD:..." (colons and case optional): the certificate must be
                   exactly this one. Checked on the TLS handshake, before a single byte of the
                   request (and so the password) is sent. The chain and the name are not
                   checked when only a pin is given: the pin is stronger than both.
Either or both; neither is an error: otpatch never talks to a device it cannot authenticate
(there is no `verify=False` anywhere)."""
from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from requests.adapters import HTTPAdapter

from otpatch.modules.contract.errors import InputError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class TrustMissing(InputError):
    """The inventory gives no way to authenticate a device's certificate."""


@dataclass(frozen=True)
class Trust:
    """A CA file, a pinned SHA-256 (64 lowercase hex digits), or both."""

    ca_file: str | None = None
    pin: str | None = None

    @classmethod
    def for_host(cls, host: Any) -> "Trust":
        ca_file = host.vars.get("tls_ca_file")
        pin = host.vars.get("tls_fingerprint")
        if not ca_file and not pin:
            raise TrustMissing(f"{host.name}: no tls_ca_file or tls_fingerprint in the "
                               "inventory: its HTTPS certificate cannot be authenticated")
        if ca_file and not Path(str(ca_file)).expanduser().is_file():
            raise TrustMissing(f"{host.name}: tls_ca_file {ca_file} does not exist")
        try:
            return cls(str(Path(str(ca_file)).expanduser()) if ca_file else None,
                       parse_fingerprint(str(pin)) if pin else None)
        except ValueError as e:
            raise TrustMissing(f"{host.name}: tls_fingerprint: {e}") from None

    def describe(self) -> str:
        parts = ([f"CA file {self.ca_file}"] if self.ca_file else []) + (
            [f"pinned {format_fingerprint(self.pin)}"] if self.pin else [])
        return " and ".join(parts)


def parse_fingerprint(text: str) -> str:
    """`sha256:AB:CD:...`, `AB:CD...` or plain hex -> 64 lowercase hex digits."""
    body = text.strip()
    if ":" in body and body.split(":", 1)[0].lower() in ("sha256", "sha-256"):
        body = body.split(":", 1)[1]
    hex_digits = body.replace(":", "").replace(" ", "").lower()
    if not _HEX64.match(hex_digits):
        raise ValueError(f"{text!r} is not a SHA-256 fingerprint (64 hex digits, e.g. "
                         "sha256:AB:CD:...)")
    return hex_digits


def format_fingerprint(hex_digits: str) -> str:
    """64 hex digits -> `sha256:AB:CD:...` (what `openssl x509 -fingerprint -sha256` shows)."""
    up = hex_digits.upper()
    return "sha256:" + ":".join(up[i:i + 2] for i in range(0, len(up), 2))


def fingerprint_of_der(der: bytes) -> str:
    return format_fingerprint(hashlib.sha256(der).hexdigest())


def fingerprint_of_pem(pem: str | bytes) -> str:
    text = pem.decode("ascii") if isinstance(pem, bytes) else pem
    return fingerprint_of_der(ssl.PEM_cert_to_DER_cert(text))


def presented_fingerprint(address: str, port: int, timeout: float = 2.0) -> str | None:
    """The fingerprint of the certificate a server presents (for an error message: nothing
    is sent but the TLS handshake); None when it cannot be fetched."""
    try:
        return fingerprint_of_pem(ssl.get_server_certificate((address, port), timeout=timeout))
    except (OSError, ValueError):
        return None


class PinnedAdapter(HTTPAdapter):
    """A requests adapter that accepts exactly one certificate, by its SHA-256.

    urllib3 checks `assert_fingerprint` against getpeercert(binary_form=True) on the socket
    right after the handshake and closes it on a mismatch, before the request is written.
    With a CA file as well, the chain is verified too; with the pin alone, chain validation
    is replaced by the pin (a self-signed device certificate has no chain)."""

    def __init__(self, pin: str, ca_file: str | None = None, **kwargs: Any):
        self.pin, self.ca_file = pin, ca_file
        self.pin_only_context = None if ca_file else _pin_only_context()
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert)
        pool_kwargs["assert_fingerprint"] = self.pin
        if self.pin_only_context is not None:
            pool_kwargs.update(cert_reqs="CERT_NONE", ca_certs=None, ca_cert_dir=None,
                               ssl_context=self.pin_only_context)
        return host_params, pool_kwargs

    def cert_verify(self, conn, url, verify, cert):  # requests resets the pool's TLS here
        super().cert_verify(conn, url, verify, cert)
        conn.assert_fingerprint = self.pin
        if not self.ca_file:
            conn.cert_reqs, conn.ca_certs, conn.ca_cert_dir = "CERT_NONE", None, None


def _pin_only_context() -> ssl.SSLContext:
    """TLS 1.2+ without a CA store: with a pin alone, the pin is the whole check (and the
    system's CA store, which a device's self-signed certificate is not in, is not read)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
