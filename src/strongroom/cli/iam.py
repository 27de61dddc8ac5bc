"""``strongroom iam ...``: the local identity store (users and access keys, per account)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from strongroom.clock import SystemClock
from strongroom.iam.identities import IdentityError, IdentityStore
from strongroom.rootkey import load_or_create_root_key
from strongroom.storage.engine import open_engine, sqlite_url
from strongroom.storage.migrations import apply_migrations

__all__ = ["register"]

F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    """Options every ``iam`` command takes."""
    func = click.option(
        "--account-id", default="111122223333", show_default=True, envvar="STRONGROOM_ACCOUNT_ID"
    )(func)
    func = click.option(
        "--data-dir",
        default="./.strongroom",
        show_default=True,
        type=click.Path(file_okay=False, path_type=Path),
        envvar="STRONGROOM_DATA_DIR",
    )(func)
    func = click.option("--database-url", default=None, envvar="STRONGROOM_DATABASE_URL")(func)
    return func


def _store(data_dir: Path, database_url: str | None) -> IdentityStore:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = load_or_create_root_key(data_dir)
    engine = open_engine(database_url or sqlite_url(str(data_dir / "strongroom.db")))
    apply_migrations(engine)
    return IdentityStore(engine, root, SystemClock())


def _run(action: Callable[[IdentityStore], Any]) -> Callable[..., None]:
    def command(data_dir: Path, database_url: str | None, **_: Any) -> None:
        try:
            result = action(_store(data_dir, database_url))
        except IdentityError as exc:
            click.echo(json.dumps({"Error": str(exc)}), err=True)
            sys.exit(1)
        if result is not None:
            click.echo(json.dumps(result, indent=2))

    return command


@click.group("iam")
def iam() -> None:
    """Manage users and access keys of the local identity store."""


def _user_dict(u: Any) -> dict[str, Any]:
    return {
        "UserName": u.user_name,
        "UserId": u.user_id,
        "Arn": f"arn:aws:iam::{u.account_id}:user/{u.user_name}",
        "CreateDate": u.created,
    }


def _key_dict(k: Any) -> dict[str, Any]:
    return {
        "UserName": k.user_name,
        "AccessKeyId": k.access_key_id,
        "Status": k.status,
        "CreateDate": k.created,
    }


@iam.command("create-user")
@click.argument("name")
@_common
def create_user(name: str, account_id: str, data_dir: Path, database_url: str | None) -> None:
    """Create user NAME."""
    _run(lambda s: {"User": _user_dict(s.create_user(account_id, name))})(data_dir, database_url)


@iam.command("create-access-key")
@click.argument("name")
@_common
def create_access_key(name: str, account_id: str, data_dir: Path, database_url: str | None) -> None:
    """Create an access key pair for user NAME and print it (the secret is shown only now)."""

    def action(s: IdentityStore) -> dict[str, Any]:
        pair = s.create_access_key(account_id, name)
        return {
            "AccessKey": {
                "UserName": pair.user_name,
                "AccessKeyId": pair.access_key_id,
                "SecretAccessKey": pair.secret_access_key,
                "Status": pair.status,
                "CreateDate": pair.created,
            }
        }

    _run(action)(data_dir, database_url)


@iam.command("list-users")
@_common
def list_users(account_id: str, data_dir: Path, database_url: str | None) -> None:
    """List the users of the account."""
    _run(lambda s: {"Users": [_user_dict(u) for u in s.list_users(account_id)]})(
        data_dir, database_url
    )


@iam.command("list-access-keys")
@click.argument("name", required=False)
@_common
def list_access_keys(
    name: str | None, account_id: str, data_dir: Path, database_url: str | None
) -> None:
    """List access keys of the account (of user NAME if given); secrets are never shown."""
    _run(
        lambda s: {
            "AccessKeyMetadata": [_key_dict(k) for k in s.list_access_keys(account_id, name)]
        }
    )(data_dir, database_url)


@iam.command("delete-access-key")
@click.argument("access_key_id")
@_common
def delete_access_key(
    access_key_id: str, account_id: str, data_dir: Path, database_url: str | None
) -> None:
    """Delete access key ACCESS_KEY_ID."""
    _run(lambda s: s.delete_access_key(account_id, access_key_id))(data_dir, database_url)


@iam.command("delete-user")
@click.argument("name")
@_common
def delete_user(name: str, account_id: str, data_dir: Path, database_url: str | None) -> None:
    """Delete user NAME (its access keys must be deleted first)."""
    _run(lambda s: s.delete_user(account_id, name))(data_dir, database_url)


def register(group: click.Group) -> None:
    """Attach ``iam`` to the root group."""
    group.add_command(iam)
