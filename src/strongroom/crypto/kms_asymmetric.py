"""Asymmetric recipes for KMS keys: generation, Sign/Verify, RSAES-OAEP, ECDH, ML-KEM.

Private keys enter and leave as PKCS#8 DER (the KMS stores them wrapped by the root key); public
keys as SubjectPublicKeyInfo DER. Algorithm names are AWS's (``RSASSA_PSS_SHA_256``...). Loaded
key objects are cached by their DER bytes, so a hot key is parsed once. Every failure that a
caller's input can cause is one of three exceptions without detail: :class:`BadSignature`,
:class:`DecryptFailed`, :class:`BadPublicKey`. ML-KEM (FIPS 203) is offered for the parameter
sets the installed ``cryptography`` implements (:data:`MLKEM_SPECS`: ML-KEM-768 and -1024; it has
no ML-KEM-512); its private keys are PKCS#8 in seed form.
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem, padding, rsa, utils

from strongroom.crypto import ed25519ph, pairwise

__all__ = [
    "MLKEM_SPECS",
    "BadPublicKey",
    "BadSignature",
    "DecryptFailed",
    "decapsulate",
    "derive_shared_secret",
    "encapsulate",
    "forget_loaded_keys",
    "generate_private",
    "import_private",
    "oaep_decrypt",
    "oaep_encrypt",
    "public_der",
    "sign",
    "verify",
]

_DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
_PKCS8 = serialization.PrivateFormat.PKCS8
_CURVES: dict[str, ec.EllipticCurve] = {
    "ECC_NIST_P256": ec.SECP256R1(),
    "ECC_NIST_P384": ec.SECP384R1(),
    "ECC_NIST_P521": ec.SECP521R1(),
    "ECC_SECG_P256K1": ec.SECP256K1(),
}
_RSA_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
_MLDSA: dict[str, Any] = {
    "ML_DSA_44": mldsa.MLDSA44PrivateKey,
    "ML_DSA_65": mldsa.MLDSA65PrivateKey,
    "ML_DSA_87": mldsa.MLDSA87PrivateKey,
}
_MLKEM: dict[str, Any] = {
    "ML_KEM_768": mlkem.MLKEM768PrivateKey,
    "ML_KEM_1024": mlkem.MLKEM1024PrivateKey,
}
#: The ML-KEM key specs this library can generate and use (``cryptography`` has no ML-KEM-512).
MLKEM_SPECS: tuple[str, ...] = tuple(_MLKEM)
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA_1": hashes.SHA1,
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}


class BadSignature(Exception):
    """The signature does not verify (or is not a well-formed signature)."""


class DecryptFailed(Exception):
    """RSAES-OAEP decryption failed."""


class BadPublicKey(Exception):
    """A caller's public key is malformed, of another type, or on another curve."""


def generate_private(spec: str) -> bytes:
    """A new private key of KMS key spec ``spec``, as PKCS#8 DER, once it has passed its
    pairwise consistency test (:mod:`strongroom.crypto.pairwise`: ``PairwiseFailure``, never a
    key, if it fails)."""
    key: Any
    if spec in _RSA_BITS:
        key = rsa.generate_private_key(65537, _RSA_BITS[spec])
    elif spec in _CURVES:
        key = ec.generate_private_key(_CURVES[spec])
    elif spec == "ECC_NIST_EDWARDS25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif spec in _MLDSA:
        key = _MLDSA[spec].generate()
    elif spec in _MLKEM:
        key = _MLKEM[spec].generate()
    else:
        raise ValueError(f"no asymmetric key spec {spec}")
    pairwise.check(key)
    return bytes(key.private_bytes(_DER, _PKCS8, serialization.NoEncryption()))


def import_private(der: bytes, spec: str) -> bytes | None:
    """A caller's PKCS#8 private key normalised to PKCS#8 DER if it is a key of ``spec``
    (RSA modulus size, curve, Ed25519), else None."""
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    fits = (
        (isinstance(key, rsa.RSAPrivateKey) and key.key_size == _RSA_BITS.get(spec))
        or (
            isinstance(key, ec.EllipticCurvePrivateKey)
            and spec in _CURVES
            and key.curve.name == _CURVES[spec].name
        )
        or (isinstance(key, ed25519.Ed25519PrivateKey) and spec == "ECC_NIST_EDWARDS25519")
    )
    if not fits:
        return None
    return bytes(key.private_bytes(_DER, _PKCS8, serialization.NoEncryption()))


_RAW_ENC = serialization.Encoding.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_RAW_PUB = serialization.PublicFormat.Raw


@functools.lru_cache(maxsize=2048)
def _private(der: bytes) -> Any:
    return serialization.load_der_private_key(der, password=None)


def forget_loaded_keys() -> None:
    """Drop every parsed private key kept for speed (called whenever KMS caches are dropped,
    so a deleted key's private key does not outlive it in memory)."""
    _private.cache_clear()
    _public_of.cache_clear()


@functools.lru_cache(maxsize=2048)
def _public_of(der: bytes) -> Any:
    return _private(der).public_key()


@functools.lru_cache(maxsize=256)
def _load_public(der: bytes) -> Any:
    try:
        return serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BadPublicKey from exc


def public_der(private_der: bytes) -> bytes:
    """The SubjectPublicKeyInfo DER of a PKCS#8 private key."""
    return bytes(_public_of(private_der).public_bytes(_DER, _SPKI))


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    return _HASHES[algorithm[-7:]]()


def _rsa_padding(algorithm: str, algo: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    if algorithm.startswith("RSASSA_PSS"):
        return padding.PSS(mgf=padding.MGF1(algo), salt_length=algo.digest_size)
    return padding.PKCS1v15()


def sign(private_der: bytes, algorithm: str, message: bytes, message_type: str) -> bytes:
    """Sign ``message`` (hashed here for RAW; the digest itself for DIGEST; the 64-byte μ for
    EXTERNAL_MU). The caller has checked that the algorithm fits the key and message type."""
    key = _private(private_der)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        if algorithm == "ED25519_PH_SHA_512":  # the message is the SHA-512 prehash
            seed = key.private_bytes(_RAW_ENC, _RAW_PRIV, serialization.NoEncryption())
            return ed25519ph.sign_digest(seed, message)
        return bytes(key.sign(message))
    if isinstance(key, mldsa.MLDSA44PrivateKey | mldsa.MLDSA65PrivateKey | mldsa.MLDSA87PrivateKey):
        return bytes(key.sign_mu(message) if message_type == "EXTERNAL_MU" else key.sign(message))
    algo = _hash(algorithm)
    chosen: Any = utils.Prehashed(algo) if message_type == "DIGEST" else algo
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, _rsa_padding(algorithm, algo), chosen)
    return bytes(key.sign(message, ec.ECDSA(chosen)))


def verify(
    key_der: bytes,
    algorithm: str,
    message: bytes,
    message_type: str,
    signature: bytes,
    *,
    is_private: bool = True,
) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is valid. ``key_der`` is the KMS key's
    PKCS#8 private key, or (``is_private`` False) a SubjectPublicKeyInfo."""
    pub = _public_of(key_der) if is_private else _load_public(key_der)
    try:
        _verify(pub, algorithm, message, message_type, signature)
    except (InvalidSignature, ValueError) as exc:
        raise BadSignature from exc


def _verify(pub: Any, algorithm: str, message: bytes, message_type: str, sig: bytes) -> None:
    if isinstance(pub, ed25519.Ed25519PublicKey):
        if algorithm == "ED25519_PH_SHA_512":
            if not ed25519ph.verify_digest(pub.public_bytes(_RAW_ENC, _RAW_PUB), message, sig):
                raise InvalidSignature
            return
        pub.verify(sig, message)
        return
    if isinstance(pub, mldsa.MLDSA44PublicKey | mldsa.MLDSA65PublicKey | mldsa.MLDSA87PublicKey):
        if message_type == "EXTERNAL_MU":
            pub.verify_mu(sig, message)
        else:
            pub.verify(sig, message)
        return
    algo = _hash(algorithm)
    chosen: Any = utils.Prehashed(algo) if message_type == "DIGEST" else algo
    if isinstance(pub, rsa.RSAPublicKey):
        pub.verify(sig, message, _rsa_padding(algorithm, algo), chosen)
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(sig, message, ec.ECDSA(chosen))
    else:
        raise InvalidSignature


def _oaep(algorithm: str) -> padding.OAEP:
    algo = _HASHES["SHA_1" if algorithm.endswith("SHA_1") else "SHA_256"]()
    return padding.OAEP(mgf=padding.MGF1(algo), algorithm=algo, label=None)


def oaep_encrypt(private_der: bytes, algorithm: str, plaintext: bytes) -> bytes:
    """RSAES-OAEP (MGF1 with the same hash, empty label) under the key's public half."""
    return bytes(_public_of(private_der).encrypt(plaintext, _oaep(algorithm)))


def oaep_decrypt(private_der: bytes, algorithm: str, ciphertext: bytes) -> bytes:
    """Undo :func:`oaep_encrypt`; :class:`DecryptFailed` on any failure."""
    key = _private(private_der)
    try:
        return bytes(key.decrypt(ciphertext, _oaep(algorithm)))
    except ValueError as exc:
        raise DecryptFailed from exc


def derive_shared_secret(private_der: bytes, peer_spki: bytes) -> bytes:
    """ECDH: the raw shared secret (x coordinate) with a peer's SPKI public key on the same
    curve; :class:`BadPublicKey` for anything else."""
    key = _private(private_der)
    peer = _load_public(peer_spki)
    if not isinstance(peer, ec.EllipticCurvePublicKey) or peer.curve.name != key.curve.name:
        raise BadPublicKey
    try:
        return bytes(key.exchange(ec.ECDH(), peer))
    except ValueError as exc:
        raise BadPublicKey from exc


def encapsulate(private_der: bytes) -> tuple[bytes, bytes]:
    """ML-KEM encapsulation under the public half of an ML-KEM private key: a fresh 32-byte
    shared secret and its ciphertext, as ``(secret, ciphertext)``."""
    pub = _public_of(private_der)
    if not isinstance(pub, mlkem.MLKEM768PublicKey | mlkem.MLKEM1024PublicKey):
        raise ValueError("not an ML-KEM key")
    secret, ciphertext = pub.encapsulate()
    return bytes(secret), bytes(ciphertext)


def decapsulate(private_der: bytes, ciphertext: bytes) -> bytes:
    """ML-KEM decapsulation with implicit rejection: any ciphertext of the parameter set's
    length gives a 32-byte secret (a pseudo-random one for a ciphertext that was altered or made
    for another key); :class:`DecryptFailed` for a ciphertext of another length."""
    key = _private(private_der)
    if not isinstance(key, mlkem.MLKEM768PrivateKey | mlkem.MLKEM1024PrivateKey):
        raise ValueError("not an ML-KEM key")
    try:
        return bytes(key.decapsulate(ciphertext))
    except ValueError as exc:
        raise DecryptFailed from exc
