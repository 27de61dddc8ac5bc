"""What makes one ``serve`` a node among several sharing a PostgreSQL database.

Each data directory is one node. Its name (``<data-dir>/node-id``, made on first start) is
signed into the trail's digests, so that each node's epochs are checked on their own when
several nodes' writers append to one trail. The nodes must share two secrets, copied from the
first node's data directory before another node's first start: the root key (``root.key``:
every key's material is wrapped under it) and the trail's signing key
(``audit-signing.key``). The database keeps a check value of each (:func:`check_secrets`), so a
node given other ones refuses to start instead of serving keys it cannot unwrap or signing
digests no node can verify.
"""

from __future__ import annotations

import hmac
import os
import time
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from strongroom.files import create_secret_once
from strongroom.storage.engine import write_transaction
from strongroom.storage.schema import shared_settings

__all__ = [
    "NODE_ID_FILE",
    "SecretMismatch",
    "agree",
    "check_secrets",
    "load_or_create_node_id",
]

NODE_ID_FILE = "node-id"


class SecretMismatch(RuntimeError):
    """This node's root key or trail key is not the one the database was made with."""


def load_or_create_node_id(data_dir: Path) -> str:
    """``<data-dir>/node-id``, made on first use: ``node-`` and 12 hex digits."""
    path = data_dir / NODE_ID_FILE
    if not path.exists():
        create_secret_once(path, f"node-{os.urandom(6).hex()}".encode("ascii"))
    name = path.read_text(encoding="ascii").strip()
    if not (name.startswith("node-") and len(name) == 17):
        raise RuntimeError(f"{path} does not hold a node name (node- and 12 hex digits)")
    return name


def agree(engine: Engine, name: str, value: str) -> str:
    """The database's ``name`` setting: ``value`` if this node is the first to record it, else
    what the node that was recorded. Shared by every node; settings are never changed."""
    column = shared_settings.c.value
    with write_transaction(engine) as conn:
        row = conn.execute(select(column).where(shared_settings.c.name == name)).first()
        if row is not None:
            return str(row[0])
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(shared_settings).values(name=name, value=value, recorded_at=time.time())
                )
        except IntegrityError:  # another node recorded it first
            return str(conn.execute(select(column).where(shared_settings.c.name == name)).one()[0])
    return value


def check_secrets(engine: Engine, check_values: dict[str, str]) -> None:
    """Record each named secret's check value on first start; later, refuse a different one.

    ``check_values``: a name (``root-key``, ``trail-signing-key``) and a value that tells
    whether two secrets are the same without revealing them (:meth:`RootKey.check_value`, the
    trail key's public fingerprint)."""
    for name, value in check_values.items():
        if not hmac.compare_digest(agree(engine, name, value), value):
            raise SecretMismatch(
                f"this data directory's {name} is not the one the database was made with; "
                "every node sharing a database needs the first node's root.key and "
                "audit-signing.key (copy them before the node's first start)"
            )
