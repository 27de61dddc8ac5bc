"""Reliability figure C2: NIST CAVP (and RFC) vectors from ``cryptography-vectors``, run through
Strongroom's own functions, never through ``cryptography`` directly.

The .rsp/.txt files are read with :func:`_vectors` (a small parser written here) from the
``cryptography_vectors`` package. Each test asserts how many cases it ran, so a parse that
finds nothing fails. What runs, and through what:

* **AES-256-GCM** (``gcmEncryptExtIV256.rsp``, ``gcmDecrypt256.rsp``; the 96-bit IV, 128-bit tag
  sections: Strongroom's GCM fixes both): KMS's ``seal`` must give the vector's ciphertext and
  tag; KMS's ``open_sealed`` and ``unwrap`` and the HSM's ``AesGcmKey.decrypt`` must give the
  plaintext, and must refuse every FAIL case (and every encrypt vector with a tag bit flipped).
* **KDF**: Strongroom has no SP 800-108 KBKDF: its only key derivation is HKDF-SHA-256
  (RFC 5869). So the KBKDF-CTR HMAC-SHA-256 vectors have nothing to run through, and the
  RFC 5869 SHA-256 vectors (and pyca's long generated one) run through what the code uses:
  ``derive_message_key`` (the per-message key of every symmetric ciphertext: HKDF with a random
  salt, a fixed label and one 32-byte block; the label is replaced by the vector's info, and the
  result must be the first 32 bytes of the OKM) and the HSM's ``hkdf_sha256`` (empty salt: the
  vectors with an empty salt).
* **ECDSA** (FIPS 186-3 ``SigVer.rsp``; ``SigGen.txt`` verify-only): KMS Verify's
  ``verify_signature`` (RAW and DIGEST) for the pairs KMS offers (P-256/SHA-256,
  P-384/SHA-384, P-521/SHA-512), the SigGen ones with the key built from ``d`` as KMS holds it
  (PKCS#8; its ``public_der`` must be the vector's Q); the HSM's ``PublicKey.verify`` for
  P-256/384/521 with every hash it offers (SHA-1/224/256/384/512). P-192/224 and the binary
  curves are offered by neither.
* **RSA PKCS#1 v1.5** (``SigVer15_186-3.rsp``; ``SigGen15_186-3.rsp`` verify-only): KMS Verify for
  2048/3072/4096 bits with SHA-256/384/512, the HSM's verify for the same sizes with all five
  hashes. 1024 and 1536 bits are offered by neither.
* **RSA-PSS** (``SigVerPSS_186-3.rsp``): every vector has a 10-byte salt, and KMS's and the
  HSM's PSS use a salt as long as the hash (32/48/64 bytes), so none of its signatures, valid
  ones included, may verify through Strongroom; the test asserts that they are all refused,
  and, as a control that the parse is right, that ``cryptography`` itself with a 10-byte salt
  gives the file's verdicts. (FIPS 186-3 has no PSS SigVer file with salt length = hash length,
  and ``SigGenPSS_186-3.rsp`` uses salt length 0.) Wycheproof's PSS files cover the parameters
  Strongroom uses (tests/crypto/test_wycheproof_coverage.py).
* **AES key wrap** (SP 800-38F ``kwtestvectors``): the HSM exposes only KWP (aes-key-wrap-pad),
  and ImportKeyMaterial unwraps KWP: ``KWP_AE_*`` through ``aes_wrap_pad`` (the vector's
  ciphertext) and ``aes_unwrap_pad``; ``KWP_AD_*`` through ``aes_unwrap_pad`` and
  ImportKeyMaterial's ``unwrap_material`` (RSA_AES_KEY_WRAP_SHA_256), FAIL cases refused.
  Strongroom has no KW without padding, and no variant with the AES inverse cipher (the
  ``_inv`` files: "'inv' indicates AES inverse cipher transformation used", not decryption
  failures): ``KW_*`` and every ``*_inv`` file run as negative controls: KWP's unwrap must refuse
  every one of their ciphertexts, and KWP's wrap of an AE plaintext must differ from the file's
  ciphertext. TDEA key wrap (``TKW_*``) is not offered.
* **HMAC** (RFC 4231, ``HMAC/rfc-4231-sha{224,256,384,512}.txt``; cryptography-vectors has no
  NIST ``HMAC.rsp``): ``compute_mac`` (GenerateMac; VerifyMac's comparison) and the HSM's
  ``hmac_sign`` / ``hmac_verify``; a tag with one bit flipped must be refused.
* **ML-DSA** (``kat_MLDSA_{44,65,87}_det_pure.rsp``, 100 each): key generation from the seed
  ``xi``, as KMS holds the key (PKCS#8 in seed form): ``public_der`` must be the KAT's ``pk``.
  Every KAT signs with a 16-byte context, and KMS signs with the empty one, so the signature is
  verified through Verify's EXTERNAL_MU path with μ computed from the KAT's context (FIPS 204:
  μ = SHAKE256(SHAKE256(pk, 64) ‖ 0 ‖ len(ctx) ‖ ctx ‖ M, 64)); Verify RAW (empty context)
  and a signature with one bit flipped must be refused; and KMS's ``sign`` of μ must verify
  under the KAT's public key. ``cryptography``'s ML-DSA signing is hedged (randomised), so the
  KAT's deterministic signatures cannot be reproduced byte for byte.

DER structures (SubjectPublicKeyInfo, PKCS#8, ECDSA-Sig-Value) are built here by hand from the
vectors' numbers, so a key reaches Strongroom in the form a caller would send it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import cryptography_vectors
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from strongroom.crypto import asymmetric, kms_asymmetric, kms_import, symmetric
from strongroom.crypto.hsm_symmetric import (
    AesGcmKey,
    CryptoFailure,
    aes_unwrap_pad,
    aes_wrap_pad,
    hkdf_sha256,
    hmac_sign,
    hmac_verify,
)
from strongroom.errors import AwsError
from strongroom.kms.ops.asymmetric import verify_signature
from strongroom.kms.ops.mac import compute_mac

# --- reading the files ---------------------------------------------------------------------


def _vectors(path: str, start: str, carried: frozenset[str] = frozenset()) -> list[dict[str, str]]:
    """The cases of a NIST-style vector file: ``[name]`` / ``[key = value]`` section headers,
    ``key = value`` lines, bare words (FAIL). A case starts at a ``start`` line; the keys in
    ``carried`` (a key shared by the cases after it, such as an RSA modulus) are remembered
    until the next header. Every case holds its section's headers and the carried keys."""
    with cryptography_vectors.open_vector_file(path, "r") as handle:
        text = handle.read()
    cases: list[dict[str, str]] = []
    section: dict[str, str] = {}
    shared: dict[str, str] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            key, sep, value = line[1:-1].partition("=")
            section[key.strip() if sep else "section"] = value.strip() if sep else line[1:-1]
            shared, current = {}, None
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        if key in carried:
            shared[key], current = value, None
        elif key == start:
            current = {**section, **shared, key: value}
            cases.append(current)
        elif current is None:
            raise ValueError(f"{path}: {line[:40]!r} outside a case")
        else:
            current[key] = value if sep else ""
    return cases


def _hex(case: dict[str, str], key: str) -> bytes:
    return bytes.fromhex(case[key])


# --- DER, built by hand ---------------------------------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def _seq(*parts: bytes) -> bytes:
    return _der(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(arc) for arc in dotted.split("."))
    body = bytearray([40 * first + second])
    for arc in rest:
        chunk, value = [arc & 0x7F], arc >> 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        body += bytes(reversed(chunk))
    return _der(0x06, bytes(body))


def _bits(body: bytes) -> bytes:
    return _der(0x03, b"\x00" + body)


def _octets(body: bytes) -> bytes:
    return _der(0x04, body)


_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
#: NIST curve -> (OID, field bytes)
_NIST_CURVES = {
    "P-256": ("1.2.840.10045.3.1.7", 32),
    "P-384": ("1.3.132.0.34", 48),
    "P-521": ("1.3.132.0.35", 66),
}


def _ec_spki(curve: str, qx: str, qy: str) -> bytes:
    oid, size = _NIST_CURVES[curve]
    point = b"\x04" + int(qx, 16).to_bytes(size, "big") + int(qy, 16).to_bytes(size, "big")
    return _seq(_seq(_oid(_EC_PUBLIC_KEY), _oid(oid)), _bits(point))


def _ec_pkcs8(curve: str, d: str) -> bytes:
    """PKCS#8 of an EC private key (RFC 5915 ECPrivateKey without the optional fields)."""
    oid, size = _NIST_CURVES[curve]
    inner = _seq(_int(1), _octets(int(d, 16).to_bytes(size, "big")))
    return _seq(_int(0), _seq(_oid(_EC_PUBLIC_KEY), _oid(oid)), _octets(inner))


def _ecdsa_sig(r: str, s: str) -> bytes:
    return _seq(_int(int(r, 16)), _int(int(s, 16)))


def _rsa_spki(n: str, e: str) -> bytes:
    key = _seq(_int(int(n, 16)), _int(int(e, 16)))
    return _seq(_seq(_oid("1.2.840.113549.1.1.1"), b"\x05\x00"), _bits(key))


_MLDSA_OIDS = {"44": "2.16.840.1.101.3.4.3.17", "65": "2.16.840.1.101.3.4.3.18"}
_MLDSA_OIDS["87"] = "2.16.840.1.101.3.4.3.19"


def _mldsa_spki(level: str, pk: bytes) -> bytes:
    return _seq(_seq(_oid(_MLDSA_OIDS[level])), _bits(pk))


def _mldsa_pkcs8(level: str, seed: bytes) -> bytes:
    """PKCS#8 of an ML-DSA key in seed form: privateKey is ``seed [0] IMPLICIT OCTET STRING``."""
    return _seq(_int(0), _seq(_oid(_MLDSA_OIDS[level])), _octets(_der(0x80, seed)))


# --- answers ---------------------------------------------------------------------------------


def _kms_verifies(
    key: bytes, algorithm: str, message: bytes, kind: str, sig: bytes, *, private: bool = False
) -> bool:
    """KMS Verify's answer: True, or False for KMSInvalidSignatureException (any other error
    propagates and fails the test)."""
    try:
        verify_signature(key, algorithm, message, kind, sig, is_private=private)
    except AwsError as exc:
        if exc.code != "KMSInvalidSignatureException":
            raise
        return False
    return True


def _hsm_verifies(spki: bytes, mechanism: str, hash_name: str, msg: bytes, sig: bytes) -> bool:
    """The HSM's answer; a key the HSM refuses to load verifies nothing."""
    try:
        key = asymmetric.load_public(spki)
    except CryptoFailure:
        return False
    return key.verify(mechanism, hash_name, msg, sig)


def _hash_name(cavp: str) -> str:
    """``SHA-256`` or ``SHA256`` -> ``sha256``."""
    return cavp.replace("-", "").lower()


def _kms_hash(cavp: str) -> str:
    """``SHA-256`` or ``SHA256`` -> ``SHA_256``."""
    return "SHA_" + _hash_name(cavp).removeprefix("sha")


# --- AES-GCM ---------------------------------------------------------------------------------


def _gcm_opens(key: bytes, iv: bytes, sealed: bytes, aad: bytes) -> list[bytes | None]:
    """What the three opening paths give: the plaintext, or None for a refusal."""
    answers: list[bytes | None] = []
    openers: list[tuple[Callable[[], bytes], type[Exception]]] = [
        (functools.partial(AesGcmKey(key).decrypt, iv + sealed, aad), CryptoFailure),
        (functools.partial(symmetric.open_sealed, key, iv, sealed, aad), symmetric.CryptoError),
        (functools.partial(symmetric.unwrap, key, iv + sealed, aad), symmetric.CryptoError),
    ]
    for call, refusal in openers:
        try:
            answers.append(call())
        except refusal:
            answers.append(None)
    return answers


@pytest.mark.parametrize(
    ("name", "cases", "fails"),
    [("gcmEncryptExtIV256.rsp", 375, 0), ("gcmDecrypt256.rsp", 375, 191)],
)
def test_aes_256_gcm(name: str, cases: int, fails: int) -> None:
    run = refused = 0
    for case in _vectors(f"ciphers/AES/GCM/{name}", "Count"):
        if case["IVlen"] != "96" or case["Taglen"] != "128":
            continue
        assert case["Keylen"] == "256"
        key, iv, aad, ct, tag = (_hex(case, k) for k in ("Key", "IV", "AAD", "CT", "Tag"))
        run += 1
        if "FAIL" in case:
            assert _gcm_opens(key, iv, ct + tag, aad) == [None] * 3, case["Count"]
            refused += 1
            continue
        pt = _hex(case, "PT")
        assert symmetric.seal(key, iv, pt, aad) == ct + tag, case["Count"]
        assert _gcm_opens(key, iv, ct + tag, aad) == [pt] * 3, case["Count"]
        if tag:  # and the same ciphertext with its tag altered is refused
            bad = ct + tag[:-1] + bytes([tag[-1] ^ 1])
            assert _gcm_opens(key, iv, bad, aad) == [None] * 3, case["Count"]
    assert (run, refused) == (cases, fails)


# --- KDF -------------------------------------------------------------------------------------


def test_hkdf_sha256(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = _vectors("KDF/rfc-5869-HKDF-SHA256.txt", "COUNT")
    cases += _vectors("KDF/hkdf-generated.txt", "COUNT")
    message_keys = hsm = 0
    for case in cases:
        assert case["Hash"] == "SHA-256"
        ikm, salt, info, okm = (_hex(case, k) for k in ("IKM", "salt", "info", "OKM"))
        assert len(okm) == int(case["L"])
        monkeypatch.setattr(symmetric, "_DERIVE_LABEL", info)
        assert symmetric.derive_message_key(ikm, salt) == okm[:32], case["COUNT"]
        message_keys += 1
        if not salt:
            assert hkdf_sha256(ikm, info, len(okm)) == okm, case["COUNT"]
            hsm += 1
    assert (message_keys, hsm) == (4, 2)


# --- ECDSA -----------------------------------------------------------------------------------

_KMS_ECDSA = {"P-256": "SHA-256", "P-384": "SHA-384", "P-521": "SHA-512"}


def _ecdsa_cases(name: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    for case in _vectors(f"asymmetric/ECDSA/FIPS_186-3/{name}", "Msg"):
        curve, sha = case["section"].split(",")
        if curve in _NIST_CURVES:
            yield curve, sha, case


def test_ecdsa_sigver() -> None:
    counts: Counter[str] = Counter()
    for curve, sha, case in _ecdsa_cases("SigVer.rsp"):
        spki = _ec_spki(curve, case["Qx"], case["Qy"])
        msg, sig = _hex(case, "Msg"), _ecdsa_sig(case["R"], case["S"])
        valid = case["Result"].startswith("P")
        assert _hsm_verifies(spki, "ecdsa", _hash_name(sha), msg, sig) == valid, case["Result"]
        counts[f"hsm {'P' if valid else 'F'}"] += 1
        if _KMS_ECDSA[curve] == sha:
            algorithm = f"ECDSA_{_kms_hash(sha)}"
            digest = hashlib.new(_hash_name(sha), msg).digest()
            assert _kms_verifies(spki, algorithm, msg, "RAW", sig) == valid
            assert _kms_verifies(spki, algorithm, digest, "DIGEST", sig) == valid
            counts[f"kms {'P' if valid else 'F'}"] += 1
    assert counts == {"hsm P": 45, "hsm F": 180, "kms P": 9, "kms F": 36}


def test_ecdsa_siggen_signatures_verify() -> None:
    counts: Counter[str] = Counter()
    for curve, sha, case in _ecdsa_cases("SigGen.txt"):
        spki = _ec_spki(curve, case["Qx"], case["Qy"])
        msg, sig = _hex(case, "Msg"), _ecdsa_sig(case["R"], case["S"])
        assert _hsm_verifies(spki, "ecdsa", _hash_name(sha), msg, sig)
        counts["hsm"] += 1
        if _KMS_ECDSA[curve] == sha:
            private = _ec_pkcs8(curve, case["d"])
            assert kms_asymmetric.public_der(private) == spki
            algorithm = f"ECDSA_{_kms_hash(sha)}"
            assert _kms_verifies(private, algorithm, msg, "RAW", sig, private=True)
            bad = _ecdsa_sig(case["R"], f"{int(case['S'], 16) ^ 1:x}")
            assert not _kms_verifies(private, algorithm, msg, "RAW", bad, private=True)
            counts["kms"] += 1
    assert counts == {"hsm": 225, "kms": 45}


# --- RSA ---------------------------------------------------------------------------------------

_KMS_RSA_BITS = ("2048", "3072", "4096")
_KMS_RSA_HASHES = ("SHA256", "SHA384", "SHA512")


def _rsa_cases(name: str) -> Iterator[dict[str, str]]:
    carried = frozenset({"n", "p", "q", "e"} if "SigGen" in name else {"n", "p", "q"})
    for case in _vectors(f"asymmetric/RSA/FIPS_186-2/{name}", "SHAAlg", carried):
        if case["mod"] in _KMS_RSA_BITS:
            yield case


def _pkcs1_answers(case: dict[str, str]) -> tuple[bool, list[bool]]:
    """(whether KMS offers the case's hash, the answers of the HSM and, if so, KMS RAW/DIGEST)."""
    spki = _rsa_spki(case["n"], case["e"])
    msg, sig, sha = _hex(case, "Msg"), _hex(case, "S"), case["SHAAlg"]
    answers = [_hsm_verifies(spki, "rsa-pkcs", _hash_name(sha), msg, sig)]
    if sha not in _KMS_RSA_HASHES:
        return False, answers
    algorithm = f"RSASSA_PKCS1_V1_5_{_kms_hash(sha)}"
    digest = hashlib.new(_hash_name(sha), msg).digest()
    answers.append(_kms_verifies(spki, algorithm, msg, "RAW", sig))
    answers.append(_kms_verifies(spki, algorithm, digest, "DIGEST", sig))
    return True, answers


def test_rsa_sigver_pkcs1() -> None:
    counts: Counter[str] = Counter()
    for case in _rsa_cases("SigVer15_186-3.rsp"):
        valid = case["Result"].startswith("P")
        kms, answers = _pkcs1_answers(case)
        assert answers == [valid] * len(answers), (case["mod"], case["SHAAlg"], case["Result"])
        counts[f"hsm {'P' if valid else 'F'}"] += 1
        counts[f"kms {'P' if valid else 'F'}"] += kms
    assert counts == {"hsm P": 45, "hsm F": 225, "kms P": 27, "kms F": 135}


def test_rsa_siggen_pkcs1_signatures_verify() -> None:
    counts: Counter[str] = Counter()
    for case in _rsa_cases("SigGen15_186-3.rsp"):
        kms, answers = _pkcs1_answers(case)
        assert all(answers), (case["mod"], case["SHAAlg"])
        counts["hsm"] += 1
        counts["kms"] += kms
    assert counts == {"hsm": 150, "kms": 90}


def _pss_control(case: dict[str, str]) -> bool:
    """``cryptography`` itself, with the file's 10-byte salt: the control, not the test."""
    key = serialization.load_der_public_key(_rsa_spki(case["n"], case["e"]))
    assert isinstance(key, rsa.RSAPublicKey)
    algo: hashes.HashAlgorithm = getattr(hashes, case["SHAAlg"])()
    pss = padding.PSS(mgf=padding.MGF1(algo), salt_length=len(_hex(case, "SaltVal")))
    try:
        key.verify(_hex(case, "S"), _hex(case, "Msg"), pss, algo)
    except InvalidSignature:
        return False
    return True


def test_rsa_sigver_pss_salt_length_is_not_strongrooms() -> None:
    counts: Counter[str] = Counter()
    for case in _rsa_cases("SigVerPSS_186-3.rsp"):
        sha, msg, sig = case["SHAAlg"], _hex(case, "Msg"), _hex(case, "S")
        assert len(_hex(case, "SaltVal")) == 10
        assert _pss_control(case) == case["Result"].startswith("P")
        spki = _rsa_spki(case["n"], case["e"])
        assert not _hsm_verifies(spki, "rsa-pkcs-pss", _hash_name(sha), msg, sig)
        counts[f"hsm refused {case['Result'][0]}"] += 1
        if sha in _KMS_RSA_HASHES:
            algorithm = f"RSASSA_PSS_{_kms_hash(sha)}"
            digest = hashlib.new(_hash_name(sha), msg).digest()
            assert not _kms_verifies(spki, algorithm, msg, "RAW", sig)
            assert not _kms_verifies(spki, algorithm, digest, "DIGEST", sig)
            counts[f"kms refused {case['Result'][0]}"] += 1
    assert counts == {
        "hsm refused P": 45,
        "hsm refused F": 225,
        "kms refused P": 27,
        "kms refused F": 135,
    }


# --- AES key wrap ----------------------------------------------------------------------------

_KW_DIR = "keywrap/kwtestvectors"
_KWP_FILES = [f"KWP_{d}_{bits}.txt" for d in ("AE", "AD") for bits in (128, 192, 256)]
_CONTROL_FILES = [f"KW_{d}_{bits}.txt" for d in ("AE", "AD") for bits in (128, 192, 256)] + [
    f"{kind}_{d}_{bits}_inv.txt"
    for kind in ("KW", "KWP")
    for d in ("AE", "AD")
    for bits in (128, 192, 256)
]

#: ``asymmetric.load_private`` parses and checks the key (40 ms for RSA-2048)
_private_key = functools.cache(asymmetric.load_private)


@contextlib.contextmanager
def _parsed_once() -> Iterator[None]:
    """``unwrap_material`` parses the wrapping key twice per call; the vectors call it 1,500
    times with one key, so the parse is memoised while they run. Every other step of the
    import path runs unchanged."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asymmetric, "load_private", _private_key)
        yield


@functools.cache
def _wrapping_pair() -> tuple[bytes, asymmetric.PublicKey]:
    """An ImportKeyMaterial wrapping key pair (RSA_2048), made by Strongroom's own recipe."""
    private, public = kms_import.new_wrapping_pair("RSA_2048")
    return private, asymmetric.load_public(public)


def _unwrapped(kek: bytes, wrapped: bytes) -> tuple[bytes | None, bytes | None]:
    """What the HSM's unwrap and ImportKeyMaterial's RSA_AES_KEY_WRAP_SHA_256 give (None for
    a refusal)."""
    hsm: bytes | None
    imported: bytes | None
    try:
        hsm = aes_unwrap_pad(kek, wrapped)
    except CryptoFailure:
        hsm = None
    private, public = _wrapping_pair()
    blob = public.encrypt_oaep("sha256", kek) + wrapped
    try:
        with _parsed_once():
            imported = kms_import.unwrap_material(private, "RSA_AES_KEY_WRAP_SHA_256", blob)
    except kms_import.UnwrapFailed:
        imported = None
    return hsm, imported


@pytest.mark.parametrize("name", _KWP_FILES)
def test_kwp(name: str) -> None:
    run = refused = 0
    for case in _vectors(f"{_KW_DIR}/{name}", "COUNT"):
        kek, ct = _hex(case, "K"), _hex(case, "C")
        run += 1
        if "_AE_" in name:
            pt = _hex(case, "P")
            assert aes_wrap_pad(kek, pt) == ct, case["COUNT"]
            assert aes_unwrap_pad(kek, ct) == pt, case["COUNT"]
        elif "FAIL" in case:
            assert _unwrapped(kek, ct) == (None, None), case["COUNT"]
            refused += 1
        else:
            pt = _hex(case, "P")
            assert _unwrapped(kek, ct) == (pt, pt), case["COUNT"]
    assert (run, refused) == (500, 100 if "_AD_" in name else 0)


@pytest.mark.parametrize("name", _CONTROL_FILES)
def test_kw_and_inverse_cipher_refused_by_kwp(name: str) -> None:
    run = 0
    for case in _vectors(f"{_KW_DIR}/{name}", "COUNT"):
        kek, ct = _hex(case, "K"), _hex(case, "C")
        with pytest.raises(CryptoFailure):
            aes_unwrap_pad(kek, ct)
        if "P" in case and "_AE_" in name:
            assert aes_wrap_pad(kek, _hex(case, "P")) != ct
        run += 1
    assert run == 500


# --- HMAC ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", ["224", "256", "384", "512"])
def test_hmac_rfc4231(bits: str) -> None:
    run = 0
    for case in _vectors(f"HMAC/rfc-4231-sha{bits}.txt", "Len"):
        key, msg, tag = _hex(case, "Key"), _hex(case, "Msg"), _hex(case, "MD")
        bad = tag[:-1] + bytes([tag[-1] ^ 1])
        assert compute_mac(f"HMAC_SHA_{bits}", key, msg) == tag
        assert not hmac.compare_digest(compute_mac(f"HMAC_SHA_{bits}", key, msg), bad)
        assert hmac_sign(key, f"sha{bits}", msg) == tag
        assert hmac_verify(key, f"sha{bits}", msg, tag)
        assert not hmac_verify(key, f"sha{bits}", msg, bad)
        run += 1
    assert run == 6  # RFC 4231 cases 1-4, 6, 7 (the file leaves out the truncated case 5)


# --- ML-DSA ----------------------------------------------------------------------------------


def _mu(pk: bytes, ctx: bytes, msg: bytes) -> bytes:
    """FIPS 204 μ of pure ML-DSA with context ``ctx``."""
    tr = hashlib.shake_256(pk).digest(64)
    return hashlib.shake_256(tr + bytes([0, len(ctx)]) + ctx + msg).digest(64)


def _verifies(call: Callable[[], Any]) -> bool:
    try:
        call()
    except AwsError as exc:
        assert exc.code == "KMSInvalidSignatureException"
        return False
    return True


@pytest.mark.parametrize("level", ["44", "65", "87"])
def test_mldsa_kat(level: str) -> None:
    run = 0
    algorithm = "ML_DSA_SHAKE_256"
    for case in _vectors(f"asymmetric/MLDSA/kat_MLDSA_{level}_det_pure.rsp", "count"):
        pk, msg, ctx, sm = (_hex(case, k) for k in ("pk", "msg", "ctx", "sm"))
        assert sm.endswith(msg) and len(ctx) == 16
        sig = sm[: -len(msg)]
        private, spki = _mldsa_pkcs8(level, _hex(case, "xi")), _mldsa_spki(level, pk)
        assert kms_asymmetric.public_der(private) == spki
        mu = _mu(pk, ctx, msg)
        verify = functools.partial(verify_signature, private, algorithm)
        assert _verifies(functools.partial(verify, mu, "EXTERNAL_MU", sig))
        assert not _verifies(functools.partial(verify, msg, "RAW", sig))
        bad = sig[:-1] + bytes([sig[-1] ^ 1])
        assert not _verifies(functools.partial(verify, mu, "EXTERNAL_MU", bad))
        ours = kms_asymmetric.sign(private, algorithm, mu, "EXTERNAL_MU")
        public = functools.partial(verify_signature, spki, algorithm, is_private=False)
        assert _verifies(functools.partial(public, mu, "EXTERNAL_MU", ours))
        run += 1
    assert run == 100
