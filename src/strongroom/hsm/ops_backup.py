"""Operations: cluster backups — a member's cluster state sealed so only HSMs can restore it.

CloudHSM wraps a backup under a key derived from a manufacturer key in the hardware; every HSM
of the installation can unwrap it, nothing else can. Here the installation's HSMs share a
*backup key* (``backup.key`` beside the node data directories, created once): its X25519 key
pair stands in for the hardware key. ``cluster_backup_export`` seals the member's users, token
keys, cluster key and masking key to the backup public key with the join envelope
(:mod:`strongroom.crypto.cluster_join`: ephemeral X25519 + HKDF + AES-256-GCM, signed with the
certified cluster key); ``cluster_backup_restore`` on a fresh node checks the signature and the
certificate chain to the trust anchor the control plane expects, then installs the state.
Both are for the appliance user (the control plane); the control plane stores only the blob.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from strongroom.crypto import rng
from strongroom.crypto.cluster_join import (
    JoinEnvelope,
    JoinRejected,
    backup_keypair,
    open_join,
    seal_join,
)
from strongroom.crypto.x509 import CertificateError, validate_cluster_certificate
from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.messages import Empty, JoinImportArgs
from strongroom.hsm.ops_join import ClusterState, cluster_state, install_state
from strongroom.hsm.registry import Ctx, OpSpec, Registry
from strongroom.hsm.roles import Permission

if TYPE_CHECKING:
    from strongroom.hsm.node import Node

__all__ = ["backup_key_file", "register"]

_LOG = "MGMT_KEY_DETAILS_LOG (1)"


def backup_key_file(node_data_dir: Path) -> Path:
    """The installation's backup key: shared by the HSMs under one ``hsms`` directory."""
    return node_data_dir.parent / "backup.key"


def _backup_private(node: Node) -> bytes:
    return backup_keypair(_secret(node))[0]


def _secret(node: Node) -> bytes:
    path = backup_key_file(node.config.data_dir)
    if not path.exists():
        fresh = rng.random_bytes(32)  # drawn first: a failed draw must not leave an empty file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(fresh)
    secret = path.read_bytes()
    if len(secret) != 32:
        raise HsmError(ErrorCode.INTERNAL, "the backup key is damaged")
    return secret


def _backup_public(node: Node) -> bytes:
    return backup_keypair(_secret(node))[1]


def backup_export(node: Node, ctx: Ctx, args: Empty) -> dict[str, Any]:
    """Seal this member's cluster state for the installation's backup key."""
    s = node.state
    if not s.cluster_cert_pem:
        raise HsmError(ErrorCode.INVALID_REQUEST, "this HSM has no cluster certificate yet")
    state = cluster_state(node)
    try:
        env = seal_join(s.identity_key, _backup_public(node), msgspec.msgpack.encode(state))
    except JoinRejected as exc:
        raise HsmError(ErrorCode.INVALID_REQUEST, str(exc)) from None
    ctx.keys.extend(k.ref for k in state.keys)
    return {
        "sender": env.sender_public,
        "nonce": env.nonce,
        "sealed": env.sealed,
        "signature": env.signature,
        "certificate": s.cluster_cert_pem,
        "trust_anchor": s.trust_anchor_pem,
    }


def backup_restore(node: Node, ctx: Ctx, args: JoinImportArgs) -> dict[str, int]:
    """Verify and install a backup on a fresh HSM (restore overwrites nothing: it must be new)."""
    if node.state.cluster_cert_pem or node.state.activated:
        raise HsmError(ErrorCode.INVALID_REQUEST, "this HSM already belongs to a cluster")
    if args.trust_anchor.strip() != args.expected_trust_anchor.strip():
        raise HsmError(ErrorCode.CERTIFICATE_INVALID, "the backup is of another cluster")
    env = JoinEnvelope(args.sender, args.nonce, args.sealed, args.signature)
    backup_private = _backup_private(node)  # its failures are the node's, not the certificate's
    try:
        plain = open_join(backup_private, env, args.certificate)
        state = msgspec.msgpack.decode(plain, type=ClusterState)
        validate_cluster_certificate(args.certificate, args.trust_anchor, state.identity_key)
    except (JoinRejected, CertificateError, msgspec.DecodeError) as exc:
        raise HsmError(ErrorCode.CERTIFICATE_INVALID, str(exc)) from None
    return install_state(node, ctx, state, args.certificate, args.trust_anchor)


def register(reg: Registry) -> None:
    """Declare this family's operations."""
    prov = Permission.PROVISION
    reg.add(
        OpSpec(
            "cluster_backup_export",
            Empty,
            prov,
            "CN_BACKUP_EXPORT",
            _LOG,
            handler=backup_export,
        )
    )
    reg.add(
        OpSpec(
            "cluster_backup_restore",
            JoinImportArgs,
            prov,
            "CN_BACKUP_RESTORE",
            _LOG,
            handler=backup_restore,
        )
    )
