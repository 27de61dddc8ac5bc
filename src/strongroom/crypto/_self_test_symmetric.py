"""The symmetric self-tests (:mod:`strongroom.crypto.self_test`): the random generator, hashes,
HMAC, HKDF, AES-GCM, AES-CBC, AES key wrap with padding, and Strongroom's own sealing.

Digests and HMACs are checked through both libraries that compute them for Strongroom:
``hashlib``/``hmac`` (the Python runtime's OpenSSL: KMS's GenerateMac and VerifyMac, SigV4, the
message-key derivation) and ``cryptography`` (its own OpenSSL: the HSM's digests and HMACs).
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.crypto import hsm_seal, hsm_symmetric, rng, symmetric
from strongroom.crypto.self_test import SelfTestFailure, expect

__all__ = ["TESTS"]

#: (name, hash, digest of "abc"): NIST's examples, FIPS 180-2 appendices A.1 (SHA-1), B.1
#: (SHA-256), C.1 (SHA-384) and D.1 (SHA-512), and its change notice 1 (SHA-224)
_DIGESTS = (
    ("SHA-1", "sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ("SHA-224", "sha224", "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
    ("SHA-256", "sha256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (
        "SHA-384",
        "sha384",
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
        "8086072ba1e7cc2358baeca134c825a7",
    ),
    (
        "SHA-512",
        "sha512",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    ),
)
#: (name, hash, HMAC of "Hi There" under twenty 0x0b bytes): test case 1 of RFC 2202 (SHA-1)
#: and of RFC 4231 (the SHA-2 family)
_HMACS = (
    ("HMAC-SHA-1", "sha1", "b617318655057264e28bc0b6fb378c8ef146be00"),
    ("HMAC-SHA-224", "sha224", "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22"),
    ("HMAC-SHA-256", "sha256", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        "HMAC-SHA-384",
        "sha384",
        "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c"
        "faea9ea9076ede7f4af152e8b2fa9cb6",
    ),
    (
        "HMAC-SHA-512",
        "sha512",
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
        "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
    ),
)


def _random() -> None:
    """Two draws through the continuously tested generator: a stuck source fails here."""
    try:
        first, second = rng.random_bytes(16), rng.random_bytes(16)
    except rng.RngFailure:
        raise SelfTestFailure("continuous random number generator test") from None
    if first == second:  # pragma: no cover - the generator itself refuses a repeat
        raise SelfTestFailure("continuous random number generator test")


def _digests() -> None:
    for name, algorithm, answer in _DIGESTS:
        expected = bytes.fromhex(answer)
        expect(name, hashlib.new(algorithm, b"abc").digest(), expected)
        expect(name, hsm_symmetric.digest(algorithm, b"abc"), expected)


def _hmacs() -> None:
    key, data = b"\x0b" * 20, b"Hi There"
    for name, algorithm, answer in _HMACS:
        expected = bytes.fromhex(answer)
        expect(name, hmac.digest(key, data, algorithm), expected)
        expect(name, hsm_symmetric.hmac_sign(key, algorithm, data), expected)
        wrong = bytes([expected[0] ^ 1]) + expected[1:]
        if hsm_symmetric.hmac_verify(key, algorithm, data, wrong):
            raise SelfTestFailure(name)


def _hkdf_sha256() -> None:
    # RFC 5869 test case 1 (salt and info); test case 3 (neither) through the HSM's sub-keys
    case_1 = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    case_3 = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    salt, info = bytes(range(13)), bytes(range(0xF0, 0xFA))
    got = HKDF(hashes.SHA256(), 42, salt, info).derive(b"\x0b" * 22)
    expect("HKDF-SHA-256", got, bytes.fromhex(case_1))
    got = hsm_symmetric.hkdf_sha256(b"\x0b" * 22, b"", 42)
    expect("HKDF-SHA-256", got, bytes.fromhex(case_3))


def _aes_gcm() -> None:
    # the GCM specification's test case 14: zero key, zero IV, one zero block
    expected = "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
    key, iv = bytes(32), bytes(12)
    sealed = AESGCM(key).encrypt(iv, bytes(16), None)
    expect("AES-256-GCM encrypt", sealed, bytes.fromhex(expected))
    try:
        opened = AESGCM(key).decrypt(iv, bytes.fromhex(expected), None)
    except InvalidTag:
        raise SelfTestFailure("AES-256-GCM decrypt") from None
    expect("AES-256-GCM decrypt", opened, bytes(16))
    tampered = bytes.fromhex(expected)[:-1] + b"\x00"
    try:
        AESGCM(key).decrypt(iv, tampered, None)
    except InvalidTag:
        return
    raise SelfTestFailure("AES-256-GCM tag check")


def _aes_cbc() -> None:
    # NIST SP 800-38A F.2.5 / F.2.6 (CBC-AES256), the first two blocks; then the HSM's
    # AES-CBC-PAD both ways (a random IV from the tested generator, PKCS#7 padding)
    key = bytes.fromhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    iv = bytes(range(16))
    plain = bytes.fromhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
    cipher = bytes.fromhex("f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    expect("AES-256-CBC encrypt", encryptor.update(plain) + encryptor.finalize(), cipher)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    expect("AES-256-CBC decrypt", decryptor.update(cipher) + decryptor.finalize(), plain)
    blob = hsm_symmetric.aes_cbc_pad_encrypt(key, plain[:20])
    expect("AES-256-CBC decrypt", hsm_symmetric.aes_cbc_pad_decrypt(key, blob), plain[:20])


#: (key, its wrapping): RFC 5649 section 6's two examples, under one 192-bit KEK: a 20-octet
#: key (the wrapping function W) and a 7-octet one (a single AES block)
_KWP_KEK = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8"
_KWP = (
    (
        "c37b7e6492584340bed12207808941155068f738",
        "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a",
    ),
    ("466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"),
)


def _aes_kwp() -> None:
    """AES key wrap with padding through the HSM's wrap and unwrap (ImportKeyMaterial's unwrap
    is the same library call); an altered wrapping must be refused."""
    kek = bytes.fromhex(_KWP_KEK)
    for key_hex, wrapped_hex in _KWP:
        key, wrapped = bytes.fromhex(key_hex), bytes.fromhex(wrapped_hex)
        expect("AES-KWP wrap", hsm_symmetric.aes_wrap_pad(kek, key), wrapped)
        try:
            unwrapped = hsm_symmetric.aes_unwrap_pad(kek, wrapped)
        except hsm_symmetric.CryptoFailure:
            raise SelfTestFailure("AES-KWP unwrap") from None
        expect("AES-KWP unwrap", unwrapped, key)
        try:
            hsm_symmetric.aes_unwrap_pad(kek, wrapped[:-1] + bytes([wrapped[-1] ^ 1]))
        except hsm_symmetric.CryptoFailure:
            continue
        raise SelfTestFailure("AES-KWP unwrap")


def _service_sealing() -> None:
    """Strongroom's own wrap/unwrap, message-key derivation and HSM store sealing: round trip
    and tamper check."""
    kek = symmetric.random_bytes(32)
    wrapped = symmetric.wrap(kek, b"self-test", b"purpose")
    try:
        expect("key wrapping", symmetric.unwrap(kek, wrapped, b"purpose"), b"self-test")
    except symmetric.CryptoError:
        raise SelfTestFailure("key wrapping") from None
    try:
        symmetric.unwrap(kek, wrapped, b"other purpose")
    except symmetric.CryptoError:
        pass
    else:
        raise SelfTestFailure("key wrapping AAD check")
    one = symmetric.derive_message_key(kek, bytes(16))
    expect("message key derivation", one, symmetric.derive_message_key(kek, bytes(16)))
    sealer = hsm_seal.Sealer(kek, "self-test")
    blob = sealer.seal(b"self-test", b"name")
    try:
        expect("HSM store sealing", sealer.open(blob, b"name"), b"self-test")
    except hsm_seal.SealBroken:
        raise SelfTestFailure("HSM store sealing") from None
    try:
        sealer.open(blob, b"other name")
    except hsm_seal.SealBroken:
        return
    raise SelfTestFailure("HSM store sealing")


#: in the order they run
TESTS = (_random, _digests, _hmacs, _hkdf_sha256, _aes_gcm, _aes_cbc, _aes_kwp, _service_sealing)
