"""Asymmetric primitives of the HSM node: RSA and EC key pairs, signatures, RSA-OAEP.

Private keys travel between these functions and the node only as PKCS#8 DER bytes (stored sealed by
the node) or as opaque :class:`PrivateKey` handles; public keys as SubjectPublicKeyInfo DER.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from strongroom.crypto import pairwise
from strongroom.crypto.hsm_symmetric import CryptoFailure, hash_algorithm

__all__ = [
    "CURVES",
    "SIGN_MECHANISMS",
    "KeyPair",
    "PrivateKey",
    "PublicKey",
    "generate_ec",
    "generate_rsa",
    "load_private",
    "load_public",
    "pair_from_private",
]

CURVES: dict[str, type[ec.EllipticCurve]] = {
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "secp256k1": ec.SECP256K1,
}
_CURVE_ALIASES = {"prime256v1": "secp256r1", "p-256": "secp256r1", "p-384": "secp384r1"}
SIGN_MECHANISMS = ("rsa-pkcs", "rsa-pkcs-pss", "ecdsa")
_PRIVATE_FORMAT = serialization.PrivateFormat.PKCS8
_DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A fresh key pair: PKCS#8 DER private half, SPKI DER public half, and its public facts."""

    private_der: bytes
    public_der: bytes
    info: dict[str, str | int]


def _curve_name(name: str) -> str:
    name = _CURVE_ALIASES.get(name.lower(), name.lower())
    if name not in CURVES:
        raise CryptoFailure(f"unsupported curve {name!r}")
    return name


def _public_info(pub: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> dict[str, str | int]:
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        return {
            "key-type": "rsa",
            "modulus-size-bits": pub.key_size,
            "public-exponent": nums.e,
            "modulus": f"0x{nums.n:x}",
        }
    point = pub.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {"key-type": "ec", "curve": pub.curve.name, "ec-point": "0x" + point.hex()}


def _pair(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> KeyPair:
    der = key.private_bytes(_DER, _PRIVATE_FORMAT, serialization.NoEncryption())
    pub = key.public_key()
    return KeyPair(der, pub.public_bytes(_DER, _SPKI), _public_info(pub))


def _checked(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> KeyPair:
    pairwise.check(key)  # PairwiseFailure (a CryptoFailure) instead of an inconsistent pair
    return _pair(key)


def generate_rsa(modulus_bits: int, public_exponent: int = 65537) -> KeyPair:
    """RSA key pair; 2048–4096 bits in 256-bit steps, odd exponent ≥ 65537; pairwise tested."""
    if modulus_bits < 2048 or modulus_bits > 4096 or modulus_bits % 256:
        raise CryptoFailure("RSA modulus size must be 2048-4096 bits in steps of 256")
    if public_exponent < 65537 or public_exponent % 2 == 0:
        raise CryptoFailure("RSA public exponent must be odd and at least 65537")
    return _checked(rsa.generate_private_key(public_exponent, modulus_bits))


def generate_ec(curve: str) -> KeyPair:
    """EC key pair on P-256, P-384, P-521 or secp256k1; pairwise tested."""
    return _checked(ec.generate_private_key(CURVES[_curve_name(curve)]()))


def _pss(hash_name: str) -> padding.PSS:
    algo = hash_algorithm(hash_name)
    return padding.PSS(mgf=padding.MGF1(algo), salt_length=algo.digest_size)


def _oaep(hash_name: str) -> padding.OAEP:
    algo = hash_algorithm(hash_name)
    return padding.OAEP(mgf=padding.MGF1(algo), algorithm=algo, label=None)


class PrivateKey:
    """A loaded private key: sign and RSA-OAEP decrypt."""

    __slots__ = ("_key", "key_type")

    def __init__(self, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.key_type = "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ec"

    def sign(self, mechanism: str, hash_name: str, data: bytes) -> bytes:
        """Sign ``data`` (hashed here with ``hash_name``) with the named mechanism."""
        algo = hash_algorithm(hash_name)
        key = self._key
        if isinstance(key, rsa.RSAPrivateKey) and mechanism in ("rsa-pkcs", "rsa-pkcs-pss"):
            pad = padding.PKCS1v15() if mechanism == "rsa-pkcs" else _pss(hash_name)
            return key.sign(data, pad, algo)
        if isinstance(key, ec.EllipticCurvePrivateKey) and mechanism == "ecdsa":
            return key.sign(data, ec.ECDSA(algo))
        raise CryptoFailure(f"mechanism {mechanism} does not fit a {self.key_type} key")

    def decrypt_oaep(self, hash_name: str, ciphertext: bytes) -> bytes:
        """RSA-OAEP decryption with MGF1 over the same hash."""
        if not isinstance(self._key, rsa.RSAPrivateKey):
            raise CryptoFailure("RSA-OAEP needs an RSA key")
        try:
            return self._key.decrypt(ciphertext, _oaep(hash_name))
        except ValueError:
            raise CryptoFailure("decryption failed") from None


class PublicKey:
    """A loaded public key: verify, RSA-OAEP encrypt, PEM export."""

    __slots__ = ("_key", "key_type")

    def __init__(self, key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> None:
        self._key = key
        self.key_type = "rsa" if isinstance(key, rsa.RSAPublicKey) else "ec"

    def verify(self, mechanism: str, hash_name: str, data: bytes, signature: bytes) -> bool:
        """True if ``signature`` is valid for ``data``."""
        algo = hash_algorithm(hash_name)
        key = self._key
        try:
            if isinstance(key, rsa.RSAPublicKey) and mechanism in ("rsa-pkcs", "rsa-pkcs-pss"):
                pad = padding.PKCS1v15() if mechanism == "rsa-pkcs" else _pss(hash_name)
                key.verify(signature, data, pad, algo)
                return True
            if isinstance(key, ec.EllipticCurvePublicKey) and mechanism == "ecdsa":
                key.verify(signature, data, ec.ECDSA(algo))
                return True
        except InvalidSignature:
            return False
        raise CryptoFailure(f"mechanism {mechanism} does not fit a {self.key_type} key")

    def encrypt_oaep(self, hash_name: str, plaintext: bytes) -> bytes:
        """RSA-OAEP encryption with MGF1 over the same hash."""
        if not isinstance(self._key, rsa.RSAPublicKey):
            raise CryptoFailure("RSA-OAEP needs an RSA key")
        try:
            return self._key.encrypt(plaintext, _oaep(hash_name))
        except ValueError:
            raise CryptoFailure("plaintext too long for RSA-OAEP with this key") from None

    def pem(self) -> str:
        """SubjectPublicKeyInfo PEM."""
        return self._key.public_bytes(serialization.Encoding.PEM, _SPKI).decode()


def load_private(der: bytes) -> PrivateKey:
    """Load a PKCS#8 DER private key (RSA or EC only)."""
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        raise CryptoFailure("not a valid PKCS#8 private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CryptoFailure("only RSA and EC private keys are supported")
    return PrivateKey(key)


def load_public(der: bytes) -> PublicKey:
    """Load an SPKI DER public key (RSA or EC only)."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        raise CryptoFailure("not a valid public key") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CryptoFailure("only RSA and EC public keys are supported")
    return PublicKey(key)


def pair_from_private(der: bytes) -> KeyPair:
    """The key pair (normalised DER and public facts) of an imported PKCS#8 private key."""
    key = load_private(der)._key
    return _pair(key)
