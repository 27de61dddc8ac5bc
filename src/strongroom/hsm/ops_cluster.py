"""Operations: hsm-info, the cluster CSR and certificate, zeroize, audit read, clone hooks.

Cloning: masked objects are key objects and users sealed under the cluster's masking key, which
only nodes of one cluster share, so they can be moved between nodes through untrusted hands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from strongroom.crypto.hsm_seal import SealBroken, Sealer
from strongroom.crypto.x509 import CertificateError, make_csr, validate_cluster_certificate
from strongroom.hsm.audit import AuditRecord
from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.messages import (
    AuditReadArgs,
    CertificateArgs,
    CloneExportArgs,
    CloneImportArgs,
    Empty,
)
from strongroom.hsm.objects import KeyObject
from strongroom.hsm.protocol import PROTOCOL_VERSION
from strongroom.hsm.registry import Ctx, OpSpec, Registry
from strongroom.hsm.roles import Permission, Role
from strongroom.hsm.users import UserRecord

if TYPE_CHECKING:
    from strongroom.hsm.node import Node

__all__ = ["MaskedObjects", "register"]

FIRMWARE = "strongroom-hsm 0.1"
_MIN_LOG = "MINIMAL_LOG_ENTRY (0)"


class MaskedObjects(msgspec.Struct):
    """The plaintext of a clone blob (sealed under the masking key)."""

    keys: list[KeyObject]
    users: list[UserRecord]


def _common_name(node: Node) -> str:
    return f"HSM:{node.state.hsm_id}:PARTN:0"


def hsm_info(node: Node, ctx: Ctx, args: Empty) -> dict[str, Any]:
    """``cluster hsm-info``: public facts about this HSM."""
    s = node.state
    return {
        "hsm-id": s.hsm_id,
        "availability-zone": s.az,
        "serial-number": s.hsm_id,
        "model": "Strongroom soft HSM",
        "firmware": FIRMWARE,
        "protocol-version": PROTOCOL_VERSION,
        "activated": s.activated,
        "cluster-initialized": bool(s.cluster_cert_pem),
        "reboot-counter": s.reboot_counter,
        "key-count": len(node.keys),
        "user-count": len(node.users.records()),
        "session-count": len(node.sessions),
        "audit-next-seq": node.audit.next_seq,
        "certificate": s.cluster_cert_pem or s.self_signed_pem,
    }


def cluster_csr(node: Node, ctx: Ctx, args: Empty) -> dict[str, str]:
    """The CSR of this node's key pair, for the customer's CA to sign."""
    if node.state.cluster_cert_pem:
        raise HsmError(ErrorCode.INVALID_REQUEST, "the cluster certificate is already installed")
    return {"csr": make_csr(node.state.identity_key, _common_name(node))}


def install_certificate(node: Node, ctx: Ctx, args: CertificateArgs) -> dict[str, str]:
    """Install the customer-signed cluster certificate and trust anchor (appliance user)."""
    try:
        validate_cluster_certificate(args.certificate, args.trust_anchor, node.state.identity_key)
    except CertificateError as exc:
        raise HsmError(ErrorCode.CERTIFICATE_INVALID, str(exc)) from None
    node.state.cluster_cert_pem = args.certificate
    node.state.trust_anchor_pem = args.trust_anchor
    node.persist()
    node.write_tls_files()
    node.on_certificate_change()
    return {"certificate": args.certificate}


def zeroize(node: Node, ctx: Ctx, args: Empty) -> None:
    """Destroy the node key and every object and user; the node stops afterwards."""
    node.zeroize_requested = True


def audit_read(node: Node, ctx: Ctx, args: AuditReadArgs) -> dict[str, Any]:
    """Verified audit records from ``start_seq`` on."""
    node.audit.flush()
    limit = max(1, min(args.limit, 10000))
    records: list[AuditRecord] = node.audit.read(args.start_seq, limit)
    return {"records": records, "next_seq": node.audit.next_seq}


def _masking(node: Node) -> Sealer:
    return Sealer(node.state.masking_key, "masked-objects")


def clone_export(node: Node, ctx: Ctx, args: CloneExportArgs) -> dict[str, bytes]:
    """Extract masked objects: a CU its own token keys; admin/appliance any, and users."""
    privileged = ctx.role in (Role.ADMIN, Role.APPLIANCE_USER)
    refs = args.refs or [k.ref for k in node.keys.all()]
    keys = []
    for ref in refs:
        key = node.keys.get(ref)
        if key is None or key.session or not (privileged or key.owner == ctx.username):
            if args.refs:
                raise HsmError(ErrorCode.KEY_NOT_FOUND, "no such token key of yours")
            continue
        keys.append(key)
    if args.users and not privileged:
        raise HsmError(ErrorCode.PERMISSION_DENIED, "only an admin may extract users")
    users = node.users.records() if args.users else []
    ctx.keys.extend(k.ref for k in keys)
    plain = msgspec.msgpack.encode(MaskedObjects(keys, users))
    return {"blob": _masking(node).seal(plain, b"masked:")}


def clone_import(node: Node, ctx: Ctx, args: CloneImportArgs) -> dict[str, int]:
    """Insert masked objects from another node of the same cluster."""
    try:
        plain = _masking(node).open(args.blob, b"masked:")
    except SealBroken:
        raise HsmError(
            ErrorCode.CRYPTO_FAILED, "masked objects are not from this cluster"
        ) from None
    objects = msgspec.msgpack.decode(plain, type=MaskedObjects)
    privileged = ctx.role in (Role.ADMIN, Role.APPLIANCE_USER)
    if objects.users and not privileged:
        raise HsmError(ErrorCode.PERMISSION_DENIED, "only an admin may insert users")
    if not privileged and any(k.owner != ctx.username for k in objects.keys):
        raise HsmError(ErrorCode.PERMISSION_DENIED, "a crypto user may insert only its own keys")
    for user in objects.users:
        node.users.insert(user)
    for key in objects.keys:
        node.put_key(key)
        ctx.keys.append(key.ref)
    node.persist()
    return {"keys": len(objects.keys), "users": len(objects.users)}


def register(reg: Registry) -> None:
    """Declare this family's operations."""
    info, log = Permission.CLUSTER_INFO, _MIN_LOG
    reg.add(
        OpSpec("hsm_info", Empty, info, "CN_GET_HSM_INFO", log, handler=hsm_info, management=False)
    )
    reg.add(
        OpSpec("cluster_csr", Empty, info, "CN_GET_CSR", log, handler=cluster_csr, management=False)
    )
    reg.add(
        OpSpec(
            "install_certificate",
            CertificateArgs,
            Permission.PROVISION,
            "CN_CERT_AUTH_STORE_CERT",
            log,
            handler=install_certificate,
        )
    )
    reg.add(OpSpec("zeroize", Empty, Permission.ZEROIZE, "CN_ZEROIZE", log, handler=zeroize))
    reg.add(
        OpSpec(
            "audit_read",
            AuditReadArgs,
            Permission.READ_AUDIT,
            "CN_READ_AUDIT_LOG",
            log,
            handler=audit_read,
            management=False,
        )
    )
    reg.add(
        OpSpec(
            "clone_export",
            CloneExportArgs,
            Permission.MASKED_OBJECTS,
            "CN_EXTRACT_MASKED_OBJECT_USER (0xf0)",
            log,
            handler=clone_export,
        )
    )
    reg.add(
        OpSpec(
            "clone_import",
            CloneImportArgs,
            Permission.MASKED_OBJECTS,
            "CN_INSERT_MASKED_OBJECT_USER (0xf1)",
            log,
            handler=clone_import,
        )
    )
