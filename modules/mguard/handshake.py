"""The one thing otpatch sends a real mGuard by itself: a TLS handshake on its HTTPS port,
which proves the device answers and is the very device whose certificate the inventory pins
(or whose CA it names). No HTTP request follows, no credentials, nothing else.

Sources: RFC 8446 (TLS 1.3), section 4 "Handshake Protocol" and 4.4.2 "Certificate"
(https://www.rfc-editor.org/rfc/rfc8446): the server presents its certificate in the
handshake, before any application data; TLS 1.2 (RFC 5246, 7.4.2) likewise. The mGuard serves
its web UI over HTTPS (user manual mGuard 10.x / 8.x, section 4 "Management menu",
Management >> Web Settings; `HTTPS_REMOTE_LISTENPORT`, default 443, in its profiles)."""
from __future__ import annotations

import hashlib
import socket
import ssl
from typing import Any

from otpatch.modules.contract.errors import DeviceUnreachable
from otpatch.modules.mguard.driver import CertificateRefused, endpoint_of
from otpatch.modules.mguard.tls import Trust, format_fingerprint

HANDSHAKE_TIMEOUT = 5.0


def handshake(host: Any, timeout: float = HANDSHAKE_TIMEOUT) -> str:
    """Complete a TLS handshake with the host's `https` endpoint, check its certificate as
    the driver does (the pin, and/or the chain and name against the CA file), close, and
    return the fingerprint it presented. DeviceUnreachable when it does not answer;
    CertificateRefused when it is not the trusted certificate."""
    trust = Trust.for_host(host)
    address, port = endpoint_of(host)
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            with _context(trust).wrap_socket(sock, server_hostname=address) as tls:
                der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as e:
        raise CertificateRefused(f"{host.name}: the HTTPS certificate of {address}:{port} is "
                                 f"not trusted ({e.verify_message}); expected "
                                 f"{trust.describe()}. Nothing but the handshake was sent")
    except (OSError, ssl.SSLError) as e:
        raise DeviceUnreachable(f"{host.name}: no TLS handshake with {address}:{port} "
                                f"({e.strerror or e})") from e
    seen = hashlib.sha256(der or b"").hexdigest()
    if trust.pin and seen != trust.pin:
        raise CertificateRefused(
            f"{host.name}: {address}:{port} presents {format_fingerprint(seen)}, not the "
            f"pinned {format_fingerprint(trust.pin)}. Nothing but the handshake was sent. If "
            "the certificate changed on purpose (a firmware update can regenerate it), "
            "confirm the new fingerprint out of band before trusting it")
    return format_fingerprint(seen)


def _context(trust: Trust) -> ssl.SSLContext:
    """TLS 1.2+; the chain and name checked against the CA file when there is one, else
    the pin (checked after the handshake) is the whole check."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if trust.ca_file:
        ctx.load_verify_locations(trust.ca_file)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
