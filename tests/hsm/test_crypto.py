"""Crypto through a real node: AES-GCM/CBC-PAD, RSA-OAEP, signatures, HMAC, digests, random."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from strongroom.crypto.asymmetric import load_public
from strongroom.crypto.hsm_symmetric import hmac_sign
from strongroom.hsm.client import ErrorCode, HsmClient, HsmClientError

from .conftest import NodeProc


def _code(fn: Any, *args: Any) -> ErrorCode | int | None:
    try:
        fn(*args)
    except HsmClientError as exc:
        return exc.code
    return None


@pytest.fixture(scope="module")
def crypto_node(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from .conftest import activate, free_port

    node = NodeProc(tmp_path_factory.mktemp("crypto") / "n", free_port())
    node.start()
    activate(node, {"alice": "alice-pass"})
    yield node
    node.stop()


@pytest.fixture
def alice(crypto_node: NodeProc) -> Any:
    with crypto_node.client() as c:
        c.login("alice", "alice-pass")
        yield c
        c.logout()


def _pem_to_der(pem: str) -> bytes:
    body = "".join(line for line in pem.splitlines() if "-----" not in line)
    return base64.b64decode(body)


def test_aes_gcm_with_aad(alice: HsmClient) -> None:
    k = alice.generate_aes_key("gcm").ref
    ct = alice.encrypt(k, b"secret", b"context")
    assert len(ct) == 12 + 6 + 16
    assert ct != alice.encrypt(k, b"secret", b"context")  # fresh HSM-generated IV
    assert alice.decrypt(k, ct, b"context") == b"secret"
    assert _code(alice.decrypt, k, ct, b"other") is ErrorCode.CRYPTO_FAILED
    assert (
        _code(alice.decrypt, k, ct[:-1] + bytes([ct[-1] ^ 1]), b"context")
        is ErrorCode.CRYPTO_FAILED
    )
    assert _code(alice.decrypt, k, b"short") is ErrorCode.CRYPTO_FAILED


def test_aes_cbc_pad(alice: HsmClient) -> None:
    k = alice.generate_aes_key("cbc", 16).ref
    for size in (0, 15, 16, 33):
        ct = alice.encrypt(k, b"p" * size, b"", "aes-cbc-pad")
        assert alice.decrypt(k, ct, b"", "aes-cbc-pad") == b"p" * size


def test_usage_attributes_enforced(alice: HsmClient) -> None:
    k = alice.generate_symmetric("aes", 32, "enc-only", {"encrypt": "true"}).ref
    ct = alice.encrypt(k, b"x")
    assert _code(alice.decrypt, k, ct) is ErrorCode.KEY_FUNCTION_NOT_PERMITTED
    plain = alice.generate_symmetric("aes", 32, "none").ref
    assert _code(alice.encrypt, plain, b"x") is ErrorCode.KEY_FUNCTION_NOT_PERMITTED


@pytest.mark.parametrize("hash_name", ["sha1", "sha256", "sha512"])
def test_rsa_oaep(alice: HsmClient, hash_name: str) -> None:
    pub, priv = alice.generate_key_pair(
        "rsa", public_attributes={"encrypt": "true"}, private_attributes={"decrypt": "true"}
    )
    ct = alice.encrypt(pub.ref, b"oaep data", b"", "rsa-oaep", hash_name)
    assert alice.decrypt(priv.ref, ct, b"", "rsa-oaep", hash_name) == b"oaep data"
    local = load_public(_pem_to_der(alice.public_key_pem(pub.ref)))
    ct2 = local.encrypt_oaep(hash_name, b"from outside")
    assert alice.decrypt(priv.ref, ct2, b"", "rsa-oaep", hash_name) == b"from outside"


@pytest.mark.parametrize(
    ("key_type", "mech", "opts"),
    [
        ("rsa", "rsa-pkcs", {"modulus_bits": 2048}),
        ("rsa", "rsa-pkcs-pss", {"modulus_bits": 2048}),
        ("ec", "ecdsa", {"curve": "secp256r1"}),
        ("ec", "ecdsa", {"curve": "secp384r1"}),
        ("ec", "ecdsa", {"curve": "secp521r1"}),
        ("ec", "ecdsa", {"curve": "secp256k1"}),
    ],
)
def test_sign_verify(alice: HsmClient, key_type: str, mech: str, opts: dict[str, Any]) -> None:
    pub, priv = alice.generate_key_pair(
        key_type, public_attributes={"verify": "true"}, private_attributes={"sign": "true"}, **opts
    )
    for h in ("sha1", "sha224", "sha256", "sha384", "sha512"):
        sig = alice.sign(priv.ref, b"message", mech, h)
        assert alice.verify(pub.ref, b"message", sig, mech, h)
        assert not alice.verify(pub.ref, b"messagf", sig, mech, h)
        local = load_public(_pem_to_der(alice.public_key_pem(pub.ref)))
        assert local.verify(mech, h, b"message", sig)
    assert _code(alice.sign, pub.ref, b"m", mech) is ErrorCode.KEY_FUNCTION_NOT_PERMITTED


def test_hmac_and_digest(alice: HsmClient) -> None:
    k = alice.generate_symmetric("generic-secret", 32, "hm", {"sign": "true", "verify": "true"})
    for h in ("sha1", "sha224", "sha256", "sha384", "sha512"):
        mac = alice.hmac(k.ref, b"data", h)
        assert len(mac) == hashlib.new(h).digest_size
        assert alice.hmac_verify(k.ref, b"data", mac, h)
        assert not alice.hmac_verify(k.ref, b"datb", mac, h)
        assert alice.digest(h, b"abc") == hashlib.new(h, b"abc").digest()
    assert hmac_sign(b"k", "sha256", b"d") != b""


def test_random(alice: HsmClient) -> None:
    a, b = alice.random(32), alice.random(32)
    assert len(a) == 32 and a != b
    assert _code(alice.random, 0) is ErrorCode.INVALID_REQUEST
    assert _code(alice.random, 70000) is ErrorCode.INVALID_REQUEST


def test_many_concurrent_requests_on_one_connection(crypto_node: NodeProc) -> None:
    import asyncio

    from strongroom.hsm.client import AsyncHsmClient, client_ssl_context

    async def go() -> None:
        ctx = client_ssl_context(node_cert=crypto_node.cert)
        async with AsyncHsmClient([crypto_node.address], ctx, pool_size=1) as c:
            await c.login("alice", "alice-pass")
            k = (await c.generate_aes_key("conc")).ref
            msgs = [f"m{i}".encode() for i in range(300)]
            cts = await asyncio.gather(*(c.encrypt(k, m, m) for m in msgs))
            pts = await asyncio.gather(
                *(c.decrypt(k, ct, m) for ct, m in zip(cts, msgs, strict=True))
            )
            assert pts == msgs
            await c.logout()

    asyncio.run(go())
