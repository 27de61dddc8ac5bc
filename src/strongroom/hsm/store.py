"""The node's sealed store on disk.

Layout of a data directory::

    node.key                  32-byte node key, mode 0600; never leaves the directory
    store/index.sealed        node state: users, certificates, and a digest of every object file
    store/objects/<ref>.sealed one sealed key object each
    audit.log                 the audit log (see :mod:`strongroom.hsm.audit`)
    tls-key.pem               the node's TLS key, PEM encrypted under a node-key-derived password
    hsm-certificate.pem       the certificate the node presents (public)
    appliance-user.pin        the appliance user's password, mode 0600 (for the control plane)

Every file is sealed under a sub-key of the node key with its own name as associated data; the
index holds the SHA-256 of each object file, so an altered, swapped, rolled-back or deleted object
file is detected and the node refuses to use the store.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import msgspec

from strongroom.crypto.hsm_seal import NODE_KEY_BYTES, SealBroken, Sealer, new_node_key
from strongroom.crypto.hsm_symmetric import hkdf_sha256
from strongroom.hsm.objects import KeyObject
from strongroom.hsm.users import UserRecord

__all__ = ["NodeState", "SealedStore", "StoreTampered", "write_private_file"]

STORE_FORMAT = 1


class StoreTampered(Exception):
    """A store file failed authentication or does not match the index."""


class NodeState(msgspec.Struct):
    """Everything about a node except its key objects."""

    hsm_id: str
    az: str
    reboot_counter: int
    activated: bool
    users: list[UserRecord]
    identity_key: bytes
    self_signed_pem: str
    masking_key: bytes
    objects: dict[str, bytes] = {}
    cluster_cert_pem: str = ""
    trust_anchor_pem: str = ""
    format: int = STORE_FORMAT
    #: the other members' addresses, for the cluster-wide login lockout
    peers: list[str] = []


def write_private_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Atomically replace ``path`` with ``data`` (fsynced, given mode)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _object_name(ref: int) -> str:
    return f"{ref:016x}"


class SealedStore:
    """Reads and writes one node's sealed files."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._objects_dir = data_dir / "store" / "objects"
        self._index = data_dir / "store" / "index.sealed"
        self._node_key_path = data_dir / "node.key"
        self._node_key = b""
        self._sealer: Sealer | None = None
        self._encoder = msgspec.msgpack.Encoder()

    @property
    def exists(self) -> bool:
        """True once the node has been initialized in this directory."""
        return self._node_key_path.exists()

    def initialize(self) -> None:
        """Create the directory layout and a fresh node key."""
        self._objects_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        write_private_file(self._node_key_path, new_node_key())
        self._open_key()

    def _open_key(self) -> None:
        key = self._node_key_path.read_bytes()
        if len(key) != NODE_KEY_BYTES:
            raise StoreTampered("node.key has the wrong length")
        self._node_key = key
        self._sealer = Sealer(key, "store")

    def sealer(self, purpose: str) -> Sealer:
        """A sealer for another purpose (the audit log) under the same node key."""
        return Sealer(self._node_key, purpose)

    def derived_secret(self, purpose: str) -> bytes:
        """A secret derived from the node key (e.g. the TLS key's PEM password)."""
        return hkdf_sha256(self._node_key, b"strongroom-hsm:" + purpose.encode())

    def _seal(self) -> Sealer:
        if self._sealer is None:
            raise RuntimeError("store not opened")
        return self._sealer

    def save_state(self, state: NodeState) -> None:
        """Seal and atomically replace the index."""
        blob = self._seal().seal(self._encoder.encode(state), b"index")
        write_private_file(self._index, blob)

    def save_object(self, state: NodeState, key: KeyObject) -> None:
        """Seal one key object and record its digest in ``state`` (caller saves the state)."""
        name = _object_name(key.ref)
        blob = self._seal().seal(self._encoder.encode(key), b"object:" + name.encode())
        write_private_file(self._objects_dir / (name + ".sealed"), blob)
        state.objects[name] = hashlib.sha256(blob).digest()

    def delete_object(self, state: NodeState, ref: int) -> None:
        """Forget an object in ``state`` and remove its file (caller saves the state)."""
        name = _object_name(ref)
        state.objects.pop(name, None)
        (self._objects_dir / (name + ".sealed")).unlink(missing_ok=True)

    def load(self) -> tuple[NodeState, list[KeyObject]]:
        """Open and verify the whole store, removing object files no index names (written
        before a crash, never committed); raises :class:`StoreTampered`. The node's own."""
        state, keys = self.read()
        for path in self._objects_dir.glob("*.sealed"):
            if path.stem not in state.objects:
                path.unlink()
        return state, keys

    def read(self) -> tuple[NodeState, list[KeyObject]]:
        """Open and verify the whole store without changing a file (a running node's store may
        be read beside it); raises :class:`StoreTampered`."""
        self._open_key()
        try:
            state = msgspec.msgpack.decode(
                self._seal().open(self._index.read_bytes(), b"index"), type=NodeState
            )
        except (SealBroken, msgspec.DecodeError, FileNotFoundError) as exc:
            raise StoreTampered(f"store index: {exc}") from None
        keys = [self._load_object(name, digest) for name, digest in sorted(state.objects.items())]
        return state, keys

    def _load_object(self, name: str, digest: bytes) -> KeyObject:
        path = self._objects_dir / (name + ".sealed")
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise StoreTampered(f"object {name} is missing") from None
        if hashlib.sha256(blob).digest() != digest:
            raise StoreTampered(f"object {name} does not match the index")
        try:
            plain = self._seal().open(blob, b"object:" + name.encode())
            return msgspec.msgpack.decode(plain, type=KeyObject)
        except (SealBroken, msgspec.DecodeError):
            raise StoreTampered(f"object {name} failed authentication") from None

    def zeroize(self) -> None:
        """Destroy the node key and every sealed file (the audit log becomes unreadable)."""
        if self._node_key_path.exists():
            size = self._node_key_path.stat().st_size
            fd = os.open(self._node_key_path, os.O_WRONLY)
            try:
                os.write(fd, os.urandom(size))
                os.fsync(fd)
            finally:
                os.close(fd)
            self._node_key_path.unlink()
        shutil.rmtree(self.data_dir / "store", ignore_errors=True)
        for name in ("tls-key.pem", "appliance-user.pin"):
            (self.data_dir / name).unlink(missing_ok=True)
        audit = self.data_dir / "audit.log"
        if audit.exists():
            audit.rename(self.data_dir / f"audit.log.zeroized-{os.urandom(4).hex()}")
        self._node_key = b""
        self._sealer = None
