"""CreateKey's spec, usage and origin checks, and each new key's first material.

Used by :mod:`strongroom.kms.ops.keys`; the table itself is :mod:`strongroom.kms.domain.specs`.
"""

from __future__ import annotations

import uuid

from strongroom.crypto import kms_asymmetric, symmetric
from strongroom.errors import AwsError
from strongroom.kms.domain.specs import SPECS
from strongroom.kms.ops import _common as c

__all__ = ["check_offered", "check_origin", "new_key_id", "new_material", "spec_and_usage"]

_ORIGINS = ("AWS_KMS", "EXTERNAL")


def spec_and_usage(req: c.Request) -> tuple[str, str]:
    """The KeySpec and KeyUsage of a CreateKey request, checked against each other."""
    if "KeySpec" in req and "CustomerMasterKeySpec" in req:
        raise AwsError(
            "ValidationException", "You cannot specify KeySpec and CustomerMasterKeySpec together"
        )
    spec = req.get("KeySpec") or req.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    info = SPECS.get(spec)
    if info is None:  # SM2 is for China Regions only
        raise AwsError("UnsupportedOperationException", f"KeySpec {spec} is not supported.")
    check_offered("KeySpec", spec)
    usage = req.get("KeyUsage") or "ENCRYPT_DECRYPT"
    if usage not in info.usages:
        raise AwsError(
            "ValidationException",
            f"KeyUsage {usage} is not compatible with KeySpec {spec}",
        )
    return spec, usage


def check_offered(field: str, spec: str) -> None:
    """UnsupportedOperationException for an ML-KEM spec the crypto library does not implement
    (``field`` is the request member that named it: KeySpec or KeyPairSpec)."""
    if SPECS[spec].family == "mlkem" and spec not in kms_asymmetric.MLKEM_SPECS:
        offered = " and ".join(s.replace("_", "-") for s in kms_asymmetric.MLKEM_SPECS)
        raise AwsError(
            "UnsupportedOperationException",
            f"{field} {spec} is not supported: the installed cryptography library offers "
            f"{offered} only.",
        )


def check_origin(req: c.Request, spec: str) -> str:
    """The Origin of a CreateKey request (AWS_KMS or EXTERNAL; AWS_CLOUDHSM keys are made by
    :func:`~strongroom.kms.ops.custom_key_stores.create_cloudhsm_key` before this is asked).
    EXTERNAL_KEY_STORE is refused: Strongroom has no external key store proxy. Importing
    ML-DSA or ML-KEM private keys is not offered either (the reference names no import format
    for them)."""
    origin = str(req.get("Origin", "AWS_KMS"))
    if origin not in _ORIGINS:
        raise AwsError("UnsupportedOperationException", f"Origin {origin} is not supported")
    if origin == "EXTERNAL" and SPECS[spec].family in ("mldsa", "mlkem"):
        raise AwsError(
            "UnsupportedOperationException",
            f"Importing key material into {spec} keys is not supported.",
        )
    return origin


def new_key_id(multi_region: bool) -> str:
    """A fresh key id: a UUID, or ``mrk-`` and 32 hex digits for a multi-Region key."""
    return f"mrk-{uuid.uuid4().hex}" if multi_region else str(uuid.uuid4())


def new_material(spec: str) -> bytes:
    """Fresh material of ``spec``: 32 AES bytes, HMAC key bytes, or a PKCS#8 private key."""
    info = SPECS[spec]
    if info.family == "symmetric":
        return symmetric.random_bytes(32)
    if info.family == "hmac":
        return symmetric.random_bytes(info.size)
    return kms_asymmetric.generate_private(spec)
