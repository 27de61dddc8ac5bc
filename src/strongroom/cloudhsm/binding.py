"""CloudHSM on the wire: the ``BaldrApiService`` target prefix (SigV4 service ``cloudhsm``),
each call authorized as ``cloudhsm:<Operation>`` by the caller's identity policies, on the
resource and with the tag keys of :mod:`strongroom.cloudhsm.access`."""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

from strongroom.api.app import Service
from strongroom.api.shapes import ServiceShapes
from strongroom.api.sigv4 import SignedIdentity
from strongroom.cloudhsm.access import (
    names_resource_tags,
    resource_of,
    shared_source,
    tag_context,
)
from strongroom.cloudhsm.control import ClusterControl
from strongroom.cloudhsm.ops import OPERATIONS, CallerContext
from strongroom.errors import AwsError
from strongroom.iam.authorize import Authorizer, caller_of
from strongroom.iam.identities import IdentityStore
from strongroom.iam.policy import RequestFacts, global_keys

__all__ = ["cloudhsm_service"]

_REGION = re.compile(r"([a-z]+-){2,3}\d+")


def cloudhsm_service(
    control: ClusterControl,
    identities: IdentityStore,
    authz: Authorizer | None,
    secure_transport: bool = False,
) -> Service:
    """The cloudhsmv2 :class:`~strongroom.api.app.Service` (``secure_transport``: the endpoint
    is HTTPS, for ``aws:SecureTransport``)."""
    model = ServiceShapes.load("cloudhsmv2")

    def call(
        operation: str, request: dict[str, Any], who: SignedIdentity, source_ip: str, rid: str
    ) -> dict[str, Any]:
        principal = identities.authenticate(who.access_key_id, who.session_token)
        if not _REGION.fullmatch(who.region):
            raise AwsError(
                "InvalidSignatureException", "Credential should be scoped to a valid region."
            )
        handler = OPERATIONS.get(operation)
        if handler is None:
            raise AwsError("CloudHsmServiceException", f"{operation} is not supported")
        ctx = CallerContext(principal.account_id, who.region)
        if authz is not None:
            keys = global_keys(source_ip, who.region, secure_transport, time.time())
            documents = authz.identity_documents(principal)
            keys |= tag_context(control, operation, request, ctx, names_resource_tags(documents))
            resource = resource_of(operation, request, ctx)
            facts = RequestFacts(f"cloudhsm:{operation}", resource, caller_of(principal), keys)
            verdict = authz.decide(principal, facts, None, principal.account_id)
            shared = shared_source(control, operation, request, ctx)
            if verdict.allowed and shared is not None:  # restoring another account's backup
                resource, policy, owner = shared
                facts = dataclasses.replace(facts, resource=resource)
                verdict = authz.decide(principal, facts, authz.parsed(policy, "resource"), owner)
            if not verdict.allowed:
                on = "" if resource == "*" else f" on resource: {resource}"
                raise AwsError(
                    "CloudHsmAccessDeniedException",
                    f"User: {principal.arn} is not authorized to perform: "
                    f"cloudhsm:{operation}{on} {verdict.reason}",
                )
        return handler(control, ctx, request)

    return Service(
        "BaldrApiService",
        "cloudhsm",
        model,
        call,
        internal_error="CloudHsmInternalFailureException",
    )
