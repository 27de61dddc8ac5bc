"""Operations: cluster activate, login, logout, user create / delete / list / change-password."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.messages import ActivateArgs, Empty, LoginArgs, UserArgs, UserCreateArgs
from strongroom.hsm.registry import Ctx, OpSpec, Registry
from strongroom.hsm.roles import Permission, Role
from strongroom.hsm.users import (
    ADMIN_USERNAME,
    APPLIANCE_USERNAME,
    check_password,
    normalize_username,
)

if TYPE_CHECKING:
    from strongroom.hsm.node import Node

__all__ = ["register"]

_LOGIN_ROLES = {
    "admin": Role.ADMIN,
    "crypto-user": Role.CRYPTO_USER,
    "appliance-user": Role.APPLIANCE_USER,
}
_CREATABLE = {"admin": Role.ADMIN, "crypto-user": Role.CRYPTO_USER}
_USER_LOG = "MGMT_USER_DETAILS_LOG (2)"


def _role(name: str, table: dict[str, Role]) -> Role:
    try:
        return table[name]
    except KeyError:
        allowed = ", ".join(table)
        raise HsmError(ErrorCode.INVALID_REQUEST, f"role must be one of: {allowed}") from None


async def activate(node: Node, ctx: Ctx, args: ActivateArgs) -> None:
    """``cluster activate``: the unactivated admin sets its password and becomes admin."""
    check_password(args.password)
    ctx.detail = ADMIN_USERNAME
    password_hash = await node.offload(node.passwords.hash, args.password)
    if node.state.activated:
        raise HsmError(ErrorCode.ALREADY_ACTIVATED, "the cluster is already activated")
    admin = node.users.require(ADMIN_USERNAME, Role.UNACTIVATED_ADMIN)
    admin.role = str(Role.ADMIN)
    node.users.set_password(admin, password_hash)
    node.state.activated = True
    node.persist()


def _activate_permission(ctx: Ctx, args: Any) -> Permission:
    if ctx.session is None and ctx.role is Role.UNAUTHENTICATED:
        raise HsmError(ErrorCode.ALREADY_ACTIVATED, "the cluster is already activated")
    return Permission.ACTIVATE


async def login(node: Node, ctx: Ctx, args: LoginArgs) -> dict[str, Any]:
    """``login``: check the password (Argon2id), count failures, lock after five consecutive
    ones in the whole cluster (:mod:`strongroom.hsm.lockout`)."""
    name = normalize_username(args.username)
    role = _role(args.role, _LOGIN_ROLES)
    ctx.username, ctx.role = name, role
    user = node.users.get(name)
    if user is not None and user.locked:
        raise HsmError(ErrorCode.USER_LOCKED, "the user is locked; an admin must reset it")
    if user is not None and user.role_enum is Role.UNACTIVATED_ADMIN:
        raise HsmError(ErrorCode.NOT_ACTIVATED, "run cluster activate first")
    if user is None or user.role_enum is not role:
        await node.offload(node.passwords.verify, None, args.password)  # the same time taken
        ctx.detail = "no such user with that role"
        raise HsmError(ErrorCode.LOGIN_FAILURE, "login failed")
    guess = node.guard.new_guess()
    async with node.guard.admitted(user, guess, ctx):
        ok = await node.offload(node.passwords.verify, user.password_hash, args.password)
        if node.users.get(name) is not user or user.role_enum is not role:
            ctx.detail = "no such user with that role"
            raise HsmError(ErrorCode.LOGIN_FAILURE, "login failed")
        if user.locked:  # locked by another HSM's failures while this one was checked
            raise HsmError(ErrorCode.USER_LOCKED, "the user is locked; an admin must reset it")
        if not ok:
            raise HsmError(ErrorCode.LOGIN_FAILURE, "login failed")
    session = node.sessions.open(name, role)
    ctx.session = session
    return {"token": session.token, "session": session.handle, "username": name, "role": role}


def logout(node: Node, ctx: Ctx, args: Empty) -> None:
    """``logout``: end the session; its session keys are destroyed."""
    assert ctx.session is not None
    node.end_session(ctx.session)


def user_list(node: Node, ctx: Ctx, args: Empty) -> list[dict[str, Any]]:
    """``user list``: names, roles and lock state (no hashes)."""
    out: list[dict[str, Any]] = []
    for user in node.users.records():
        role = user.role
        if user.role_enum is Role.APPLIANCE_USER:
            role = "internal(APPLIANCE_USER)"
        out.append(
            {
                "username": user.username,
                "role": role,
                "locked": "true" if user.locked else "false",
                "mfa": [],
                "quorum": [],
                "cluster-coverage": "full",
            }
        )
    return out


async def user_create(node: Node, ctx: Ctx, args: UserCreateArgs) -> dict[str, Any]:
    """``user create`` (admin)."""
    name = normalize_username(args.username)
    role = _role(args.role, _CREATABLE)
    ctx.detail = f"{name} {role}"
    check_password(args.password)
    if node.users.get(name) is not None:
        raise HsmError(ErrorCode.USER_EXISTS, "a user with that name exists")
    password_hash = await node.offload(node.passwords.hash, args.password)
    if len(node.users.records()) >= node.limits.users:
        raise HsmError(
            ErrorCode.LIMIT_EXCEEDED,
            f"at most {node.limits.users} users on an {node.config.hsm_type} HSM",
        )
    node.users.add(name, role, password_hash)
    node.persist()
    return {"username": name, "role": str(role)}


def user_delete(node: Node, ctx: Ctx, args: UserArgs) -> dict[str, Any]:
    """``user delete`` (admin): not a logged-in user, not a CU owning keys."""
    name = normalize_username(args.username)
    ctx.detail = name
    user = node.users.require(name, _role(args.role, _CREATABLE))
    if name in (APPLIANCE_USERNAME,):
        raise HsmError(ErrorCode.PERMISSION_DENIED, "the appliance user cannot be deleted")
    if node.sessions.is_logged_in(name):
        raise HsmError(ErrorCode.USER_LOGGED_IN, "cannot delete a user who is logged in")
    if node.keys.owned_count(name):
        raise HsmError(ErrorCode.USER_OWNS_KEYS, "cannot delete a crypto user that owns keys")
    for key in node.keys.all():
        if name in key.shared:
            key.shared.remove(name)
            node.put_key(key)
    node.users.remove(user.username)
    node.persist()
    return {"username": name, "role": user.role}


def _password_permission(ctx: Ctx, args: UserArgs | UserCreateArgs) -> Permission:
    own = ctx.session is not None and normalize_username(args.username) == ctx.username
    return Permission.CHANGE_OWN_PASSWORD if own else Permission.CHANGE_ANY_PASSWORD


async def change_password(node: Node, ctx: Ctx, args: UserCreateArgs) -> dict[str, Any]:
    """``user change-password``: one's own, or (admin) anyone's not logged in; unlocks."""
    name = normalize_username(args.username)
    ctx.detail = name
    check_password(args.password)
    role = _role(args.role, _LOGIN_ROLES)
    node.users.require(name, role)
    own = name == ctx.username
    if not own and role is Role.APPLIANCE_USER:
        raise HsmError(ErrorCode.PERMISSION_DENIED, "the appliance user's password is its own")
    if not own and node.sessions.is_logged_in(name):
        raise HsmError(ErrorCode.USER_LOGGED_IN, "cannot change the password of a logged-in user")
    if own and node.sessions.logged_in_elsewhere(name, ctx.session):
        raise HsmError(ErrorCode.USER_LOGGED_IN, "the user is also logged in elsewhere")
    password_hash = await node.offload(node.passwords.hash, args.password)
    user = node.users.require(name, role)
    node.users.set_password(user, password_hash)
    node.persist()
    return {"username": name, "role": str(role)}


def register(reg: Registry) -> None:
    """Declare this family's operations."""
    user_log = _USER_LOG
    reg.add(
        OpSpec(
            "cluster_activate",
            ActivateArgs,
            _activate_permission,
            "CN_CHANGE_PSWD (0x9)",
            user_log,
            async_handler=activate,
        )
    )
    reg.add(
        OpSpec(
            "login", LoginArgs, Permission.LOGIN, "CN_LOGIN (0xd)", user_log, async_handler=login
        )
    )
    reg.add(OpSpec("logout", Empty, Permission.LOGOUT, "CN_LOGOUT (0xe)", user_log, handler=logout))
    reg.add(
        OpSpec(
            "user_list",
            Empty,
            Permission.CLUSTER_INFO,
            "CN_GET_USERS",
            user_log,
            handler=user_list,
            management=False,
        )
    )
    reg.add(
        OpSpec(
            "user_create",
            UserCreateArgs,
            Permission.MANAGE_USERS,
            "CN_CREATE_USER (0x3)",
            user_log,
            async_handler=user_create,
        )
    )
    reg.add(
        OpSpec(
            "user_delete",
            UserArgs,
            Permission.MANAGE_USERS,
            "CN_DELETE_USER (0xa1)",
            user_log,
            handler=user_delete,
        )
    )
    reg.add(
        OpSpec(
            "user_change_password",
            UserCreateArgs,
            _password_permission,
            "CN_CHANGE_PSWD (0x9)",
            user_log,
            async_handler=change_password,
        )
    )
