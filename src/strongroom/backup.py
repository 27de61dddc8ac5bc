"""Backing up and restoring a data directory (the embedded SQLite default), also while
``serve`` runs.

A backup is a directory that holds, with their modes:

* ``strongroom.db`` and ``audit.db``: consistent snapshots taken with SQLite's online backup
  (one read transaction each, so a ``serve`` writing meanwhile neither waits nor tears them).
  The trail writer's journal is ingested into the trail's tables first, as ``strongroom audit``
  does, so the snapshot holds every call answered before it.
* the root key, the trail's signing key, the ``credentials`` and ``config`` files, the alarm
  states and ``serve --tls-self-signed``'s certificate, where they exist;
* ``hsms/``: the installation's HSM backup key, the clusters' trust anchors and every HSM
  node's sealed store and audit log. A node may write while it is copied, so each copy is
  opened and verified as the node itself would (the index against every object file, the
  audit log's chain); an inconsistent copy is taken again. The audit log is cut after its last
  whole block.
* ``backup.json``: the format and the SHA-256 of every file, checked by :func:`restore`.

They are taken in that order: the key store first, so that every key it names is in the HSM
copies taken after it (a key made in between is an orphan on its HSM, harmless); the trail
after the key store, so it may hold calls whose effects the key store snapshot lacks, never
the other way round.

A backup holds the root key and every HSM's node key: whoever reads it can read every key.
Keep it as you keep the data directory. The database of ``--database-url`` (PostgreSQL) is
backed up with PostgreSQL's own tools; :func:`backup` refuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import time
from pathlib import Path

from strongroom.audit.journal import catch_up
from strongroom.audit.store import TrailStore, open_trail_engine
from strongroom.crypto.audit_sign import load_or_create_signer
from strongroom.hsm.audit import AuditCorrupt, AuditLog
from strongroom.hsm.store import SealedStore, StoreTampered
from strongroom.node import load_or_create_node_id

__all__ = ["FORMAT", "MANIFEST", "BackupError", "backup", "restore"]

FORMAT = 1
MANIFEST = "backup.json"
#: the files of a data directory a backup copies as they are (the databases are snapshots)
_FILES = (
    "node-id",
    "root.key",
    "audit-signing.key",
    "credentials",
    "config",
    "alarms.json",
    "tls-self-signed.crt",
    "tls-self-signed.key",
)
#: what a node directory holds that is not state (its log, its PID)
_NODE_SKIP = frozenset({"node.log", "node.pid"})
_NODE_ATTEMPTS = 20
_LEN = struct.Struct(">I")


class BackupError(Exception):
    """The backup or restore cannot be made; the message says why."""


def backup(data_dir: Path, out: Path) -> dict[str, str]:
    """Back up ``data_dir`` into the new directory ``out``; return the manifest's files."""
    if not (data_dir / "strongroom.db").exists():
        raise BackupError(f"no Strongroom database in {data_dir}")
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} exists and is not empty")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    try:
        return _backup(data_dir, out)
    except BaseException:
        # no half-made backup left behind (it would hold secrets, and no manifest)
        for entry in out.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        raise


def _backup(data_dir: Path, out: Path) -> dict[str, str]:
    _snapshot(data_dir / "strongroom.db", out / "strongroom.db")
    if (data_dir / "audit.db").exists():
        trail = TrailStore(
            open_trail_engine(data_dir, None),
            load_or_create_signer(data_dir),
            node=load_or_create_node_id(data_dir),
        )
        catch_up(trail, data_dir)  # the journal's entries into the tables first
        trail.engine.dispose()
        _snapshot(data_dir / "audit.db", out / "audit.db")
    if (data_dir / "hsms").is_dir():
        _copy_hsms(data_dir / "hsms", out / "hsms")
    for name in _FILES:
        if (data_dir / name).is_file():
            _copy_file(data_dir / name, out / name)
    files = {str(path.relative_to(out)): _sha256(path) for path in _files(out)}
    manifest = {"format": FORMAT, "created": time.time(), "files": files}
    _write(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode(), 0o600)
    return files


def restore(source: Path, data_dir: Path) -> dict[str, str]:
    """Restore the backup ``source`` into ``data_dir`` (absent or empty); return its files.
    Every file is checked against the manifest before anything is written."""
    try:
        manifest = json.loads((source / MANIFEST).read_bytes())
        files = dict(manifest["files"])
        version = manifest["format"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{source} is not a Strongroom backup ({exc})") from None
    if version != FORMAT:
        raise BackupError(f"backup format {version} is not supported (this version reads {FORMAT})")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"{data_dir} exists and is not empty: restore into a new directory")
    for name, digest in sorted(files.items()):
        path = source / name
        if Path(name).is_absolute() or ".." in Path(name).parts or not path.is_file():
            raise BackupError(f"the backup's file {name} is missing")
        if _sha256(path) != digest:
            raise BackupError(f"the backup's file {name} does not match its manifest")
    if "strongroom.db" not in files or "root.key" not in files:
        raise BackupError("the backup holds no key store or no root key")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    for name in sorted(files):
        _copy_file(source / name, data_dir / name)
    return files


# -- the pieces ------------------------------------------------------------------------------
def _snapshot(database: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (WAL mode), mode 0600."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    with (
        contextlib.closing(sqlite3.connect(database, timeout=30)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)  # every page in one step: one read transaction
        dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(str(target) + suffix).unlink(missing_ok=True)


def _copy_hsms(source: Path, target: Path) -> None:
    target.mkdir(mode=0o700)
    for entry in sorted(source.iterdir()):
        if entry.is_dir() and (entry / "node.key").is_file():
            _copy_node(entry, target / entry.name)
        elif entry.is_dir():
            target.joinpath(entry.name).mkdir(mode=0o700)
            for item in sorted(entry.iterdir()):
                if item.is_file():
                    _copy_file(item, target / entry.name / item.name)
        elif entry.is_file():
            _copy_file(entry, target / entry.name)


def _copy_node(source: Path, target: Path) -> None:
    """Copy one HSM node's directory until the copy verifies (the node may be writing)."""
    problem = ""
    for _ in range(_NODE_ATTEMPTS):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(mode=0o700)
        try:
            _copy_node_once(source, target)
            store = SealedStore(target)
            store.load()  # the index against every object file
            AuditLog(target / "audit.log", store.sealer("audit")).close()
            return
        except (StoreTampered, AuditCorrupt, FileNotFoundError) as exc:
            problem = str(exc)
            time.sleep(0.05)
    raise BackupError(
        f"HSM {source.name}: no copy of its store verified in {_NODE_ATTEMPTS} attempts "
        f"({problem}); is the store itself intact?"
    )


def _copy_node_once(source: Path, target: Path) -> None:
    # the index before the objects: an object made meanwhile is an orphan in the copy (which
    # the store drops), one deleted meanwhile is missing (and the copy is taken again)
    for item in sorted(source.iterdir()):
        if item.is_file() and item.name not in _NODE_SKIP and item.name != "audit.log":
            _copy_file(item, target / item.name)
    index = source / "store" / "index.sealed"
    objects = target / "store" / "objects"
    objects.mkdir(parents=True, mode=0o700)
    if index.exists():
        _copy_file(index, target / "store" / "index.sealed")
    for item in sorted((source / "store" / "objects").glob("*.sealed")):
        with contextlib.suppress(FileNotFoundError):
            _copy_file(item, objects / item.name)
    log = source / "audit.log"
    if log.exists():
        _write(target / "audit.log", _whole_blocks(log.read_bytes()), 0o600)


def _whole_blocks(data: bytes) -> bytes:
    """An HSM audit log up to its last whole block (a block being appended is left out)."""
    pos = 0
    while pos + _LEN.size <= len(data):
        (size,) = _LEN.unpack_from(data, pos)
        if pos + _LEN.size + size > len(data):
            break
        pos += _LEN.size + size
    return data[:pos]


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(target, source.read_bytes(), source.stat().st_mode & 0o777)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(path, mode)


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
