"""The Role × Permission table, cell by cell, against real nodes over the wire."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from strongroom.hsm.client import ErrorCode, HsmClient, HsmClientError
from strongroom.hsm.roles import PERMISSIONS, Permission, Role
from strongroom.hsm.store import SealedStore
from tests.memscan import forms, found_in_memory, found_in_text

from .conftest import ADMIN_PW, NodeProc, activate

A, CU, AU, PRE, ANON = (
    Role.ADMIN,
    Role.CRYPTO_USER,
    Role.APPLIANCE_USER,
    Role.UNACTIVATED_ADMIN,
    Role.UNAUTHENTICATED,
)

# cloudhsm.md §2.2, written out independently of the code's table.
EXPECTED: dict[Permission, set[Role]] = {
    Permission.CLUSTER_INFO: {A, CU, AU, PRE, ANON},
    Permission.LOGIN: {A, CU, AU, PRE, ANON},
    Permission.LOGOUT: {A, CU, AU},
    Permission.ACTIVATE: {PRE},
    Permission.CHANGE_OWN_PASSWORD: {A, CU, AU},
    Permission.CHANGE_ANY_PASSWORD: {A},
    Permission.MANAGE_USERS: {A},
    Permission.SYNC_STATUS: {A, CU, AU},
    Permission.MASKED_OBJECTS: {A, CU, AU},
    Permission.KEY_MANAGEMENT: {CU},
    Permission.KEY_USAGE: {CU},
    Permission.SET_TRUSTED: {A},
    Permission.RANDOM: {A, CU},
    Permission.READ_AUDIT: {A, AU},
    Permission.ZEROIZE: {A},
    Permission.PROVISION: {AU},
}

DENIED = {ErrorCode.PERMISSION_DENIED, ErrorCode.NOT_LOGGED_IN}


def test_table_matches_cloudhsm_reference() -> None:
    assert {p: set(r) for p, r in PERMISSIONS.items()} == EXPECTED


def _call(c: HsmClient, op: str, args: dict[str, Any]) -> ErrorCode | None:
    try:
        c.raw_call(op, args)
    except HsmClientError as exc:
        return exc.code if isinstance(exc.code, ErrorCode) else None
    return None


Probe = Callable[[dict[str, object]], tuple[str, dict[str, Any]]]

PROBES: dict[Permission, Probe] = {
    Permission.CLUSTER_INFO: lambda ctx: ("hsm_info", {}),
    Permission.LOGIN: lambda ctx: (
        "login",
        {"username": "nobody", "role": "crypto-user", "password": "wrong-pass"},
    ),
    Permission.LOGOUT: lambda ctx: ("logout", {}),
    Permission.ACTIVATE: lambda ctx: ("cluster_activate", {"password": ADMIN_PW}),
    Permission.CHANGE_OWN_PASSWORD: lambda ctx: (
        "user_change_password",
        {"username": ctx["self"], "role": ctx["self_role"], "password": ctx["self_pw"]},
    ),
    Permission.CHANGE_ANY_PASSWORD: lambda ctx: (
        "user_change_password",
        {"username": "carol", "role": "crypto-user", "password": "carol-pass"},
    ),
    Permission.MANAGE_USERS: lambda ctx: (
        "user_create",
        {"username": f"new{ctx['n']}", "role": "crypto-user", "password": "new-pass-1"},
    ),
    Permission.SYNC_STATUS: lambda ctx: ("key_find", {}),
    Permission.MASKED_OBJECTS: lambda ctx: ("clone_export", {}),
    Permission.KEY_MANAGEMENT: lambda ctx: (
        "key_generate_symmetric",
        {"key_type": "aes", "length_bytes": 16, "label": "probe"},
    ),
    Permission.KEY_USAGE: lambda ctx: ("digest", {"hash": "sha256", "data": b"x"}),
    Permission.SET_TRUSTED: lambda ctx: (
        "key_set_attribute",
        {"ref": ctx["key"], "name": "trusted", "value": "true"},
    ),
    Permission.RANDOM: lambda ctx: ("random", {"length": 8}),
    Permission.READ_AUDIT: lambda ctx: ("audit_read", {"limit": 1}),
    Permission.ZEROIZE: lambda ctx: ("zeroize", {}),
    Permission.PROVISION: lambda ctx: (
        "install_certificate",
        {"certificate": "junk", "trust_anchor": "junk"},
    ),
}


@pytest.fixture
def roles_node(node_factory: Any) -> tuple[NodeProc, int]:
    n: NodeProc = node_factory()
    activate(n, {"alice": "alice-pass", "carol": "carol-pass"})
    with n.client() as c:
        c.login("alice", "alice-pass")
        ref = c.generate_symmetric("aes", 16, "alice-key").ref
        c.logout()
    return n, ref


def _login(c: HsmClient, node: NodeProc, role: Role) -> tuple[str, str, str]:
    if role is A:
        c.login("admin", ADMIN_PW, "admin")
        return "admin", "admin", ADMIN_PW
    if role is CU:
        c.login("alice", "alice-pass")
        return "alice", "crypto-user", "alice-pass"
    if role is AU:
        pin = (node.data_dir / "appliance-user.pin").read_text()
        c.login("app_user", pin, "appliance-user")
        return "app_user", "appliance-user", pin
    return "", "", ""


@pytest.mark.parametrize("role", [A, CU, AU, ANON])
def test_every_cell_on_an_activated_node(roles_node: tuple[NodeProc, int], role: Role) -> None:
    node, ref = roles_node
    with node.client() as c:
        me, my_role, my_pw = _login(c, node, role)
        ctx = {"self": me, "self_role": my_role, "self_pw": my_pw, "key": ref, "n": 1}
        for perm in Permission:
            if perm in (Permission.ZEROIZE, Permission.LOGOUT):
                continue  # run last: they end the node or the session
            code = _call(c, *PROBES[perm](ctx))
            allowed = code not in DENIED
            if perm is Permission.ACTIVATE:
                assert code in DENIED | {ErrorCode.ALREADY_ACTIVATED}, (role, perm, code)
                continue
            assert allowed == (role in EXPECTED[perm]), (role, perm, code)
        code = _call(c, *PROBES[Permission.LOGOUT](ctx))
        assert (code not in DENIED) == (role in EXPECTED[Permission.LOGOUT]), (role, code)


@pytest.mark.parametrize("role", [CU, AU, ANON])
def test_zeroize_refused_for_non_admins(roles_node: tuple[NodeProc, int], role: Role) -> None:
    node, _ = roles_node
    with node.client() as c:
        _login(c, node, role)
        assert _call(c, "zeroize", {}) in DENIED


def test_zeroize_by_admin_destroys_node(node_factory: Any) -> None:
    """Reliability figure S8: after zeroisation no key object, key file or usable old key is
    left; old ciphertexts decrypt under nothing, even for a user of the same name."""
    node: NodeProc = node_factory()
    activate(node, {"alice": "alice-pass"})
    with node.client() as c:
        c.login("alice", "alice-pass")
        ref = c.generate_aes_key("before-zeroize").ref
        ciphertext = c.encrypt(ref, b"secret", b"aad")
        c.logout()
        (old,) = [k.material for k in SealedStore(node.data_dir).read()[1] if k.ref == ref]
        assert node.proc is not None
        assert found_in_memory(node.proc.pid, {"old key": old})["old key"] >= 1  # the control
        c.login("admin", ADMIN_PW, "admin")
        c.zeroize()
    assert node.proc is not None
    assert node.proc.wait(10) == 0
    assert not (node.data_dir / "node.key").exists()
    assert not (node.data_dir / "store").exists()
    assert not list(node.data_dir.rglob("*.sealed"))  # no sealed key object anywhere
    node.start()
    with node.client() as c:
        assert c.hsm_info()["activated"] is False
    activate(node, {"alice": "alice-pass"})  # a fresh HSM: the same names, nothing of before
    with node.client() as c:
        c.login("alice", "alice-pass")
        assert c.find_keys({"label": "before-zeroize"}) == []
        assert c.find_keys() == []
        fresh = c.generate_aes_key("after").ref
        assert fresh != ref
        for key, expected in ((ref, ErrorCode.KEY_NOT_FOUND), (fresh, ErrorCode.CRYPTO_FAILED)):
            with pytest.raises(HsmClientError) as exc:
                c.decrypt(key, ciphertext, b"aad")
            assert exc.value.code is expected, (key, exc.value.code)
    # the node that replaced the zeroized one holds nothing of the old key: not in memory, not
    # on disk (the zeroized process itself is gone, and its memory with it)
    assert node.proc is not None
    old_forms = forms(old)
    assert found_in_memory(node.proc.pid, old_forms) == dict.fromkeys(old_forms, 0)
    files = {str(p): p.read_bytes() for p in node.data_dir.rglob("*") if p.is_file()}
    assert found_in_text(files, old_forms) == []


def test_unactivated_admin_cells(node_factory: Any) -> None:
    node: NodeProc = node_factory()
    with node.client() as c:
        ctx = {"self": "admin", "self_role": "admin", "self_pw": ADMIN_PW, "key": 1, "n": 2}
        for perm in Permission:
            if perm in (Permission.ACTIVATE, Permission.ZEROIZE):
                continue
            code = _call(c, *PROBES[perm](ctx))
            assert (code not in DENIED) == (PRE in EXPECTED[perm]), (perm, code)
        assert _call(c, "cluster_activate", {"password": ADMIN_PW}) is None
        assert _call(c, "cluster_activate", {"password": ADMIN_PW}) is ErrorCode.ALREADY_ACTIVATED
