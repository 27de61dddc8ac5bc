"""``strongroom iam ...``: the local identity store (users and access keys, per account)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from strongroom.cli import DATA_DIR_OPTION, DATABASE_URL_OPTION
from strongroom.clock import SystemClock
from strongroom.iam.identities import IdentityError, IdentityStore
from strongroom.iam.roles import RoleStore
from strongroom.rootkey import load_or_create_root_key
from strongroom.storage.engine import open_engine, sqlite_url
from strongroom.storage.migrations import apply_migrations

__all__ = ["iam"]

F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    """Options every ``iam`` command takes."""
    func = click.option(
        "--account-id", default="111122223333", show_default=True, envvar="STRONGROOM_ACCOUNT_ID"
    )(func)
    func = DATA_DIR_OPTION(func)
    func = DATABASE_URL_OPTION(func)
    return func


def _stores(data_dir: Path, database_url: str | None) -> tuple[IdentityStore, RoleStore]:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = load_or_create_root_key(data_dir)
    engine = open_engine(database_url or sqlite_url(str(data_dir / "strongroom.db")))
    apply_migrations(engine)
    identities = IdentityStore(engine, root, SystemClock())
    return identities, RoleStore(engine, root, SystemClock(), identities)


def _run(action: Callable[[IdentityStore], Any]) -> Callable[..., None]:
    return _run_with(lambda ids, _roles: action(ids))


def _run_roles(action: Callable[[RoleStore], Any]) -> Callable[..., None]:
    return _run_with(lambda _ids, roles: action(roles))


def _run_with(action: Callable[[IdentityStore, RoleStore], Any]) -> Callable[..., None]:
    def command(data_dir: Path, database_url: str | None, **_: Any) -> None:
        try:
            result = action(*_stores(data_dir, database_url))
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


def _document(value: str) -> str:
    """A policy document given as JSON text, ``file://PATH`` or a path to a file."""
    if value.startswith("file://"):
        return Path(value[7:]).read_text(encoding="utf-8")
    if not value.lstrip().startswith("{") and Path(value).is_file():
        return Path(value).read_text(encoding="utf-8")
    return value


def _role_dict(r: Any) -> dict[str, Any]:
    return {
        "RoleName": r.role_name,
        "RoleId": r.role_id,
        "Arn": f"arn:aws:iam::{r.account_id}:role/{r.role_name}",
        "CreateDate": r.created,
        "MaxSessionDuration": r.max_session_duration,
        "AssumeRolePolicyDocument": r.trust_policy,
    }


@iam.command("create-role")
@click.argument("name")
@click.option("--trust-policy", required=True, help="JSON, file://PATH or a file path")
@click.option("--max-session-duration", default=3600, show_default=True, type=int)
@_common
def create_role(
    name: str,
    trust_policy: str,
    max_session_duration: int,
    account_id: str,
    data_dir: Path,
    database_url: str | None,
) -> None:
    """Create role NAME that principals allowed by its trust policy may assume (STS)."""
    doc = _document(trust_policy)
    _run_roles(
        lambda r: {"Role": _role_dict(r.create_role(account_id, name, doc, max_session_duration))}
    )(data_dir, database_url)


@iam.command("list-roles")
@_common
def list_roles(account_id: str, data_dir: Path, database_url: str | None) -> None:
    """List the roles of the account."""
    _run_roles(lambda r: {"Roles": [_role_dict(x) for x in r.list_roles(account_id)]})(
        data_dir, database_url
    )


@iam.command("delete-role")
@click.argument("name")
@_common
def delete_role(name: str, account_id: str, data_dir: Path, database_url: str | None) -> None:
    """Delete role NAME and its inline policies."""
    _run_roles(lambda r: r.delete_role(account_id, name))(data_dir, database_url)


def _policy_commands(kind: str) -> None:
    """put-/get-/list-/delete-<kind>-policy commands for users or roles."""
    owner_help = "USER" if kind == "user" else "ROLE"

    @iam.command(f"put-{kind}-policy", help=f"Create or replace an inline policy of {owner_help}.")
    @click.argument("owner")
    @click.argument("policy_name")
    @click.option("--policy-document", required=True, help="JSON, file://PATH or a file path")
    @_common
    def put(owner: str, policy_name: str, policy_document: str, account_id: str,
            data_dir: Path, database_url: str | None) -> None:  # fmt: skip
        doc = _document(policy_document)
        _run_roles(lambda r: r.put_policy(kind, account_id, owner, policy_name, doc))(
            data_dir, database_url
        )

    @iam.command(f"get-{kind}-policy", help=f"Print an inline policy of {owner_help}.")
    @click.argument("owner")
    @click.argument("policy_name")
    @_common
    def get(owner: str, policy_name: str, account_id: str, data_dir: Path,
            database_url: str | None) -> None:  # fmt: skip
        _run_roles(
            lambda r: {
                "PolicyName": policy_name,
                "PolicyDocument": json.loads(r.get_policy(kind, account_id, owner, policy_name)),
            }
        )(data_dir, database_url)

    @iam.command(f"list-{kind}-policies", help=f"List the inline policies of {owner_help}.")
    @click.argument("owner")
    @_common
    def list_(owner: str, account_id: str, data_dir: Path, database_url: str | None) -> None:
        _run_roles(lambda r: {"PolicyNames": r.list_policies(kind, account_id, owner)})(
            data_dir, database_url
        )

    @iam.command(f"delete-{kind}-policy", help=f"Delete an inline policy of {owner_help}.")
    @click.argument("owner")
    @click.argument("policy_name")
    @_common
    def delete(owner: str, policy_name: str, account_id: str, data_dir: Path,
               database_url: str | None) -> None:  # fmt: skip
        _run_roles(lambda r: r.delete_policy(kind, account_id, owner, policy_name))(
            data_dir, database_url
        )

    del put, get, list_, delete


_policy_commands("user")
_policy_commands("role")
