"""Operations: encrypt / decrypt, sign / verify, HMAC, digests, random bytes.

Every key operation checks that the caller may use the key (owner, shared user, or any crypto user
for a public key) and that the key's usage attribute allows it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.crypto.hsm_symmetric import (
    AesGcmKey,
    aes_cbc_pad_decrypt,
    aes_cbc_pad_encrypt,
    digest,
    hmac_sign,
    hmac_verify,
    random_bytes,
)
from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.messages import CryptoArgs, DigestArgs, MacArgs, RandomArgs, SignArgs
from strongroom.hsm.objects import KeyObject
from strongroom.hsm.registry import Ctx, OpSpec, Registry
from strongroom.hsm.roles import Permission

if TYPE_CHECKING:
    from strongroom.hsm.node import Node

__all__ = ["CIPHER_MECHANISMS", "MAX_RANDOM", "register"]

CIPHER_MECHANISMS = ("aes-gcm", "aes-cbc-pad", "rsa-oaep")
MAX_RANDOM = 65536
_MIN_LOG = "MINIMAL_LOG_ENTRY (0)"


def _usable(node: Node, ctx: Ctx, ref: int, attr: str) -> KeyObject:
    ctx.keys.append(ref)
    key = node.keys.usable(ref, ctx.username)
    if not key.attrs.get(attr):
        raise HsmError(ErrorCode.KEY_FUNCTION_NOT_PERMITTED, f"the key does not permit {attr}")
    return key


def _aes(key: KeyObject) -> KeyObject:
    if key.key_type != "aes":
        raise HsmError(ErrorCode.INVALID_REQUEST, "this mechanism needs an AES key")
    return key


def _rsa(node: Node, key: KeyObject, key_class: str) -> Any:
    if key.key_type != "rsa" or key.key_class != key_class:
        raise HsmError(ErrorCode.INVALID_REQUEST, f"rsa-oaep needs an RSA {key_class}")
    return node.handle(key)


def encrypt(node: Node, ctx: Ctx, args: CryptoArgs) -> dict[str, bytes]:
    """``crypto encrypt``: AES-GCM (HSM IV prepended), AES-CBC-PAD, RSA-OAEP."""
    key = _usable(node, ctx, args.ref, "encrypt")
    mech = args.mechanism
    if mech == "aes-gcm":
        handle = node.handle(_aes(key))
        assert isinstance(handle, AesGcmKey)
        return {"data": handle.encrypt(args.data, args.aad)}
    if mech == "aes-cbc-pad":
        return {"data": aes_cbc_pad_encrypt(_aes(key).material, args.data)}
    if mech == "rsa-oaep":
        return {"data": _rsa(node, key, "public-key").encrypt_oaep(args.hash, args.data)}
    raise HsmError(ErrorCode.INVALID_REQUEST, f"mechanism must be one of {CIPHER_MECHANISMS}")


def decrypt(node: Node, ctx: Ctx, args: CryptoArgs) -> dict[str, bytes]:
    """``crypto decrypt``: inverse of :func:`encrypt`."""
    key = _usable(node, ctx, args.ref, "decrypt")
    mech = args.mechanism
    if mech == "aes-gcm":
        handle = node.handle(_aes(key))
        assert isinstance(handle, AesGcmKey)
        return {"data": handle.decrypt(args.data, args.aad)}
    if mech == "aes-cbc-pad":
        return {"data": aes_cbc_pad_decrypt(_aes(key).material, args.data)}
    if mech == "rsa-oaep":
        return {"data": _rsa(node, key, "private-key").decrypt_oaep(args.hash, args.data)}
    raise HsmError(ErrorCode.INVALID_REQUEST, f"mechanism must be one of {CIPHER_MECHANISMS}")


def sign(node: Node, ctx: Ctx, args: SignArgs) -> dict[str, bytes]:
    """``crypto sign rsa-pkcs|rsa-pkcs-pss|ecdsa`` with a private key."""
    key = _usable(node, ctx, args.ref, "sign")
    if key.key_class != "private-key":
        raise HsmError(ErrorCode.INVALID_REQUEST, "signing needs a private key")
    return {"signature": node.handle(key).sign(args.mechanism, args.hash, args.data)}  # type: ignore[union-attr]


def verify(node: Node, ctx: Ctx, args: SignArgs) -> dict[str, bool]:
    """``crypto verify``: with a public key; ``valid`` is false for a bad signature."""
    key = _usable(node, ctx, args.ref, "verify")
    if key.key_class != "public-key":
        raise HsmError(ErrorCode.INVALID_REQUEST, "verification needs a public key")
    handle = node.handle(key)
    return {"valid": handle.verify(args.mechanism, args.hash, args.data, args.signature)}  # type: ignore[union-attr]


def mac(node: Node, ctx: Ctx, args: MacArgs) -> dict[str, Any]:
    """``crypto mac hmac``: compute, or verify when ``mac`` is given."""
    key = _usable(node, ctx, args.ref, "verify" if args.mac else "sign")
    if key.key_class != "secret-key":
        raise HsmError(ErrorCode.INVALID_REQUEST, "HMAC needs a secret key")
    if args.mac:
        return {"valid": hmac_verify(key.material, args.hash, args.data, args.mac)}
    return {"mac": hmac_sign(key.material, args.hash, args.data)}


def hash_data(node: Node, ctx: Ctx, args: DigestArgs) -> dict[str, bytes]:
    """``crypto digest``: SHA-1, SHA-224/256/384/512."""
    return {"digest": digest(args.hash, args.data)}


def random(node: Node, ctx: Ctx, args: RandomArgs) -> dict[str, bytes]:
    """``random``: bytes from the node's CSPRNG."""
    if not 1 <= args.length <= MAX_RANDOM:
        raise HsmError(ErrorCode.INVALID_REQUEST, f"length must be 1-{MAX_RANDOM}")
    return {"data": random_bytes(args.length)}


def register(reg: Registry) -> None:
    """Declare this family's operations (not management: audited without fsync)."""
    ku = Permission.KEY_USAGE
    for name, args_type, opcode, fn in (
        ("encrypt", CryptoArgs, "CN_ENCRYPT", encrypt),
        ("decrypt", CryptoArgs, "CN_DECRYPT", decrypt),
        ("sign", SignArgs, "CN_SIGN", sign),
        ("verify", SignArgs, "CN_VERIFY", verify),
        ("hmac", MacArgs, "CN_HMAC", mac),
        ("digest", DigestArgs, "CN_DIGEST", hash_data),
    ):
        reg.add(OpSpec(name, args_type, ku, opcode, _MIN_LOG, handler=fn, management=False))
    reg.add(
        OpSpec(
            "random",
            RandomArgs,
            Permission.RANDOM,
            "CN_FIPS_RAND",
            _MIN_LOG,
            handler=random,
            management=False,
        )
    )
