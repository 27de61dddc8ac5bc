"""Typed arguments of every wire operation, shared by the node and the client.

Byte strings travel as MessagePack binary. Key references are integers. Unknown fields are
rejected.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "ActivateArgs",
    "AuditReadArgs",
    "CertificateArgs",
    "CloneExportArgs",
    "CloneImportArgs",
    "CryptoArgs",
    "DigestArgs",
    "Empty",
    "FindArgs",
    "GeneratePairArgs",
    "GenerateSymmetricArgs",
    "JoinExportArgs",
    "JoinImportArgs",
    "KeyRefArgs",
    "LoginArgs",
    "MacArgs",
    "RandomArgs",
    "SetAttributeArgs",
    "ShareArgs",
    "SignArgs",
    "UnwrapArgs",
    "UserArgs",
    "UserCreateArgs",
    "WrapArgs",
]


class _Args(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class Empty(_Args):
    """No arguments."""


class ActivateArgs(_Args):
    password: str


class LoginArgs(_Args):
    username: str
    role: str
    password: str


class PeerEventArgs(_Args):
    blob: bytes


class PeersArgs(_Args):
    peers: list[str]


class UserArgs(_Args):
    username: str
    role: str


class UserCreateArgs(_Args):
    username: str
    role: str
    password: str


class GenerateSymmetricArgs(_Args):
    key_type: str
    length_bytes: int
    label: str = ""
    attributes: dict[str, str] = {}
    share: list[str] = []
    session: bool = False


class GeneratePairArgs(_Args):
    key_type: str
    public_label: str = ""
    private_label: str = ""
    modulus_bits: int = 2048
    public_exponent: int = 65537
    curve: str = ""
    public_attributes: dict[str, str] = {}
    private_attributes: dict[str, str] = {}
    share: list[str] = []
    session: bool = False


class FindArgs(_Args):
    filters: dict[str, str] = {}
    verbose: bool = True


class KeyRefArgs(_Args):
    ref: int


class ShareArgs(_Args):
    ref: int
    username: str


class SetAttributeArgs(_Args):
    ref: int
    name: str
    value: str


class WrapArgs(_Args):
    mechanism: str
    payload_ref: int
    wrapping_ref: int
    hash: str = "sha256"


class UnwrapArgs(_Args):
    mechanism: str
    unwrapping_ref: int
    data: bytes
    key_type: str
    key_class: str
    label: str = ""
    attributes: dict[str, str] = {}
    share: list[str] = []
    session: bool = False
    hash: str = "sha256"


class CryptoArgs(_Args):
    ref: int
    mechanism: str
    data: bytes
    aad: bytes = b""
    hash: str = "sha256"


class SignArgs(_Args):
    ref: int
    mechanism: str
    data: bytes
    hash: str = "sha256"
    signature: bytes = b""


class MacArgs(_Args):
    ref: int
    data: bytes
    hash: str = "sha256"
    mac: bytes = b""


class DigestArgs(_Args):
    hash: str
    data: bytes


class RandomArgs(_Args):
    length: int


class AuditReadArgs(_Args):
    start_seq: int = 0
    limit: int = 1000


class CertificateArgs(_Args):
    certificate: str
    trust_anchor: str


class CloneExportArgs(_Args):
    refs: list[int] = []
    users: bool = False


class CloneImportArgs(_Args):
    blob: bytes


class JoinExportArgs(_Args):
    offer: bytes


class JoinImportArgs(_Args):
    sender: bytes
    nonce: bytes
    sealed: bytes
    signature: bytes
    certificate: str
    trust_anchor: str
    expected_trust_anchor: str
