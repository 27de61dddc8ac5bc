"""What an HSM of each type holds at most (strongroom.hsm.hsm_types): real node processes
started with ``--hsm-type``, filled to the limit through the client; the next user or key is
LIMIT_EXCEEDED, and nothing is left half made. Session keys fill the key table without a
sealed write per key, so the runs stay short; they count as token keys do."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.hsm.client import ErrorCode, HsmClientError

from .conftest import ADMIN_PW, NodeProc, activate


def _limit_exceeded(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(HsmClientError) as caught:
        fn(*args, **kwargs)
    assert caught.value.code is ErrorCode.LIMIT_EXCEEDED, caught.value
    return str(caught.value)


def test_hsm1_medium_holds_250_users(node_factory: Any) -> None:
    node: NodeProc = node_factory("--hsm-type", "hsm1.medium")
    activate(node)
    with node.client() as c:
        c.login("admin", ADMIN_PW, "admin")
        present = len(c.list_users())  # the admin and the appliance user
        for i in range(250 - present):
            c.create_user(f"cu{i}", "crypto-user", "crypto-pass-1")
        assert len(c.list_users()) == 250
        assert "250 users" in _limit_exceeded(c.create_user, "onemore", "crypto-user", "pw-12345")
        assert len(c.list_users()) == 250
        c.delete_user("cu0", "crypto-user")  # room again
        c.create_user("onemore", "crypto-user", "crypto-pass-1")


def test_the_default_type_holds_1024_users(node_factory: Any) -> None:
    node: NodeProc = node_factory()  # hsm2m.medium
    activate(node)
    with node.client() as c:
        c.login("admin", ADMIN_PW, "admin")
        for i in range(250):  # past hsm1.medium's limit
            c.create_user(f"cu{i}", "crypto-user", "crypto-pass-1")
        assert len(c.list_users()) > 250


def test_hsm1_medium_holds_3300_keys(node_factory: Any) -> None:
    node: NodeProc = node_factory("--hsm-type", "hsm1.medium")
    activate(node, {"alice": "alice-pass"})
    with node.client() as c:
        c.login("alice", "alice-pass")
        c.generate_key_pair("ec", curve="secp256r1", session=True)
        for _ in range(3298):
            c.generate_symmetric("aes", 32, session=True)
        assert "3300 keys" in _limit_exceeded(c.generate_symmetric, "aes", 32, session=True)
        # a pair needs two places: refused whole, not half made
        c.delete_key(c.find_keys()[-1].ref)
        _limit_exceeded(c.generate_key_pair, "ec", curve="secp256r1", session=True)
        assert len(c.find_keys()) == 3299
        c.generate_symmetric("aes", 32, session=True)


def test_hsm2m_medium_holds_3333_asymmetric_keys(node_factory: Any) -> None:
    node: NodeProc = node_factory("--hsm-type", "hsm2m.medium")
    activate(node, {"alice": "alice-pass"})
    with node.client() as c:
        c.login("alice", "alice-pass")
        for _ in range(1666):  # 3,332 key objects
            c.generate_key_pair("ec", curve="secp256r1", session=True)
        message = _limit_exceeded(c.generate_key_pair, "ec", curve="secp256r1", session=True)
        assert "3333 asymmetric keys" in message
        assert len(c.find_keys()) == 3332  # neither half of the refused pair exists
        c.generate_symmetric("aes", 32, session=True)  # symmetric keys still fit
