"""A fresh PostgreSQL database for one benchmark server, dropped afterwards.

``--pg-dsn`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``, trust auth, as on our
machines) names a server where the benchmark may create databases; each ``sr-postgres`` server
gets its own, named ``strongroom_bench_<random>``, and ``serve --database-url`` points at it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg

__all__ = ["DEFAULT_DSN", "fresh_database"]

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def fresh_database(admin_dsn: str) -> Iterator[str]:
    """Create a database on ``admin_dsn``'s server; yield its URL; drop it (its sessions
    ended first) when done."""
    parts = urlsplit(admin_dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("--pg-dsn must be a postgresql:// URL")
    name = f"strongroom_bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
