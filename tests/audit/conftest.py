"""A server for the audit tests, its identity store, and a way to add users."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strongroom.audit.journal import catch_up
from strongroom.audit.store import TrailStore, open_trail_engine
from strongroom.clock import SystemClock
from strongroom.crypto.audit_sign import load_or_create_signer
from strongroom.iam.identities import IdentityStore
from strongroom.iam.roles import RoleStore
from strongroom.rootkey import load_or_create_root_key
from strongroom.storage.engine import open_engine, sqlite_url
from tests.conftest import ACCOUNT, STRONGROOM, Server, running_server


@dataclass
class AuditEnv:
    server: Server
    ids: IdentityStore
    roles: RoleStore

    def user(self, name: str, policy: dict[str, Any] | None = None) -> Any:
        """A boto3 factory for a new user with an optional inline identity policy."""
        self.ids.create_user(ACCOUNT, name)
        if policy is not None:
            self.roles.put_policy("user", ACCOUNT, name, "p", json.dumps(policy))
        pair = self.ids.create_access_key(ACCOUNT, name)
        return pair.access_key_id, pair.secret_access_key

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return audit_cli(self.server.data_dir, *args)


def ingest_journal(data_dir: Path) -> None:
    """Bring the trail's tables up to date with the writer's journal, as readers do (the
    latest calls may be durable in the journal only); each ingestion adds one digest."""
    store = TrailStore(open_trail_engine(data_dir, None), load_or_create_signer(data_dir))
    catch_up(store, data_dir)
    store.engine.dispose()


def audit_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STRONGROOM, "audit", *args, "--data-dir", str(data_dir)],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def audit_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditEnv]:
    base = tmp_path_factory.mktemp("audit")
    with running_server(base / "data") as server:
        engine = open_engine(sqlite_url(str(server.data_dir / "strongroom.db")))
        root = load_or_create_root_key(server.data_dir)
        ids = IdentityStore(engine, root, SystemClock())
        try:
            yield AuditEnv(server, ids, RoleStore(engine, root, SystemClock(), ids))
        finally:
            engine.dispose()
