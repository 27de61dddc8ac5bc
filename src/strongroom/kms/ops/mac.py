"""HMAC operations: GenerateMac and VerifyMac (RFC 2104, the key's fixed MAC algorithm)."""

from __future__ import annotations

import hashlib
import hmac

from strongroom.errors import AwsError
from strongroom.kms.domain.keys import KeyRecord
from strongroom.kms.domain.specs import SPECS
from strongroom.kms.ops import _common as c
from strongroom.kms.service import Kms, RequestContext

__all__ = ["HANDLERS", "compute_mac"]

_DIGESTS = {
    "HMAC_SHA_224": hashlib.sha224,
    "HMAC_SHA_256": hashlib.sha256,
    "HMAC_SHA_384": hashlib.sha384,
    "HMAC_SHA_512": hashlib.sha512,
}


def compute_mac(algorithm: str, key: bytes, message: bytes) -> bytes:
    """The raw HMAC of ``message`` under ``key`` with ``algorithm`` (HMAC_SHA_256...)."""
    return hmac.digest(key, message, _DIGESTS[algorithm])


def _mac_key(kms: Kms, ctx: RequestContext, req: c.Request, operation: str) -> KeyRecord:
    rec = kms.resolve(ctx, req["KeyId"], operation, request=req)
    if rec.key_usage != "GENERATE_VERIFY_MAC":
        raise AwsError(
            "InvalidKeyUsageException",
            f"{rec.arn} key usage is {rec.key_usage} which is not valid for {operation}.",
        )
    algorithm = req["MacAlgorithm"]
    if algorithm not in SPECS[rec.key_spec].usages["GENERATE_VERIFY_MAC"]:
        raise AwsError(
            "InvalidKeyUsageException",
            f"Algorithm {algorithm} is incompatible with key spec {rec.key_spec}.",
        )
    return rec


def generate_mac(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """GenerateMac."""
    rec = _mac_key(kms, ctx, req, "GenerateMac")
    c.check_dry_run(req)
    key = kms.material(rec, rec.current_version)
    mac = compute_mac(req["MacAlgorithm"], key, req["Message"])
    return {"Mac": mac, "MacAlgorithm": req["MacAlgorithm"], "KeyId": rec.arn}


def verify_mac(kms: Kms, ctx: RequestContext, req: c.Request) -> c.Response:
    """VerifyMac: KMSInvalidMacException unless the MAC matches (constant-time compare)."""
    rec = _mac_key(kms, ctx, req, "VerifyMac")
    c.check_dry_run(req)
    key = kms.material(rec, rec.current_version)
    expected = compute_mac(req["MacAlgorithm"], key, req["Message"])
    if not hmac.compare_digest(expected, req["Mac"]):
        raise AwsError("KMSInvalidMacException", "")
    return {"KeyId": rec.arn, "MacValid": True, "MacAlgorithm": req["MacAlgorithm"]}


HANDLERS: dict[str, c.Handler] = {"GenerateMac": generate_mac, "VerifyMac": verify_mac}
