"""The simulator's HTTPS identity: a self-signed certificate made with `cryptography`, like
the one an mGuard generates for itself, optionally kept under a state folder so that its
fingerprint stays the same across restarts (a pin in an inventory stays valid)."""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from otpatch.modules.contract.platform import create_private
from otpatch.modules.mguard.tls import fingerprint_of_pem

CERT_NAME = "https-cert.pem"
KEY_NAME = "https-key.pem"


@dataclass(frozen=True)
class CertFiles:
    """A certificate and its key on disk (ssl loads chains from files only)."""

    cert: Path
    key: Path

    @property
    def pem(self) -> str:
        return self.cert.read_text(encoding="ascii")

    @property
    def fingerprint(self) -> str:
        return fingerprint_of_pem(self.pem)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def self_signed(common_name: str, addresses: tuple[str, ...]) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for `common_name`, valid for the DNS names and IP
    addresses given (and localhost / 127.0.0.1), for ten years."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                         "otpatch simulator (not a Phoenix Contact device)")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(_alt_names(common_name, addresses)),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _alt_names(common_name: str, addresses: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for item in dict.fromkeys(("localhost", "127.0.0.1", common_name, *addresses)):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(item)))
        except ValueError:
            out.append(x509.DNSName(item))
    return out


def write_pair(folder: Path, cert_pem: bytes, key_pem: bytes) -> CertFiles:
    """Write a certificate and its key (the key readable by its owner only)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = CertFiles(folder / CERT_NAME, folder / KEY_NAME)
    fd = create_private(files.key, replace=True)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    files.cert.write_bytes(cert_pem)
    return files


def load_or_create(folder: Path, common_name: str, addresses: tuple[str, ...]) -> CertFiles:
    """The certificate kept in `folder`, made there first if missing or unusable."""
    files = CertFiles(folder / CERT_NAME, folder / KEY_NAME)
    if files.cert.is_file() and files.key.is_file():
        try:
            files.server_context()
            return files
        except (ssl.SSLError, OSError, ValueError):
            pass  # unusable: make a new one
    return write_pair(folder, *self_signed(common_name, addresses))
