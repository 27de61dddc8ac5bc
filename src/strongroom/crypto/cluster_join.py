"""The authenticated key exchange that lets a new HSM join a cluster.

A fresh node offers an ephemeral X25519 public key. A member of the cluster answers with its own
ephemeral key, the cluster state sealed with AES-256-GCM under an HKDF-SHA256 key of the shared
secret (bound to both public keys), and an ECDSA signature over the whole transcript made with
the cluster key — the key the customer's CA certified. The joiner checks the certificate against
the trust anchor it was told to expect and the signature before it opens the state, so only a
holder of the cluster key can hand out the masking key, and only the holder of the offer's
private key can read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.crypto import rng

__all__ = [
    "JoinEnvelope",
    "JoinRejected",
    "backup_keypair",
    "new_offer",
    "open_join",
    "seal_join",
]

_INFO = b"strongroom cluster join v1"


class JoinRejected(Exception):
    """The envelope is not from a holder of the certified cluster key, or was altered."""


@dataclass(frozen=True, slots=True)
class JoinEnvelope:
    """What travels from the member to the joiner (all public except through the seal)."""

    sender_public: bytes
    nonce: bytes
    sealed: bytes
    signature: bytes


def new_offer() -> tuple[bytes, bytes]:
    """A fresh ephemeral X25519 key pair: (private raw, public raw)."""
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return raw, key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def backup_keypair(secret: bytes) -> tuple[bytes, bytes]:
    """The X25519 key pair backups are sealed to, derived from an installation secret:
    (private raw, public raw)."""
    raw = HKDF(hashes.SHA256(), 32, None, b"strongroom hsm backup key v1").derive(secret)
    key = X25519PrivateKey.from_private_bytes(raw)
    return raw, key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _key(shared: bytes, sender: bytes, receiver: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, None, _INFO + sender + receiver).derive(shared)


def _transcript(sender: bytes, receiver: bytes, nonce: bytes, sealed: bytes) -> bytes:
    return _INFO + sender + receiver + nonce + sealed


def seal_join(cluster_key_der: bytes, offer_public: bytes, payload: bytes) -> JoinEnvelope:
    """Seal ``payload`` for the offer's holder and sign it with the cluster key."""
    signer = serialization.load_der_private_key(cluster_key_der, password=None)
    if not isinstance(signer, ec.EllipticCurvePrivateKey):
        raise JoinRejected("the cluster key must be an EC key")
    mine = X25519PrivateKey.generate()
    sender = mine.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    try:
        shared = mine.exchange(X25519PublicKey.from_public_bytes(offer_public))
    except ValueError:
        raise JoinRejected("malformed offer") from None
    nonce = rng.random_bytes(12)
    sealed = AESGCM(_key(shared, sender, offer_public)).encrypt(nonce, payload, sender)
    signature = signer.sign(
        _transcript(sender, offer_public, nonce, sealed), ec.ECDSA(hashes.SHA256())
    )
    return JoinEnvelope(sender, nonce, sealed, signature)


def open_join(offer_private: bytes, envelope: JoinEnvelope, cluster_cert_pem: str) -> bytes:
    """Verify the signature against the cluster certificate, then open the payload.

    The caller checks separately that the certificate chains to the expected trust anchor and
    carries the cluster key found in the payload.
    """
    try:
        mine = X25519PrivateKey.from_private_bytes(offer_private)
        cert = x509.load_pem_x509_certificate(cluster_cert_pem.encode())
        public = cert.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise JoinRejected("the cluster certificate must carry an EC key")
        receiver = mine.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        public.verify(
            envelope.signature,
            _transcript(envelope.sender_public, receiver, envelope.nonce, envelope.sealed),
            ec.ECDSA(hashes.SHA256()),
        )
        shared = mine.exchange(X25519PublicKey.from_public_bytes(envelope.sender_public))
        key = _key(shared, envelope.sender_public, receiver)
        return AESGCM(key).decrypt(envelope.nonce, envelope.sealed, envelope.sender_public)
    except (InvalidSignature, InvalidTag, ValueError, UnsupportedAlgorithm, x509.InvalidVersion):
        raise JoinRejected("the join envelope failed verification") from None
