"""X.509 for HSM nodes: the node's TLS key pair, its self-signed certificate, the cluster CSR,
checking a customer-signed cluster certificate against its trust anchor, and (for tests and the
cluster tooling) a minimal customer CA that signs CSRs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from strongroom.crypto import pairwise, rng

__all__ = [
    "CertificateError",
    "CustomerCa",
    "encrypted_private_pem",
    "generate_node_key",
    "make_csr",
    "self_signed_certificate",
    "validate_cluster_certificate",
    "validate_signed_csr",
]

_ONE_DAY = dt.timedelta(days=1)
#: a certificate serial's random bits (``x509.random_serial_number``'s, from the tested generator)
_SERIAL_BITS = 159


class CertificateError(Exception):
    """A certificate, CSR or trust anchor was rejected; the message says why."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_key(der: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError("node key must be EC or RSA")
    return key


def _spki(key: x509.Certificate | x509.CertificateSigningRequest) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_node_key() -> bytes:
    """A fresh EC P-256 node key pair as PKCS#8 DER (TLS and cluster identity), pairwise
    tested."""
    key = ec.generate_private_key(ec.SECP256R1())
    pairwise.check(key)
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def encrypted_private_pem(der: bytes, password: bytes) -> bytes:
    """The node key as password-encrypted PKCS#8 PEM (for ``ssl.SSLContext.load_cert_chain``)."""
    return _load_key(der).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Strongroom"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "HSM"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def self_signed_certificate(der: bytes, common_name: str, days: int = 3650) -> str:
    """The node's self-signed HSM certificate (PEM), valid from yesterday for ``days``."""
    key = _load_key(der)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(rng.random_int(_SERIAL_BITS))
        .not_valid_before(_now() - _ONE_DAY)
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_csr(der: bytes, common_name: str) -> str:
    """A PEM CSR for the cluster certificate, signed by the node key."""
    key = _load_key(der)
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name(common_name))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _load_cert(pem: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise CertificateError(f"{what} is not a PEM certificate") from None


def _check_signed_by(cert: x509.Certificate, issuer: x509.Certificate, what: str) -> None:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateError(f"{what} is not signed by the trust anchor") from None


def _check_validity(cert: x509.Certificate, what: str) -> None:
    now = _now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise CertificateError(f"{what} is not within its validity period")


def validate_cluster_certificate(cert_pem: str, anchor_pem: str, node_key_der: bytes) -> None:
    """Check a signed cluster certificate before a node installs it.

    The checks of :func:`validate_signed_csr`, with this node's public key as the one the
    cluster certificate must carry.
    """
    node_spki = (
        _load_key(node_key_der)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    _checked(cert_pem, anchor_pem, lambda: node_spki, "this node's public key")


def validate_signed_csr(cert_pem: str, anchor_pem: str, csr_pem: str) -> None:
    """InitializeCluster's checks of the customer's certificates (cloudhsm.md §1.7).

    Both are PEM of at most 5000 characters. The trust anchor must be self-signed and, if it
    uses X.509 v3 extensions, have Basic Constraints with CA true; a v1 certificate (no
    extensions, as ``openssl x509 -req -signkey`` makes) is a root as it is for OpenSSL. [A v3
    certificate without extensions, which AWS's rule would let through, is refused: TLS clients
    would not take it as a CA.] The cluster certificate must be signed directly by the anchor,
    both must be valid now, and it must carry the CSR's public key. Every failure, including of
    the parts the parser reads lazily (issuer, key, extensions), is a :class:`CertificateError`.
    """
    _checked(
        cert_pem,
        anchor_pem,
        lambda: _spki(x509.load_pem_x509_csr(csr_pem.encode())),
        "the cluster CSR's public key",
    )


def _checked(cert_pem: str, anchor_pem: str, expected: Callable[[], bytes], what: str) -> None:
    try:
        cert = _checked_chain(cert_pem, anchor_pem)
        if _spki(cert) != expected():
            raise CertificateError(f"cluster certificate does not carry {what}")
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion):
        raise CertificateError("the certificate is malformed or of an unsupported kind") from None


def _checked_chain(cert_pem: str, anchor_pem: str) -> x509.Certificate:
    if len(cert_pem) > 5000 or len(anchor_pem) > 5000:
        raise CertificateError("certificates are limited to 5000 characters")
    anchor = _load_cert(anchor_pem, "trust anchor")
    cert = _load_cert(cert_pem, "cluster certificate")
    if anchor.version is not x509.Version.v1:
        try:
            bc = anchor.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            raise CertificateError("trust anchor lacks the Basic Constraints extension") from None
        if not bc.ca:
            raise CertificateError("trust anchor is not a CA certificate")
    if anchor.subject != anchor.issuer:
        raise CertificateError("trust anchor is not self-signed")
    _check_signed_by(anchor, anchor, "trust anchor")
    _check_signed_by(cert, anchor, "cluster certificate")
    _check_validity(anchor, "trust anchor")
    _check_validity(cert, "cluster certificate")
    return cert


class CustomerCa:
    """A self-signed customer CA (RSA-2048) that signs cluster CSRs, as ``openssl x509 -req``."""

    def __init__(self, common_name: str = "Customer CA") -> None:
        self._key = rsa.generate_private_key(65537, 2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(rng.random_int(_SERIAL_BITS))
            .not_valid_before(_now() - _ONE_DAY)
            .not_valid_after(_now() + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )

    @property
    def certificate_pem(self) -> str:
        """The trust anchor, ``customerCA.crt``."""
        return self._cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign_csr(self, csr_pem: str, days: int = 365) -> str:
        """Sign a node's CSR, returning the cluster certificate PEM."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        if not csr.is_signature_valid:
            raise CertificateError("CSR signature is invalid")
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self._cert.subject)
            .public_key(csr.public_key())
            .serial_number(rng.random_int(_SERIAL_BITS))
            .not_valid_before(_now() - _ONE_DAY)
            .not_valid_after(_now() + dt.timedelta(days=days))
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()
