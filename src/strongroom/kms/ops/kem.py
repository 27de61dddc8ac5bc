"""ML-KEM key encapsulation (FIPS 203) with ENCAPSULATE_DECAPSULATE keys: Encapsulate, Decapsulate.

Encapsulate makes a fresh 32-byte shared secret and its ciphertext under the key's public key;
Decapsulate recovers the secret with the private key. As AWS documents, Decapsulate answers
InvalidCiphertextException only for a ciphertext whose length does not fit the key spec; any
other ciphertext (altered, or made for another key) gives a pseudo-random 32-byte secret
(implicit rejection), so the two parties must confirm they hold the same secret before use.
"""

from __future__ import annotations

from strongroom.crypto import kms_asymmetric
from strongroom.errors import AwsError
from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.domain.specs import KEM_CIPHERTEXT_BYTES
from strongroom.kms.ops import _common as c
from strongroom.kms.ops.asymmetric import algorithm_fits
from strongroom.kms.service import Kms, RequestContext

__all__ = ["HANDLERS"]

_INVALID_CIPHERTEXT = "The ciphertext is invalid: its length does not fit the key spec."


def _kem_key(kms: Kms, ctx: RequestContext, req: c.Request, operation: str) -> KeyRecord:
    rec = kms.resolve(ctx, req["KeyId"], operation, request=req)
    algorithm_fits(rec, "ENCAPSULATE_DECAPSULATE", req["EncapsulationAlgorithm"])
    return rec


def encapsulate(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """Encapsulate: a shared secret and its ciphertext under an ML-KEM key's public key."""
    rec = _kem_key(kms, ctx, req, "Encapsulate")
    c.check_dry_run(req)
    secret, blob = kms_asymmetric.encapsulate(kms.material(rec, rec.current_version))
    return {
        "KeyId": rec.arn,
        "SharedSecret": secret,
        "SharedSecretCiphertextBlob": blob,
        "EncapsulationAlgorithm": req["EncapsulationAlgorithm"],
    }


def decapsulate(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """Decapsulate: the shared secret of an Encapsulate ciphertext (implicit rejection)."""
    rec = _kem_key(kms, ctx, req, "Decapsulate")
    blob = req["SharedSecretCiphertextBlob"]
    if len(blob) != KEM_CIPHERTEXT_BYTES[rec.key_spec]:
        raise AwsError("InvalidCiphertextException", _INVALID_CIPHERTEXT)
    c.check_dry_run(req)
    try:
        secret = kms_asymmetric.decapsulate(kms.material(rec, rec.current_version), blob)
    except kms_asymmetric.DecryptFailed as exc:  # not reached: the length was checked above
        raise AwsError("InvalidCiphertextException", _INVALID_CIPHERTEXT) from exc
    return {
        "KeyId": rec.arn,
        "SharedSecret": secret,
        "EncapsulationAlgorithm": req["EncapsulationAlgorithm"],
    }


HANDLERS: dict[str, c.Handler] = {"Encapsulate": encapsulate, "Decapsulate": decapsulate}
