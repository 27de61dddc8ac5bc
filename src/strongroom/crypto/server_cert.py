"""The API port's own certificate for ``serve --tls-self-signed``: an EC P-256 key and a
self-signed certificate naming the hosts a client reaches ``serve`` by (IP addresses and DNS
names in subjectAltName), which clients trust directly as its own anchor (the aws CLI profile's
``ca_bundle``)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.crypto import pairwise, rng

__all__ = ["certificate_hosts", "self_signed_server_certificate"]


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def self_signed_server_certificate(hosts: Iterable[str], days: int = 397) -> tuple[bytes, bytes]:
    """(certificate PEM, unencrypted PKCS#8 private key PEM) for ``hosts``, valid from an hour
    ago for ``days`` (397: what browsers accept of a server certificate)."""
    names = list(dict.fromkeys(h for h in hosts if h))
    if not names:
        raise ValueError("a server certificate needs at least one host")
    key = ec.generate_private_key(ec.SECP256R1())
    pairwise.check(key)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(rng.random_int(159))  # as x509.random_serial_number
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in names]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, False, False, False), True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def certificate_hosts(cert_pem: bytes) -> set[str]:
    """The hosts in a certificate's subjectAltName (IP addresses as text)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    ips = {str(ip) for ip in alt.get_values_for_type(x509.IPAddress)}
    return ips | set(alt.get_values_for_type(x509.DNSName))
