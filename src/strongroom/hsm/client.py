"""The typed HSM client: what the CLI and KMS use to talk to HSM nodes.

* :class:`AsyncHsmClient` — asyncio; connection pool per node, many concurrent requests per
  connection, per-request timeouts.
* :class:`HsmClient` — the same API, blocking.
* :func:`client_ssl_context` — trust a node by its self-signed certificate (``node_cert``) or,
  once the cluster is initialized, by the customer's trust anchor.
"""

from __future__ import annotations

from strongroom.hsm._channel import (
    HsmClientError,
    HsmUnavailable,
    NodeAddress,
    client_ssl_context,
)
from strongroom.hsm.audit import AuditRecord
from strongroom.hsm.client_async import AsyncHsmClient, KeyInfo
from strongroom.hsm.client_sync import HsmClient
from strongroom.hsm.errors import ErrorCode

__all__ = [
    "AsyncHsmClient",
    "AuditRecord",
    "ErrorCode",
    "HsmClient",
    "HsmClientError",
    "HsmUnavailable",
    "KeyInfo",
    "NodeAddress",
    "client_ssl_context",
]
