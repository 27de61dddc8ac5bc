"""Key specs as data: which KeyUsage each KeySpec allows, and which algorithms each pair offers.

One table (kms-api.md §3.5) drives CreateKey's checks, ``KeyMetadata``'s algorithm lists,
GetPublicKey, and the per-operation "does this algorithm fit this key" checks. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "DATA_KEY_PAIR_SPECS",
    "HASH_BYTES",
    "KEM_CIPHERTEXT_BYTES",
    "MAC_SIZES",
    "ROTATABLE",
    "SPECS",
    "KeySpecInfo",
    "algorithm_list_names",
    "algorithm_lists",
    "is_asymmetric",
    "oaep_plaintext_limit",
    "signing_hash",
]

_RSA_SIGN = (
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
)
_RSA_ENCRYPT = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")


@dataclass(frozen=True, slots=True)
class KeySpecInfo:
    """What one KeySpec allows: usage -> the algorithms of that usage."""

    family: str  # "symmetric", "rsa", "ec", "ed25519", "hmac", "mldsa", "mlkem"
    usages: Mapping[str, tuple[str, ...]]
    size: int = 0  # RSA modulus bits, HMAC key bytes, ML-DSA / ML-KEM parameter set


def _rsa(bits: int) -> KeySpecInfo:
    return KeySpecInfo("rsa", {"ENCRYPT_DECRYPT": _RSA_ENCRYPT, "SIGN_VERIFY": _RSA_SIGN}, bits)


def _mlkem(size: int) -> KeySpecInfo:
    return KeySpecInfo("mlkem", {"ENCAPSULATE_DECAPSULATE": ("ML_KEM",)}, size)


def _nist(sign: str) -> KeySpecInfo:
    return KeySpecInfo("ec", {"SIGN_VERIFY": (sign,), "KEY_AGREEMENT": ("ECDH",)})


SPECS: Mapping[str, KeySpecInfo] = {
    "SYMMETRIC_DEFAULT": KeySpecInfo("symmetric", {"ENCRYPT_DECRYPT": ("SYMMETRIC_DEFAULT",)}),
    "RSA_2048": _rsa(2048),
    "RSA_3072": _rsa(3072),
    "RSA_4096": _rsa(4096),
    "ECC_NIST_P256": _nist("ECDSA_SHA_256"),
    "ECC_NIST_P384": _nist("ECDSA_SHA_384"),
    "ECC_NIST_P521": _nist("ECDSA_SHA_512"),
    "ECC_SECG_P256K1": KeySpecInfo("ec", {"SIGN_VERIFY": ("ECDSA_SHA_256",)}),
    "ECC_NIST_EDWARDS25519": KeySpecInfo(
        "ed25519", {"SIGN_VERIFY": ("ED25519_SHA_512", "ED25519_PH_SHA_512")}
    ),
    "HMAC_224": KeySpecInfo("hmac", {"GENERATE_VERIFY_MAC": ("HMAC_SHA_224",)}, 28),
    "HMAC_256": KeySpecInfo("hmac", {"GENERATE_VERIFY_MAC": ("HMAC_SHA_256",)}, 32),
    "HMAC_384": KeySpecInfo("hmac", {"GENERATE_VERIFY_MAC": ("HMAC_SHA_384",)}, 48),
    "HMAC_512": KeySpecInfo("hmac", {"GENERATE_VERIFY_MAC": ("HMAC_SHA_512",)}, 64),
    "ML_DSA_44": KeySpecInfo("mldsa", {"SIGN_VERIFY": ("ML_DSA_SHAKE_256",)}, 44),
    "ML_DSA_65": KeySpecInfo("mldsa", {"SIGN_VERIFY": ("ML_DSA_SHAKE_256",)}, 65),
    "ML_DSA_87": KeySpecInfo("mldsa", {"SIGN_VERIFY": ("ML_DSA_SHAKE_256",)}, 87),
    "ML_KEM_512": _mlkem(512),
    "ML_KEM_768": _mlkem(768),
    "ML_KEM_1024": _mlkem(1024),
}

#: GenerateDataKeyPair's KeyPairSpec values Strongroom produces (SM2 and ML_KEM_512 are refused).
DATA_KEY_PAIR_SPECS = (
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "ECC_NIST_EDWARDS25519",
    "ML_KEM_768",
    "ML_KEM_1024",
)

#: Specs whose material automatic and on-demand rotation may replace (§3.9).
ROTATABLE = frozenset({"SYMMETRIC_DEFAULT"})

MAC_SIZES = {"HMAC_SHA_224": 28, "HMAC_SHA_256": 32, "HMAC_SHA_384": 48, "HMAC_SHA_512": 64}
HASH_BYTES = {"SHA_1": 20, "SHA_256": 32, "SHA_384": 48, "SHA_512": 64}
#: The length of an ML-KEM ciphertext (Encapsulate's SharedSecretCiphertextBlob) per key spec;
#: Decapsulate answers InvalidCiphertextException for any other length (FIPS 203, table 3).
KEM_CIPHERTEXT_BYTES = {"ML_KEM_512": 768, "ML_KEM_768": 1088, "ML_KEM_1024": 1568}

_LIST_NAME = {
    "ENCRYPT_DECRYPT": "EncryptionAlgorithms",
    "SIGN_VERIFY": "SigningAlgorithms",
    "KEY_AGREEMENT": "KeyAgreementAlgorithms",
    "GENERATE_VERIFY_MAC": "MacAlgorithms",
    "ENCAPSULATE_DECAPSULATE": "EncapsulationAlgorithms",
}


def is_asymmetric(spec: str) -> bool:
    info = SPECS.get(spec)
    return info is not None and info.family in ("rsa", "ec", "ed25519", "mldsa", "mlkem")


def algorithm_list_names() -> tuple[str, ...]:
    """Every ``KeyMetadata`` algorithm list name (``EncryptionAlgorithms``...)."""
    return tuple(_LIST_NAME.values())


def algorithm_lists(spec: str, usage: str) -> dict[str, list[str]]:
    """The algorithm list of a key for ``KeyMetadata`` and GetPublicKey."""
    info = SPECS.get(spec)
    if info is None or usage not in info.usages:
        return {}
    return {_LIST_NAME[usage]: list(info.usages[usage])}


def signing_hash(algorithm: str) -> str | None:
    """The hash a signing algorithm uses (``SHA_256``...), None for ML-DSA (SHAKE-256 μ)."""
    for name in ("SHA_256", "SHA_384", "SHA_512"):
        if algorithm.endswith(name):
            return name
    return None


def oaep_plaintext_limit(modulus_bits: int, algorithm: str) -> int:
    """AWS's RSAES-OAEP plaintext limit: key bytes - 2 * hash bytes - 2."""
    hash_bytes = HASH_BYTES["SHA_1" if algorithm == "RSAES_OAEP_SHA_1" else "SHA_256"]
    return modulus_bits // 8 - 2 * hash_bytes - 2
