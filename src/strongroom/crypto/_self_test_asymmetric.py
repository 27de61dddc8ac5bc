"""The asymmetric self-tests (:mod:`strongroom.crypto.self_test`).

* RSA, on the published key of a NIST PKCS#1 v1.5 vector (:mod:`._self_test_vectors`): the
  vector's signature made and verified (a known answer), then PSS signing and OAEP encryption
  pairwise (both are randomised).
* ECDSA on each curve Strongroom offers (P-256, P-384, P-521, secp256k1), pairwise on fresh
  keys; ECDH on P-256, both sides of a fresh exchange.
* Ed25519 and Ed25519ph (RFC 8032 section 7.1 test 1 and section 7.3 "TEST abc"), X25519 (RFC
  7748 section 5.2): known answers.
* ML-DSA-44 and ML-KEM-768 (NIST's KAT files, count 0): key generation from the seed, ML-DSA's
  verification of the file's signature (pure, and from μ as KMS's EXTERNAL_MU), ML-KEM's
  decapsulation of the file's ciphertext and of an altered one (FIPS 203's implicit rejection);
  ML-DSA signing and ML-KEM encapsulation, which are randomised here, pairwise.

RSA key generation is not run here: it costs 40-150 ms, more than all the other tests
together. Every RSA key Strongroom generates, like every other key pair, passes its conditional
pairwise test (:mod:`strongroom.crypto.pairwise`) before it is used. ML-DSA-65/87 and
ML-KEM-1024 are the same code with other parameters; each such key is also tested when made.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import (
    ec,
    ed25519,
    mldsa,
    mlkem,
    padding,
    rsa,
    x25519,
)

from strongroom.crypto import _self_test_vectors as v
from strongroom.crypto import ed25519ph
from strongroom.crypto.self_test import (
    MESSAGE,
    SelfTestFailure,
    accepts,
    expect,
    refuses,
    sign_verify,
)

__all__ = ["TESTS"]

_CURVES: tuple[tuple[str, type[ec.EllipticCurve], type[hashes.HashAlgorithm]], ...] = (
    ("ECDSA P-256", ec.SECP256R1, hashes.SHA256),
    ("ECDSA P-384", ec.SECP384R1, hashes.SHA384),
    ("ECDSA P-521", ec.SECP521R1, hashes.SHA512),
    ("ECDSA secp256k1", ec.SECP256K1, hashes.SHA256),
)
# RFC 8032 section 7.1, test 1 (the empty message)
_ED25519_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
_ED25519_PUBLIC = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
_ED25519_SIGNATURE = (
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
# RFC 8032 section 7.3, "TEST abc" (Ed25519ph, message "abc")
_ED25519PH_SEED = "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42"
_ED25519PH_PUBLIC = "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf"
_ED25519PH_SIGNATURE = (
    "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
    "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
)
# RFC 7748 section 5.2, the first X25519 vector (scalar, u-coordinate, result)
_X25519 = (
    "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
    "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
    "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
)


def _rsa_key() -> rsa.RSAPrivateKey:
    p, q, e = v.RSA_P, v.RSA_Q, 65537
    d = pow(e, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(e, p * q)
    numbers = rsa.RSAPrivateNumbers(p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), public)
    # OpenSSL's check of a loaded key (primality tests, ~60 ms) would cost more than all the
    # self-tests together; the key is the published one, and the known answer checks it
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def _rsa() -> None:
    key = _rsa_key()
    public = key.public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    name = "RSA PKCS#1 v1.5"
    expect(name, key.sign(v.RSA_MESSAGE, pkcs1, sha256), v.RSA_SIGNATURE)
    accepts(name, lambda s: public.verify(s, v.RSA_MESSAGE, pkcs1, sha256), v.RSA_SIGNATURE)
    refuses(name, lambda s: public.verify(s, MESSAGE, pkcs1, sha256), v.RSA_SIGNATURE)
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    sign_verify(
        "RSA-PSS",
        lambda m: key.sign(m, pss, sha256),
        lambda s, m: public.verify(s, m, pss, sha256),
    )
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    try:
        opened = key.decrypt(public.encrypt(MESSAGE, oaep), oaep)
    except ValueError:
        raise SelfTestFailure("RSA-OAEP") from None
    expect("RSA-OAEP", opened, MESSAGE)


def _ecdsa_on(
    name: str, curve: type[ec.EllipticCurve], hash_type: type[hashes.HashAlgorithm]
) -> None:
    key = ec.generate_private_key(curve())
    ecdsa = ec.ECDSA(hash_type())
    sign_verify(
        name, lambda m: key.sign(m, ecdsa), lambda s, m: key.public_key().verify(s, m, ecdsa)
    )


def _ecdsa() -> None:
    for name, curve, hash_type in _CURVES:
        _ecdsa_on(name, curve, hash_type)


def _ecdh() -> None:
    mine, peer = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    shared = mine.exchange(ec.ECDH(), peer.public_key())
    expect("ECDH P-256", shared, peer.exchange(ec.ECDH(), mine.public_key()))


def _ed25519() -> None:
    name, signature = "Ed25519", bytes.fromhex(_ED25519_SIGNATURE)
    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(_ED25519_SEED))
    public = key.public_key()
    expect(name, public.public_bytes_raw(), bytes.fromhex(_ED25519_PUBLIC))
    expect(name, key.sign(b""), signature)
    accepts(name, lambda s: public.verify(s, b""), signature)
    refuses(name, lambda s: public.verify(s, MESSAGE), signature)


def _ed25519ph() -> None:
    """Strongroom's own Ed25519ph (libsodium's group operations put together by
    :mod:`strongroom.crypto.ed25519ph`) from the SHA-512 prehash, as KMS's DIGEST signing."""
    name, signature = "Ed25519ph", bytes.fromhex(_ED25519PH_SIGNATURE)
    seed, public = bytes.fromhex(_ED25519PH_SEED), bytes.fromhex(_ED25519PH_PUBLIC)
    prehash, other = hashlib.sha512(b"abc").digest(), hashlib.sha512(MESSAGE).digest()
    expect(name, ed25519ph.sign_digest(seed, prehash), signature)
    accepts(name, lambda s: ed25519ph.verify_digest(public, prehash, s), signature)
    refuses(name, lambda s: ed25519ph.verify_digest(public, other, s), signature)


def _x25519() -> None:
    scalar, point, result = (bytes.fromhex(h) for h in _X25519)
    key = x25519.X25519PrivateKey.from_private_bytes(scalar)
    expect("X25519", key.exchange(x25519.X25519PublicKey.from_public_bytes(point)), result)


def _mu(public: bytes, context: bytes, message: bytes) -> bytes:
    """FIPS 204's μ = SHAKE256(SHAKE256(pk, 64) ‖ 0 ‖ len(ctx) ‖ ctx ‖ M, 64)."""
    tr = hashlib.shake_256(public).digest(64)
    return hashlib.shake_256(tr + bytes([0, len(context)]) + context + message).digest(64)


def _mldsa() -> None:
    key = mldsa.MLDSA44PrivateKey.from_seed_bytes(v.MLDSA44_SEED)
    public = key.public_key()
    raw = public.public_bytes_raw()
    expect("ML-DSA-44 key generation", hashlib.sha256(raw).digest(), v.MLDSA44_PUBLIC_SHA256)
    name, signature = "ML-DSA-44 signature verification", v.MLDSA44_SIGNATURE
    message, context = v.MLDSA44_MESSAGE, v.MLDSA44_CONTEXT
    accepts(name, lambda s: public.verify(s, message, context), signature)
    accepts(name, lambda s: public.verify_mu(s, _mu(raw, context, message)), signature)
    refuses(name, lambda s: public.verify(s, MESSAGE, context), signature)
    name = "ML-DSA-44 signature generation"
    sign_verify(name, key.sign, public.verify)  # the empty context, as KMS signs
    accepts(name, lambda s: public.verify(s, MESSAGE), key.sign_mu(_mu(raw, b"", MESSAGE)))


def _mlkem() -> None:
    key = mlkem.MLKEM768PrivateKey.from_seed_bytes(v.MLKEM768_SEED)
    public = key.public_key()
    digest = hashlib.sha256(public.public_bytes_raw()).digest()
    expect("ML-KEM-768 key generation", digest, v.MLKEM768_PUBLIC_SHA256)
    name, ciphertext = "ML-KEM-768 decapsulation", v.MLKEM768_CIPHERTEXT
    expect(name, key.decapsulate(ciphertext), v.MLKEM768_SECRET)
    # FIPS 203 Algorithm 18: a ciphertext that does not re-encrypt to itself decapsulates to
    # J(z ‖ c) = SHAKE256(z ‖ c, 32), z being the second half of the seed
    altered = ciphertext[:-1] + bytes([ciphertext[-1] ^ 1])
    rejected = hashlib.shake_256(v.MLKEM768_SEED[32:] + altered).digest(32)
    expect(name, key.decapsulate(altered), rejected)
    secret, fresh = public.encapsulate()
    expect("ML-KEM-768 encapsulation", key.decapsulate(fresh), secret)


#: in the order they run
TESTS = (_rsa, _ecdsa, _ecdh, _ed25519, _ed25519ph, _x25519, _mldsa, _mlkem)
