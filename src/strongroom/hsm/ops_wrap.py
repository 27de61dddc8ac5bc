"""Operations: key wrap and key unwrap (AES key wrap with padding, AES-GCM, RSA-OAEP).

Only the owner of a key may wrap it, only if it is extractable, and, when it is marked
wrap-with-trusted, only under a key an admin marked trusted. Unwrapped keys are owned by the
caller and are not ``local``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.crypto.asymmetric import PrivateKey, PublicKey, pair_from_private
from strongroom.crypto.hsm_symmetric import (
    AES_KEY_SIZES,
    AesGcmKey,
    CryptoFailure,
    aes_unwrap_pad,
    aes_wrap_pad,
)
from strongroom.hsm.attributes import creation_attributes
from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.messages import UnwrapArgs, WrapArgs
from strongroom.hsm.objects import KeyObject, describe
from strongroom.hsm.ops_keys import MAX_GENERIC_SECRET, new_key
from strongroom.hsm.registry import Ctx, OpSpec, Registry
from strongroom.hsm.roles import Permission

if TYPE_CHECKING:
    from strongroom.hsm.node import Node

__all__ = ["WRAP_MECHANISMS", "register"]

WRAP_MECHANISMS = ("aes-key-wrap-pad", "aes-gcm", "rsa-oaep")
_UNWRAP_KINDS = frozenset(
    {
        ("secret-key", "aes"),
        ("secret-key", "generic-secret"),
        ("private-key", "rsa"),
        ("private-key", "ec"),
    }
)  # what _imported can make of unwrapped bytes
_KEY_LOG = "MGMT_KEY_DETAILS_LOG (1)"


def _need(key: KeyObject, attr: str) -> None:
    if not key.attrs.get(attr):
        raise HsmError(ErrorCode.KEY_FUNCTION_NOT_PERMITTED, f"the key does not permit {attr}")


def _aes(key: KeyObject) -> bytes:
    if key.key_type != "aes":
        raise HsmError(ErrorCode.INVALID_REQUEST, "this mechanism needs an AES wrapping key")
    return key.material


def _seal_payload(node: Node, mechanism: str, wrapping: KeyObject, payload: bytes, h: str) -> bytes:
    if mechanism == "aes-key-wrap-pad":
        return aes_wrap_pad(_aes(wrapping), payload)
    if mechanism == "aes-gcm":
        return AesGcmKey(_aes(wrapping)).encrypt(payload)
    if mechanism == "rsa-oaep":
        handle = node.handle(wrapping)
        if not isinstance(handle, PublicKey) or handle.key_type != "rsa":
            raise HsmError(ErrorCode.INVALID_REQUEST, "rsa-oaep wraps under an RSA public key")
        return handle.encrypt_oaep(h, payload)
    raise HsmError(ErrorCode.INVALID_REQUEST, f"mechanism must be one of {WRAP_MECHANISMS}")


def wrap(node: Node, ctx: Ctx, args: WrapArgs) -> dict[str, Any]:
    """``key wrap``: export an extractable key encrypted under a wrapping key."""
    ctx.keys.extend([args.payload_ref, args.wrapping_ref])
    payload = node.keys.owned(args.payload_ref, ctx.username)
    wrapping = node.keys.usable(args.wrapping_ref, ctx.username)
    if payload.key_class == "public-key":
        raise HsmError(ErrorCode.INVALID_REQUEST, "public keys are exported as PEM, not wrapped")
    if not payload.attrs["extractable"]:
        raise HsmError(ErrorCode.KEY_NOT_EXTRACTABLE, "the key is not extractable")
    if payload.attrs["wrap-with-trusted"] and not wrapping.attrs["trusted"]:
        raise HsmError(
            ErrorCode.KEY_FUNCTION_NOT_PERMITTED,
            "the key can only be wrapped by a trusted key",
        )
    _need(wrapping, "wrap")
    data = _seal_payload(node, args.mechanism, wrapping, payload.material, args.hash)
    return {"wrapped_key_data": data}


def _open_payload(node: Node, args: UnwrapArgs, unwrapping: KeyObject) -> bytes:
    try:
        if args.mechanism == "aes-key-wrap-pad":
            return aes_unwrap_pad(_aes(unwrapping), args.data)
        if args.mechanism == "aes-gcm":
            return AesGcmKey(_aes(unwrapping)).decrypt(args.data)
        if args.mechanism == "rsa-oaep":
            handle = node.handle(unwrapping)
            if not isinstance(handle, PrivateKey) or handle.key_type != "rsa":
                raise HsmError(ErrorCode.INVALID_REQUEST, "rsa-oaep needs an RSA private key")
            return handle.decrypt_oaep(args.hash, args.data)
    except CryptoFailure:
        raise HsmError(ErrorCode.CRYPTO_FAILED, "the wrapped key failed to unwrap") from None
    raise HsmError(ErrorCode.INVALID_REQUEST, f"mechanism must be one of {WRAP_MECHANISMS}")


def _imported(args: UnwrapArgs, material: bytes) -> tuple[bytes, dict[str, str | int]]:
    kind = (args.key_class, args.key_type)
    if kind == ("secret-key", "aes"):
        if len(material) not in AES_KEY_SIZES:
            raise HsmError(ErrorCode.CRYPTO_FAILED, "unwrapped data is not an AES key")
        return material, {"key-length-bytes": len(material)}
    if kind == ("secret-key", "generic-secret"):
        if not 1 <= len(material) <= MAX_GENERIC_SECRET:
            raise HsmError(ErrorCode.CRYPTO_FAILED, "unwrapped data is not a generic secret")
        return material, {"key-length-bytes": len(material)}
    if args.key_class == "private-key" and args.key_type in ("rsa", "ec"):
        try:
            pair = pair_from_private(material)
        except CryptoFailure:
            raise HsmError(ErrorCode.CRYPTO_FAILED, "unwrapped data is not a private key") from None
        if pair.info["key-type"] != args.key_type:
            raise HsmError(ErrorCode.CRYPTO_FAILED, "unwrapped key is of another type")
        return pair.private_der, {k: v for k, v in pair.info.items() if k != "key-type"}
    raise HsmError(ErrorCode.INVALID_REQUEST, "unsupported key class and type for unwrap")


def unwrap(node: Node, ctx: Ctx, args: UnwrapArgs) -> dict[str, Any]:
    """``key unwrap``: import a wrapped key; the caller owns it."""
    ctx.keys.append(args.unwrapping_ref)
    unwrapping = node.keys.usable(args.unwrapping_ref, ctx.username)
    _need(unwrapping, "unwrap")
    if (args.key_class, args.key_type) not in _UNWRAP_KINDS:  # before its attributes are built
        raise HsmError(ErrorCode.INVALID_REQUEST, "unsupported key class and type for unwrap")
    requested: dict[str, str | bool] = dict(args.attributes)
    if args.label:
        requested["label"] = args.label
    if args.session:
        requested["token"] = False
    attrs = creation_attributes(args.key_class, args.key_type, requested)
    material, facts = _imported(args, _open_payload(node, args, unwrapping))
    key = new_key(
        node, ctx, (args.key_class, args.key_type), attrs, facts, material, args.share, local=False
    )
    return describe(key)


def register(reg: Registry) -> None:
    """Declare this family's operations."""
    km = Permission.KEY_MANAGEMENT
    reg.add(OpSpec("key_wrap", WrapArgs, km, "CN_WRAP_KEY (0x1a)", _KEY_LOG, handler=wrap))
    reg.add(OpSpec("key_unwrap", UnwrapArgs, km, "CN_UNWRAP_KEY (0x1b)", _KEY_LOG, handler=unwrap))
