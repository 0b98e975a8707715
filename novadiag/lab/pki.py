"""The lab's certificate authority and API server certificate.

Clients talk to the lab exactly as to a cluster: over TLS, verifying the server
against the ``certificate-authority-data`` of the kubeconfig (no
``insecure-skip-tls-verify``). So the lab needs its own CA and a server
certificate whose IP SANs cover every address a client may dial: the lab's
``127.N.0.1`` plus ``127.0.0.1``/``localhost``, and the in-cluster names of the
``kubernetes`` Service for completeness.

The CA is kept across restarts of a lab in the same state dir (a kubeconfig
written earlier stays valid); the server certificate is issued anew each start,
since the API address may change. ECDSA P-256 keeps generation in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=365)
DEFAULT_DNS_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")


@dataclass(frozen=True)
class Pki:
    """Paths of the lab's PEM files, and the CA certificate's bytes."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @property
    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()


def ensure_pki(pki_dir: Path, *, ip_addresses: Sequence[str],
               dns_names: Sequence[str] = DEFAULT_DNS_NAMES) -> Pki:
    """Load or create the CA in ``pki_dir`` and issue a fresh server certificate."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki = Pki(pki_dir / "ca.crt", pki_dir / "ca.key", pki_dir / "server.crt",
              pki_dir / "server.key")
    ca_cert, ca_key = _load_or_create_ca(pki)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_certificate(key, ca_cert, ca_key, ip_addresses, dns_names)
    _write_key(pki.server_key, key)
    pki.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pki


def _load_or_create_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if pki.ca_cert.exists() and pki.ca_key.exists():
        cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey) and cert.not_valid_after_utc > _now():
            return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "novadiag-lab-ca")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(pki.ca_key, key)
    pki.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _server_certificate(key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate,
                        ca_key: ec.EllipticCurvePrivateKey, ip_addresses: Sequence[str],
                        dns_names: Sequence[str]) -> x509.Certificate:
    ips = list(dict.fromkeys([*ip_addresses, "127.0.0.1"]))
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    sans += [x509.DNSName(name) for name in dict.fromkeys(dns_names)]
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
