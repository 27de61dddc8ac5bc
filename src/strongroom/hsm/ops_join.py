"""Operations: joining a cluster — the authenticated hand-over of the cluster state.

A new HSM (fresh, not yet part of a cluster) offers an ephemeral key (``cluster_join_offer``); a
member seals its cluster key, certificate, masking key, users and token keys to that offer and
signs the transcript with the cluster key (``cluster_join_export``); the new HSM checks the
certificate against the trust anchor it was told to expect and the signature, then installs the
state (``cluster_join_import``). After that both nodes share the masking key, so masked objects
(:mod:`ops_cluster` ``clone_export`` / ``clone_import``) move between them. All three are for the
appliance user, i.e. the control plane. See :mod:`strongroom.crypto.cluster_join`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from strongroom.crypto.cluster_join import JoinEnvelope, JoinRejected, new_offer, open_join
from strongroom.crypto.cluster_join import seal_join as _seal
from strongroom.crypto.x509 import CertificateError, validate_cluster_certificate
from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.messages import Empty, JoinExportArgs, JoinImportArgs
from strongroom.hsm.objects import KeyObject
from strongroom.hsm.registry import Ctx, OpSpec, Registry
from strongroom.hsm.roles import Permission
from strongroom.hsm.users import APPLIANCE_USERNAME, UserRecord

if TYPE_CHECKING:
    from strongroom.hsm.node import Node

__all__ = ["ClusterState", "cluster_state", "install_state", "register"]

_LOG = "MGMT_KEY_DETAILS_LOG (1)"


class ClusterState(msgspec.Struct):
    """What a member hands a joining HSM (sealed)."""

    identity_key: bytes
    masking_key: bytes
    activated: bool
    users: list[UserRecord]
    keys: list[KeyObject]


def cluster_state(node: Node) -> ClusterState:
    """This member's cluster state: what a joining HSM or a backup receives."""
    s = node.state
    keys = [k for k in node.keys.all() if k.session == 0]
    return ClusterState(s.identity_key, s.masking_key, s.activated, node.users.records(), keys)


def join_offer(node: Node, ctx: Ctx, args: Empty) -> dict[str, bytes]:
    """A fresh node's ephemeral public key for the exchange."""
    if node.state.cluster_cert_pem or node.state.activated:
        raise HsmError(ErrorCode.INVALID_REQUEST, "this HSM already belongs to a cluster")
    private, public = new_offer()
    node.join_secret = private
    return {"public": public}


def join_export(node: Node, ctx: Ctx, args: JoinExportArgs) -> dict[str, Any]:
    """Seal this member's cluster state to a joining node's offer."""
    s = node.state
    if not s.cluster_cert_pem:
        raise HsmError(ErrorCode.INVALID_REQUEST, "this HSM has no cluster certificate yet")
    state = cluster_state(node)
    keys = state.keys
    try:
        env = _seal(s.identity_key, args.offer, msgspec.msgpack.encode(state))
    except JoinRejected as exc:
        raise HsmError(ErrorCode.INVALID_REQUEST, str(exc)) from None
    ctx.keys.extend(k.ref for k in keys)
    return {
        "sender": env.sender_public,
        "nonce": env.nonce,
        "sealed": env.sealed,
        "signature": env.signature,
        "certificate": s.cluster_cert_pem,
        "trust_anchor": s.trust_anchor_pem,
    }


def join_import(node: Node, ctx: Ctx, args: JoinImportArgs) -> dict[str, int]:
    """Verify and install a member's cluster state (users, keys, keys of the cluster)."""
    if node.join_secret is None:
        raise HsmError(ErrorCode.INVALID_REQUEST, "no join offer is outstanding")
    if args.trust_anchor.strip() != args.expected_trust_anchor.strip():
        raise HsmError(ErrorCode.CERTIFICATE_INVALID, "the member is of another cluster")
    env = JoinEnvelope(args.sender, args.nonce, args.sealed, args.signature)
    try:
        plain = open_join(node.join_secret, env, args.certificate)
        state = msgspec.msgpack.decode(plain, type=ClusterState)
        validate_cluster_certificate(args.certificate, args.trust_anchor, state.identity_key)
    except (JoinRejected, CertificateError) as exc:
        raise HsmError(ErrorCode.CERTIFICATE_INVALID, str(exc)) from None
    node.join_secret = None
    return install_state(node, ctx, state, args.certificate, args.trust_anchor)


def install_state(
    node: Node, ctx: Ctx, state: ClusterState, certificate: str, trust_anchor: str
) -> dict[str, int]:
    """Make a fresh node a member: the cluster key, masking key, users and token keys."""
    s = node.state
    s.identity_key, s.masking_key, s.activated = (
        state.identity_key,
        state.masking_key,
        state.activated,
    )
    s.cluster_cert_pem, s.trust_anchor_pem = certificate, trust_anchor
    for user in state.users:
        if user.username != APPLIANCE_USERNAME:
            node.users.insert(user)
    for key in state.keys:
        node.put_key(key)
        ctx.keys.append(key.ref)
    node.persist()
    node.write_tls_files()
    node.on_certificate_change()
    return {"keys": len(state.keys), "users": len(state.users)}


def register(reg: Registry) -> None:
    """Declare this family's operations."""
    prov = Permission.PROVISION
    reg.add(
        OpSpec("cluster_join_offer", Empty, prov, "CN_CLUSTER_JOIN_OFFER", _LOG, handler=join_offer)
    )
    reg.add(
        OpSpec(
            "cluster_join_export",
            JoinExportArgs,
            prov,
            "CN_EXTRACT_MASKED_OBJECT_USER (0xf0)",
            _LOG,
            handler=join_export,
        )
    )
    reg.add(
        OpSpec(
            "cluster_join_import",
            JoinImportArgs,
            prov,
            "CN_INSERT_MASKED_OBJECT_USER (0xf1)",
            _LOG,
            handler=join_import,
        )
    )
