"""Identity-store writes from two connections at once (``serve`` and ``strongroom iam`` on one
SQLite file): each read-check-write takes the write lock first, so none fails with "database is
locked" (a deferred transaction that read before another connection committed could not
upgrade to a write, and SQLite answers that at once, without waiting)."""

from __future__ import annotations

import threading
from pathlib import Path

from strongroom.clock import SystemClock
from strongroom.iam.identities import IdentityStore
from strongroom.iam.roles import RoleStore
from strongroom.rootkey import load_or_create_root_key
from strongroom.storage.engine import open_engine, sqlite_url
from strongroom.storage.migrations import apply_migrations

ACCOUNT = "111122223333"
ROUNDS = 120


def test_two_connections_create_users_and_roles_at_once(tmp_path: Path) -> None:
    url = sqlite_url(str(tmp_path / "strongroom.db"))
    engines = [open_engine(url), open_engine(url)]
    apply_migrations(engines[0])
    root = load_or_create_root_key(tmp_path)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(side: int) -> None:
        ids = IdentityStore(engines[side], root, SystemClock())
        roles = RoleStore(engines[side], root, SystemClock(), ids)
        start.wait()
        for i in range(ROUNDS):
            try:
                ids.create_user(ACCOUNT, f"user-{side}-{i}")
                ids.create_access_key(ACCOUNT, f"user-{side}-{i}")
                roles.create_role(ACCOUNT, f"role-{side}-{i}", _TRUST)
            except Exception as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(side,)) for side in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert errors == []
        listed = IdentityStore(engines[0], root, SystemClock()).list_users(ACCOUNT)
        assert len(listed) == 2 * ROUNDS
    finally:
        for engine in engines:
            engine.dispose()


_TRUST = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole"}]}'
)
