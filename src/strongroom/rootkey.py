"""The root key: protects every secret Strongroom keeps at rest.

Embedded default: 32 random bytes generated on first start into ``<data-dir>/root.key`` with
file mode 0600. Every wrap binds a purpose string (the key ARN and version, an access key id)
as AAD, so a wrapped secret cannot be moved to another row unnoticed.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from strongroom.crypto import symmetric
from strongroom.files import create_secret_once

__all__ = ["RootKey", "load_or_create_root_key"]

_FILE = "root.key"
_SIZE = 32


class RootKey:
    """Wraps and unwraps secrets under the root key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _SIZE:
            raise ValueError("root key must be 32 bytes")
        self._key = key

    def wrap(self, secret: bytes, purpose: str) -> bytes:
        return symmetric.wrap(self._key, secret, purpose.encode("utf-8"))

    def check_value(self) -> str:
        """Tells whether two root keys are the same and reveals nothing of either."""
        label = b"strongroom check value: root-key"
        return hmac.new(self._key, label, hashlib.sha256).hexdigest()[:32]

    def unwrap(self, wrapped: bytes, purpose: str) -> bytes:
        """Raises :class:`strongroom.crypto.symmetric.CryptoError` if tampered with."""
        return symmetric.unwrap(self._key, wrapped, purpose.encode("utf-8"))


def load_or_create_root_key(data_dir: Path) -> RootKey:
    """Load ``<data-dir>/root.key``, creating it (mode 0600) if absent."""
    path = data_dir / _FILE
    if not path.exists():
        create_secret_once(path, symmetric.random_bytes(_SIZE))
    data = path.read_bytes()
    if len(data) != _SIZE:
        raise RuntimeError(f"{path} is not a Strongroom root key (wrong size)")
    return RootKey(data)
