"""HSM roles and the Role × Permission table (cloudhsm.md §2.2), the single source of access rules.

Every wire operation names one :class:`Permission`; the node checks it against this table before
the handler runs. Rules that depend on the objects involved (key ownership, sharing, which user's
password) are applied by the handlers after this coarse check.
"""

from __future__ import annotations

from enum import StrEnum

from strongroom.hsm.errors import ErrorCode, HsmError

__all__ = ["PERMISSIONS", "Permission", "Role", "check", "is_allowed"]


class Role(StrEnum):
    """Who is calling. The wire names are CloudHSM CLI's."""

    UNACTIVATED_ADMIN = "unactivated-admin"
    ADMIN = "admin"
    CRYPTO_USER = "crypto-user"
    APPLIANCE_USER = "appliance-user"
    UNAUTHENTICATED = "unauthenticated"

    @property
    def audit_type(self) -> str:
        """The CloudHSM audit-log user type."""
        return _AUDIT_TYPES[self]


_AUDIT_TYPES = {
    Role.UNACTIVATED_ADMIN: "CN_CRYPTO_PRE_OFFICER (6)",
    Role.ADMIN: "CN_CRYPTO_OFFICER (2)",
    Role.CRYPTO_USER: "CN_CRYPTO_USER (1)",
    Role.APPLIANCE_USER: "CN_APPLIANCE_USER (5)",
    Role.UNAUTHENTICATED: "CN_UNAUTHENTICATED (0)",
}


class Permission(StrEnum):
    """Classes of operation, as in CloudHSM's user permissions table."""

    CLUSTER_INFO = "cluster-info"
    LOGIN = "login"
    LOGOUT = "logout"
    ACTIVATE = "activate"
    CHANGE_OWN_PASSWORD = "change-own-password"
    CHANGE_ANY_PASSWORD = "change-any-password"
    MANAGE_USERS = "manage-users"
    SYNC_STATUS = "sync-status"
    MASKED_OBJECTS = "masked-objects"
    KEY_MANAGEMENT = "key-management"
    KEY_USAGE = "key-usage"
    SET_TRUSTED = "set-trusted"
    RANDOM = "random"
    READ_AUDIT = "read-audit"
    ZEROIZE = "zeroize"
    PROVISION = "provision"


_A = Role.ADMIN
_CU = Role.CRYPTO_USER
_AU = Role.APPLIANCE_USER
_PRE = Role.UNACTIVATED_ADMIN
_ANON = Role.UNAUTHENTICATED

PERMISSIONS: dict[Permission, frozenset[Role]] = {
    Permission.CLUSTER_INFO: frozenset({_A, _CU, _AU, _PRE, _ANON}),
    Permission.LOGIN: frozenset({_A, _CU, _AU, _PRE, _ANON}),
    Permission.LOGOUT: frozenset({_A, _CU, _AU}),
    Permission.ACTIVATE: frozenset({_PRE}),
    Permission.CHANGE_OWN_PASSWORD: frozenset({_A, _CU, _AU}),
    Permission.CHANGE_ANY_PASSWORD: frozenset({_A}),
    Permission.MANAGE_USERS: frozenset({_A}),
    Permission.SYNC_STATUS: frozenset({_A, _CU, _AU}),
    Permission.MASKED_OBJECTS: frozenset({_A, _CU, _AU}),
    Permission.KEY_MANAGEMENT: frozenset({_CU}),
    Permission.KEY_USAGE: frozenset({_CU}),
    Permission.SET_TRUSTED: frozenset({_A}),
    Permission.RANDOM: frozenset({_A, _CU}),
    Permission.READ_AUDIT: frozenset({_A, _AU}),
    Permission.ZEROIZE: frozenset({_A}),
    Permission.PROVISION: frozenset({_AU}),
}


def is_allowed(role: Role, permission: Permission) -> bool:
    """True if ``role`` may perform operations of class ``permission``."""
    return role in PERMISSIONS[permission]


def check(role: Role, permission: Permission) -> None:
    """Raise PERMISSION_DENIED (or NOT_LOGGED_IN for anonymous callers) unless allowed."""
    if is_allowed(role, permission):
        return
    if role is Role.UNAUTHENTICATED:
        raise HsmError(ErrorCode.NOT_LOGGED_IN, f"{permission} requires a logged-in user")
    raise HsmError(ErrorCode.PERMISSION_DENIED, f"role {role} may not perform {permission}")
