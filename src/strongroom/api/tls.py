"""What the edge knows of a connection's TLS (``serve --tls-cert``), for the audit trail's
``tlsDetails``."""

from __future__ import annotations

import ssl
from typing import NamedTuple

__all__ = ["TlsDetails", "tls_details"]


class TlsDetails(NamedTuple):
    """A TLS connection's protocol version and cipher suite (OpenSSL's names, as CloudTrail's
    ``tlsDetails`` has them: ``TLSv1.3``, ``TLS_AES_256_GCM_SHA384``)."""

    version: str
    cipher: str


def tls_details(ssl_object: object) -> TlsDetails | None:
    """The :class:`TlsDetails` of a transport's ``ssl_object`` extra (None: plain HTTP).
    asyncio and uvloop call ``connection_made`` after the handshake, so both are known."""
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    cipher = ssl_object.cipher()
    return TlsDetails(ssl_object.version() or "", cipher[0] if cipher else "")
