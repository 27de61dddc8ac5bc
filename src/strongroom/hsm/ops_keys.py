"""Operations: generate, find, delete, share, unshare, set-attribute, export public keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.crypto.asymmetric import KeyPair, PublicKey, generate_ec, generate_rsa
from strongroom.crypto.hsm_symmetric import AES_KEY_SIZES, random_bytes
from strongroom.hsm.attributes import AttrValue, check_change, creation_attributes
from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.messages import (
    FindArgs,
    GeneratePairArgs,
    GenerateSymmetricArgs,
    KeyRefArgs,
    SetAttributeArgs,
    ShareArgs,
)
from strongroom.hsm.objects import KeyObject, describe
from strongroom.hsm.registry import Ctx, OpSpec, Registry
from strongroom.hsm.roles import Permission, Role
from strongroom.hsm.users import normalize_username

if TYPE_CHECKING:
    from strongroom.hsm.node import Node

__all__ = ["new_key", "register"]

_ASYMMETRIC = frozenset({"private-key", "public-key"})
MAX_GENERIC_SECRET = 800
_KEY_LOG = "MGMT_KEY_DETAILS_LOG (1)"


def _share_list(node: Node, ctx: Ctx, names: list[str]) -> list[str]:
    out: list[str] = []
    for raw in names:
        name = normalize_username(raw)
        node.users.require(name, Role.CRYPTO_USER)
        if name != ctx.username and name not in out:
            out.append(name)
    return out


def _check_limits(node: Node, key_class: str, count: int = 1) -> None:
    """Room for ``count`` more keys of ``key_class`` on this type of HSM (hsm_types.py)."""
    limits, kind = node.limits, node.config.hsm_type
    if len(node.keys) + count > limits.keys:
        raise HsmError(ErrorCode.LIMIT_EXCEEDED, f"at most {limits.keys} keys on an {kind} HSM")
    if key_class in _ASYMMETRIC:
        held = sum(1 for key in node.keys.all() if key.key_class in _ASYMMETRIC)
        if held + count > limits.asymmetric_keys:
            raise HsmError(
                ErrorCode.LIMIT_EXCEEDED,
                f"at most {limits.asymmetric_keys} asymmetric keys on an {kind} HSM",
            )


def new_key(
    node: Node,
    ctx: Ctx,
    kind: tuple[str, str],
    attrs: dict[str, AttrValue],
    facts: dict[str, str | int],
    material: bytes,
    share: list[str],
    local: bool = True,
) -> KeyObject:
    """Create (and seal, for token keys) a key owned by the caller."""
    _check_limits(node, kind[0])
    assert ctx.session is not None
    key = KeyObject(
        ref=node.keys.next_ref(),
        key_class=kind[0],
        key_type=kind[1],
        owner=ctx.username,
        shared=_share_list(node, ctx, share),
        attrs=attrs,
        facts=facts,
        material=material,
        local=local,
        never_extractable=local and not attrs["extractable"],
        always_sensitive=local and bool(attrs["sensitive"]),
        session=0 if attrs["token"] else ctx.session.handle,
    )
    node.put_key(key)
    ctx.keys.append(key.ref)
    return key


def _requested(attributes: dict[str, str], label: str, session: bool) -> dict[str, str | bool]:
    requested: dict[str, str | bool] = dict(attributes)
    if label:
        requested["label"] = label
    if session:
        requested["token"] = False
    return requested


def generate_symmetric(node: Node, ctx: Ctx, args: GenerateSymmetricArgs) -> dict[str, Any]:
    """``key generate-symmetric aes|generic-secret``."""
    size = args.length_bytes
    if args.key_type == "aes" and size not in AES_KEY_SIZES:
        raise HsmError(ErrorCode.INVALID_REQUEST, "AES keys are 16, 24 or 32 bytes")
    if args.key_type == "generic-secret" and not 1 <= size <= MAX_GENERIC_SECRET:
        raise HsmError(ErrorCode.INVALID_REQUEST, "generic secrets are 1-800 bytes")
    if args.key_type not in ("aes", "generic-secret"):
        raise HsmError(ErrorCode.INVALID_REQUEST, "key type must be aes or generic-secret")
    attrs = creation_attributes(
        "secret-key", args.key_type, _requested(args.attributes, args.label, args.session)
    )
    key = new_key(
        node,
        ctx,
        ("secret-key", args.key_type),
        attrs,
        {"key-length-bytes": size},
        random_bytes(size),
        args.share,
    )
    return describe(key)


def _make_pair(args: GeneratePairArgs) -> KeyPair:
    if args.key_type == "rsa":
        try:
            return generate_rsa(args.modulus_bits, args.public_exponent)
        except ValueError:  # an exponent the wrapper lets through but the library refuses
            raise HsmError(ErrorCode.INVALID_REQUEST, "RSA public exponent must be 65537") from None
    if args.key_type == "ec":
        return generate_ec(args.curve)
    raise HsmError(ErrorCode.INVALID_REQUEST, "key type must be rsa or ec")


async def generate_pair(node: Node, ctx: Ctx, args: GeneratePairArgs) -> dict[str, Any]:
    """``key generate-asymmetric-pair rsa|ec``."""
    kt = args.key_type
    if kt not in ("rsa", "ec"):
        raise HsmError(ErrorCode.INVALID_REQUEST, "key type must be rsa or ec")
    pub_attrs = creation_attributes(
        "public-key", kt, _requested(args.public_attributes, args.public_label, args.session)
    )
    priv_attrs = creation_attributes(
        "private-key", kt, _requested(args.private_attributes, args.private_label, args.session)
    )
    _share_list(node, ctx, args.share)
    _check_limits(node, "private-key", 2)  # both halves, before either is made
    pair = await node.offload(_make_pair, args)
    facts = {k: v for k, v in pair.info.items() if k != "key-type"}
    pub = new_key(node, ctx, ("public-key", kt), pub_attrs, facts, pair.public_der, args.share)
    priv = new_key(node, ctx, ("private-key", kt), priv_attrs, facts, pair.private_der, args.share)
    pub.pair, priv.pair = priv.ref, pub.ref
    node.put_key(pub)
    node.put_key(priv)
    return {"public_key": describe(pub), "private_key": describe(priv)}


def find(node: Node, ctx: Ctx, args: FindArgs) -> list[dict[str, Any]]:
    """``key list``: keys visible to the caller that match every filter."""
    found = node.keys.find(ctx.username, ctx.role, args.filters)
    ctx.detail = f"{len(found)} matched"
    return [describe(k, args.verbose) for k in found]


def delete(node: Node, ctx: Ctx, args: KeyRefArgs) -> None:
    """``key delete``: owner only, destroyable keys only."""
    ctx.keys.append(args.ref)
    key = node.keys.owned(args.ref, ctx.username)
    if not key.attrs["destroyable"]:
        raise HsmError(ErrorCode.PERMISSION_DENIED, "the key is not destroyable")
    node.drop_key(key.ref)


def _share_target(node: Node, ctx: Ctx, args: ShareArgs) -> tuple[KeyObject, str]:
    ctx.keys.append(args.ref)
    key = node.keys.owned(args.ref, ctx.username)
    name = normalize_username(args.username)
    ctx.detail = name
    node.users.require(name, Role.CRYPTO_USER)
    if key.key_class == "public-key":
        raise HsmError(ErrorCode.INVALID_REQUEST, "public keys are usable by every crypto user")
    if name == key.owner:
        raise HsmError(ErrorCode.INVALID_REQUEST, "the owner cannot share a key with itself")
    return key, name


def share(node: Node, ctx: Ctx, args: ShareArgs) -> dict[str, Any]:
    """``key share``: owner only."""
    key, name = _share_target(node, ctx, args)
    if name in key.shared:
        raise HsmError(ErrorCode.INVALID_REQUEST, "the key is already shared with that user")
    key.shared.append(name)
    node.put_key(key)
    return describe(key)


def unshare(node: Node, ctx: Ctx, args: ShareArgs) -> dict[str, Any]:
    """``key unshare``: owner only."""
    key, name = _share_target(node, ctx, args)
    if name not in key.shared:
        raise HsmError(ErrorCode.INVALID_REQUEST, "the key is not shared with that user")
    key.shared.remove(name)
    node.put_key(key)
    return describe(key)


def set_attribute(node: Node, ctx: Ctx, args: SetAttributeArgs) -> dict[str, Any]:
    """``key set-attribute``: owner (CU) for most attributes, admin for ``trusted``."""
    ctx.keys.append(args.ref)
    ctx.detail = args.name
    if ctx.role is Role.ADMIN:
        found = node.keys.get(args.ref)
        if found is None:
            raise HsmError(ErrorCode.KEY_NOT_FOUND, "no such key")
        key = found
    else:
        key = node.keys.owned(args.ref, ctx.username)
    value = check_change(key.key_class, key.key_type, key.attrs, args.name, args.value, ctx.role)
    key.attrs[args.name] = value
    node.put_key(key)
    return describe(key)


def public_pem(node: Node, ctx: Ctx, args: KeyRefArgs) -> dict[str, str]:
    """``key generate-file --encoding pem``: public keys only."""
    ctx.keys.append(args.ref)
    key = node.keys.usable(args.ref, ctx.username)
    if key.key_class != "public-key":
        raise HsmError(ErrorCode.KEY_NOT_EXTRACTABLE, "only public keys are exported as PEM")
    handle = node.handle(key)
    assert isinstance(handle, PublicKey)
    return {"pem": handle.pem()}


def _set_attribute_permission(ctx: Ctx, args: SetAttributeArgs) -> Permission:
    return Permission.SET_TRUSTED if args.name == "trusted" else Permission.KEY_MANAGEMENT


def register(reg: Registry) -> None:
    """Declare this family's operations."""
    km, log = Permission.KEY_MANAGEMENT, _KEY_LOG
    reg.add(
        OpSpec(
            "key_generate_symmetric",
            GenerateSymmetricArgs,
            km,
            "CN_GENERATE_KEY (0x17)",
            log,
            handler=generate_symmetric,
        )
    )
    reg.add(
        OpSpec(
            "key_generate_pair",
            GeneratePairArgs,
            km,
            "CN_GENERATE_KEY_PAIR (0x19)",
            log,
            async_handler=generate_pair,
        )
    )
    reg.add(
        OpSpec(
            "key_find",
            FindArgs,
            Permission.SYNC_STATUS,
            "CN_FIND_OBJECTS",
            log,
            handler=find,
            management=False,
        )
    )
    reg.add(OpSpec("key_delete", KeyRefArgs, km, "CN_DESTROY_OBJECT (0x11)", log, handler=delete))
    reg.add(OpSpec("key_share", ShareArgs, km, "CN_SHARE_OBJECT (0x12)", log, handler=share))
    reg.add(OpSpec("key_unshare", ShareArgs, km, "CN_SHARE_OBJECT (0x12)", log, handler=unshare))
    reg.add(
        OpSpec(
            "key_set_attribute",
            SetAttributeArgs,
            _set_attribute_permission,
            "CN_MODIFY_OBJECT",
            log,
            handler=set_attribute,
        )
    )
    reg.add(
        OpSpec(
            "key_public_pem",
            KeyRefArgs,
            Permission.KEY_USAGE,
            "CN_GET_PUBLIC_KEY",
            log,
            handler=public_pem,
            management=False,
        )
    )
