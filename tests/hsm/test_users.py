"""Users: lockout after exactly five failures, admin unlock, deletion and password rules,
username and password rules, session timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from strongroom.hsm.client import AsyncHsmClient, ErrorCode, HsmClientError, client_ssl_context

from .conftest import ADMIN_PW, NodeProc, activate


def _code(fn: Any, *args: Any) -> ErrorCode | int | None:
    try:
        fn(*args)
    except HsmClientError as exc:
        return exc.code
    return None


def test_lockout_after_exactly_five_failures_and_admin_unlock(node: NodeProc) -> None:
    with node.client() as c:
        for _ in range(4):
            assert _code(c.login, "bob", "wrong-password") is ErrorCode.LOGIN_FAILURE
        c.login("bob", "bob-pass-1")  # four failures, then success: counter resets
        c.logout()
        for _ in range(4):
            assert _code(c.login, "bob", "wrong-password") is ErrorCode.LOGIN_FAILURE
        assert _code(c.login, "bob", "bob-pass-1") is None
        c.logout()
        for i in range(5):
            assert _code(c.login, "bob", "wrong-password") is ErrorCode.LOGIN_FAILURE, i
        assert _code(c.login, "bob", "bob-pass-1") is ErrorCode.USER_LOCKED
        assert [u["locked"] for u in c.list_users() if u["username"] == "bob"] == ["true"]
        c.login("admin", ADMIN_PW, "admin")
        records = c.audit(0, 10000)
        c.change_password("bob", "crypto-user", "bob-pass-2")
        c.logout()
        assert _code(c.login, "bob", "bob-pass-1") is ErrorCode.LOGIN_FAILURE
        c.login("bob", "bob-pass-2")
        c.logout()
    failures = [
        r
        for r in records
        if r.opcode.startswith("CN_LOGIN") and r.user == "bob" and r.code == ErrorCode.LOGIN_FAILURE
    ]
    assert len(failures) == 13
    assert "locked after 5" in failures[-1].detail
    locked = [r for r in records if r.user == "bob" and r.code == ErrorCode.USER_LOCKED]
    assert len(locked) == 1


def test_concurrent_guesses_check_at_most_five_passwords(node: NodeProc) -> None:
    """Twelve wrong passwords sent at once on one connection: five are checked and answered;
    the rest are refused without being checked while those five take the budget
    (LIMIT_EXCEEDED), or answered USER_LOCKED whatever they were (no result revealed)."""

    async def race() -> list[ErrorCode | int | None]:
        context = client_ssl_context(node_cert=node.cert)
        async with AsyncHsmClient([node.address], context, timeout=15) as client:
            await client.hsm_info()

            async def guess(n: int) -> ErrorCode | int | None:
                args = {"username": "carol", "role": "crypto-user", "password": f"guess-{n}"}
                try:
                    await client.call_on(0, "login", args)
                except HsmClientError as exc:
                    return exc.code
                return None

            return list(await asyncio.gather(*(guess(n) for n in range(12))))

    answers = asyncio.run(race())
    assert answers.count(ErrorCode.LOGIN_FAILURE) == 5, answers
    unchecked = answers.count(ErrorCode.LIMIT_EXCEEDED)
    assert unchecked >= 1, answers  # all twelve arrive before the first check ends
    assert unchecked + answers.count(ErrorCode.USER_LOCKED) == 7, answers
    with node.client() as c:
        assert _code(c.login, "carol", "carol-pass") is ErrorCode.USER_LOCKED


def test_unknown_user_and_wrong_password_look_alike(node: NodeProc) -> None:
    with node.client() as c:
        with pytest.raises(HsmClientError) as unknown:
            c.login("ghost", "whatever-1")
        with pytest.raises(HsmClientError) as wrong:
            c.login("alice", "whatever-1")
        assert (unknown.value.code, unknown.value.message) == (
            wrong.value.code,
            wrong.value.message,
        )


def test_lock_survives_restart(node: NodeProc) -> None:
    with node.client() as c:
        for _ in range(5):
            _code(c.login, "carol", "wrong-password")
    node.restart()
    with node.client() as c:
        assert _code(c.login, "carol", "carol-pass") is ErrorCode.USER_LOCKED


def test_user_rules(node: NodeProc) -> None:
    with node.client() as admin, node.client() as alice:
        admin.login("admin", ADMIN_PW, "admin")
        for bad in ("", "a" * 32, "bad-name", "sp ace"):
            assert (
                _code(admin.create_user, bad, "crypto-user", "good-pass")
                is ErrorCode.INVALID_REQUEST
            )
        for bad_pw in ("short", "x" * 33):
            assert (
                _code(admin.create_user, "dave", "crypto-user", bad_pw) is ErrorCode.INVALID_REQUEST
            )
        admin.create_user("Dave_2", "crypto-user", "dave-pass")
        assert (
            _code(admin.create_user, "DAVE_2", "crypto-user", "dave-pass") is ErrorCode.USER_EXISTS
        )
        assert "dave_2" in [u["username"] for u in admin.list_users()]
        alice.login("ALICE", "alice-pass")
        alice.generate_symmetric("aes", 32, "owned")
        assert _code(admin.delete_user, "alice", "crypto-user") is ErrorCode.USER_LOGGED_IN
        assert (
            _code(admin.change_password, "alice", "crypto-user", "other-pass")
            is ErrorCode.USER_LOGGED_IN
        )
        alice.change_password("alice", "crypto-user", "alice-pass-2")  # own: allowed
        assert (
            _code(alice.change_password, "bob", "crypto-user", "bob-pass-9")
            is ErrorCode.PERMISSION_DENIED
        )
        alice.logout()
        assert _code(admin.delete_user, "alice", "crypto-user") is ErrorCode.USER_OWNS_KEYS
        assert _code(admin.delete_user, "bob", "admin") is ErrorCode.USER_NOT_FOUND
        admin.delete_user("bob", "crypto-user")
        assert "bob" not in [u["username"] for u in admin.list_users()]


def test_session_timeout(node_factory: Any) -> None:
    node: NodeProc = node_factory("--session-timeout", "1")
    activate(node, {"alice": "alice-pass"})
    with node.client() as c:
        c.login("alice", "alice-pass")
        key = c.generate_symmetric("aes", 16, "sess", {"encrypt": "true"}, session=True)
        c.encrypt(key.ref, b"hello")
        time.sleep(0.6)
        c.encrypt(key.ref, b"hello")  # activity keeps the session alive
        time.sleep(1.6)
        assert _code(c.encrypt, key.ref, b"hello") in (
            ErrorCode.SESSION_EXPIRED,
            ErrorCode.NOT_LOGGED_IN,
        )
        c.login("alice", "alice-pass")
        assert c.find_keys({"attr.label": "sess"}) == []  # session key destroyed


def test_logout_destroys_session_keys(node: NodeProc) -> None:
    with node.client() as c:
        c.login("alice", "alice-pass")
        c.generate_symmetric("aes", 16, "temp", session=True)
        c.generate_symmetric("aes", 16, "kept")
        c.logout()
        c.login("alice", "alice-pass")
        assert [k.label for k in c.find_keys()] == ["kept"]
