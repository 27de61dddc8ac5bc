"""Keys: attribute defaults and change rules, sharing rules, wrap / unwrap, public key export."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.hsm.client import ErrorCode, HsmClient, HsmClientError

from .conftest import ADMIN_PW, NodeProc


def _code(fn: Any, *args: Any, **kwargs: Any) -> ErrorCode | int | None:
    try:
        fn(*args, **kwargs)
    except HsmClientError as exc:
        return exc.code
    return None


@pytest.fixture
def alice(node: NodeProc) -> Any:
    with node.client() as c:
        c.login("alice", "alice-pass")
        yield c


def test_defaults(alice: HsmClient) -> None:
    aes = alice.generate_symmetric("aes", 32, "d")
    a = aes.attributes
    assert (
        a["encrypt"],
        a["decrypt"],
        a["sign"],
        a["extractable"],
        a["sensitive"],
        a["token"],
        a["trusted"],
        a["local"],
    ) == (False, False, True, True, True, True, False, True)
    pub, priv = alice.generate_key_pair("ec", "p", "q", curve="secp256r1")
    assert pub.attributes["sensitive"] is False and priv.attributes["sensitive"] is True
    assert priv.attributes["sign"] is False and pub.key_class == "public-key"
    assert pub.attributes["curve"] == "secp256r1"


def test_sizes_and_types(alice: HsmClient) -> None:
    for n in (16, 24, 32):
        assert alice.generate_symmetric("aes", n).attributes["key-length-bytes"] == n
    assert _code(alice.generate_symmetric, "aes", 20) is ErrorCode.INVALID_REQUEST
    assert _code(alice.generate_symmetric, "generic-secret", 801) is ErrorCode.INVALID_REQUEST
    alice.generate_symmetric("generic-secret", 64)
    for bits in (2048, 3072):
        pub, _ = alice.generate_key_pair("rsa", modulus_bits=bits)
        assert pub.attributes["modulus-size-bits"] == bits
    assert _code(alice.generate_key_pair, "rsa", modulus_bits=1024) is ErrorCode.CRYPTO_FAILED
    for curve in ("secp256r1", "secp384r1", "secp521r1", "secp256k1"):
        alice.generate_key_pair("ec", curve=curve)


def test_attribute_change_rules(node: NodeProc, alice: HsmClient) -> None:
    k = alice.generate_symmetric("aes", 32, "attrs", {"extractable": "false"}).ref
    alice.set_attribute(k, "label", "renamed")
    alice.set_attribute(k, "encrypt", True)
    assert _code(alice.set_attribute, k, "extractable", "true") is ErrorCode.ATTRIBUTE_READ_ONLY
    assert _code(alice.set_attribute, k, "sensitive", "false") is ErrorCode.ATTRIBUTE_READ_ONLY
    assert _code(alice.set_attribute, k, "trusted", "true") is ErrorCode.PERMISSION_DENIED
    assert _code(alice.set_attribute, k, "no-such", "true") is ErrorCode.ATTRIBUTE_INVALID
    alice.set_attribute(k, "wrap-with-trusted", True)
    assert (
        _code(alice.set_attribute, k, "wrap-with-trusted", False) is ErrorCode.ATTRIBUTE_READ_ONLY
    )
    alice.set_attribute(k, "modifiable", False)
    assert _code(alice.set_attribute, k, "label", "x") is ErrorCode.ATTRIBUTE_READ_ONLY
    assert _code(alice.set_attribute, k, "modifiable", True) is ErrorCode.ATTRIBUTE_READ_ONLY
    s = alice.generate_symmetric("aes", 16, "sess", session=True).ref
    alice.set_attribute(s, "token", True)  # session → token
    assert _code(alice.set_attribute, s, "token", False) is ErrorCode.ATTRIBUTE_READ_ONLY
    pub, _ = alice.generate_key_pair("ec", curve="secp256r1")
    assert _code(alice.set_attribute, pub.ref, "derive", True) is ErrorCode.ATTRIBUTE_INVALID
    assert _code(alice.set_attribute, pub.ref, "sign", True) is ErrorCode.ATTRIBUTE_INVALID
    assert (
        _code(alice.generate_symmetric, "aes", 16, "t", {"trusted": "true"})
        is ErrorCode.PERMISSION_DENIED
    )
    with node.client() as admin:
        admin.login("admin", ADMIN_PW, "admin")
        assert admin.set_attribute(k, "trusted", True).attributes["trusted"] is True
        assert _code(admin.set_attribute, k, "label", "x") is ErrorCode.PERMISSION_DENIED


def test_sharing_rules(node: NodeProc, alice: HsmClient) -> None:
    attrs = {"encrypt": "true", "decrypt": "true", "wrap": "true"}
    k = alice.generate_symmetric("aes", 32, "shared", attrs, share_with=["bob"]).ref
    other = alice.generate_symmetric("aes", 32, "payload").ref
    assert alice.find_keys({"key-reference": hex(k)})[0].shared_users == ("bob",)
    with node.client() as bob, node.client() as carol:
        bob.login("bob", "bob-pass-1")
        carol.login("carol", "carol-pass")
        ct = bob.encrypt(k, b"data")
        assert alice.decrypt(k, ct) == b"data"
        assert _code(bob.delete_key, k) is ErrorCode.NOT_KEY_OWNER
        assert _code(bob.set_attribute, k, "label", "x") is ErrorCode.NOT_KEY_OWNER
        assert _code(bob.share_key, k, "carol") is ErrorCode.NOT_KEY_OWNER
        assert _code(bob.wrap_key, k, k) is ErrorCode.NOT_KEY_OWNER
        assert _code(carol.encrypt, k, b"data") is ErrorCode.KEY_NOT_FOUND
        assert carol.find_keys({"attr.label": "shared"}) == []
        assert _code(alice.share_key, k, "bob") is ErrorCode.INVALID_REQUEST
        assert _code(alice.share_key, k, "admin") is ErrorCode.USER_NOT_FOUND
        alice.wrap_key(other, k)  # the owner may wrap under its key
        alice.unshare_key(k, "bob")
        assert _code(bob.encrypt, k, b"data") is ErrorCode.KEY_NOT_FOUND
        alice.share_key(k, "carol")
        carol.encrypt(k, b"data")
        alice.delete_key(k)
        assert _code(carol.encrypt, k, b"data") is ErrorCode.KEY_NOT_FOUND


def test_destroyable(alice: HsmClient) -> None:
    k = alice.generate_symmetric("aes", 16, "keep", {"destroyable": "false"}).ref
    assert _code(alice.delete_key, k) is ErrorCode.PERMISSION_DENIED
    alice.set_attribute(k, "destroyable", True)
    alice.delete_key(k)


@pytest.mark.parametrize("mechanism", ["aes-key-wrap-pad", "aes-gcm"])
def test_wrap_unwrap_aes(alice: HsmClient, mechanism: str) -> None:
    kek = alice.generate_symmetric("aes", 32, "kek", {"wrap": "true", "unwrap": "true"}).ref
    data_key = alice.generate_symmetric("aes", 32, "dk", {"encrypt": "true"}).ref
    ct = alice.encrypt(data_key, b"payload")
    wrapped = alice.wrap_key(data_key, kek, mechanism)
    imported = alice.unwrap_key(
        kek, wrapped, "secret-key", "aes", "dk2", mechanism, {"decrypt": "true"}
    )
    assert imported.attributes["local"] is False
    assert alice.decrypt(imported.ref, ct) == b"payload"
    _, priv = alice.generate_key_pair(
        "ec", "ep", "es", curve="secp384r1", private_attributes={"sign": "true"}
    )
    wrapped_priv = alice.wrap_key(priv.ref, kek, mechanism)
    again = alice.unwrap_key(kek, wrapped_priv, "private-key", "ec", "es2", mechanism)
    assert again.attributes["curve"] == "secp384r1"
    assert (
        _code(
            alice.unwrap_key,
            kek,
            wrapped[:-1] + bytes([wrapped[-1] ^ 1]),
            "secret-key",
            "aes",
            "bad",
            mechanism,
        )
        is ErrorCode.CRYPTO_FAILED
    )
    plain_kek = alice.generate_symmetric("aes", 32, "nowrap").ref
    assert (
        _code(alice.wrap_key, data_key, plain_kek, mechanism)
        is ErrorCode.KEY_FUNCTION_NOT_PERMITTED
    )


def test_wrap_rsa_oaep_and_trusted(node: NodeProc, alice: HsmClient) -> None:
    pub, priv = alice.generate_key_pair(
        "rsa", "wp", "wq", public_attributes={"wrap": "true"}, private_attributes={"unwrap": "true"}
    )
    secret = alice.generate_symmetric("generic-secret", 48, "hm", {"wrap-with-trusted": "true"})
    assert (
        _code(alice.wrap_key, secret.ref, pub.ref, "rsa-oaep")
        is ErrorCode.KEY_FUNCTION_NOT_PERMITTED
    )
    with node.client() as admin:
        admin.login("admin", ADMIN_PW, "admin")
        admin.set_attribute(pub.ref, "trusted", True)
    wrapped = alice.wrap_key(secret.ref, pub.ref, "rsa-oaep")
    back = alice.unwrap_key(
        priv.ref, wrapped, "secret-key", "generic-secret", "hm2", "rsa-oaep", {"sign": "true"}
    )
    assert back.attributes["key-length-bytes"] == 48


def test_public_key_pem(alice: HsmClient) -> None:
    pub, priv = alice.generate_key_pair("rsa", "pub", "priv")
    assert alice.public_key_pem(pub.ref).startswith("-----BEGIN PUBLIC KEY-----")
    assert _code(alice.public_key_pem, priv.ref) is ErrorCode.KEY_NOT_EXTRACTABLE


def test_find_filters(alice: HsmClient) -> None:
    alice.generate_symmetric("aes", 16, "f1", {"encrypt": "true"})
    alice.generate_symmetric("aes", 32, "f2")
    assert [k.label for k in alice.find_keys({"attr.encrypt": "true"})] == ["f1"]
    assert [k.label for k in alice.find_keys({"attr.key-length-bytes": "32"})] == ["f2"]
    assert alice.find_key_by_label("f2").attributes["key-length-bytes"] == 32
    assert _code(alice.find_keys, {"attr.bogus": "1"}) is ErrorCode.INVALID_REQUEST
