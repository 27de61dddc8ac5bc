"""Reliability figure C1: every Wycheproof file of ``tests/vectors/wycheproof``, case by case.

Every file in the directory is either run here (:data:`RUNNERS`) or listed in
:data:`NOT_APPLICABLE` with the reason, and the reason is checked against the code;
:func:`test_every_file_is_accounted_for` fails when a file is added to the directory or a name
here no longer exists.

A case runs through the Strongroom functions its operations call ("paths"), never through
``cryptography`` directly:

* signatures: KMS Verify's ``verify_signature``, with MessageType RAW when the message is
  1-4096 bytes (the API's bounds) and with MessageType DIGEST (the test hashes the message), and
  the HSM's ``PublicKey.verify`` (``crypto verify`` rsa-pkcs, rsa-pkcs-pss, ecdsa; the HSM has
  no Ed25519);
* RSA-OAEP: KMS Decrypt's ``oaep_decrypt_or_fail``, the HSM's ``PrivateKey.decrypt_oaep``
  (``crypto decrypt`` and ``key unwrap`` rsa-oaep) and ImportKeyMaterial's ``unwrap_material``
  (RSAES_OAEP_SHA_1 / _SHA_256);
* ECDH: DeriveSharedSecret's ``derive_or_fail``, with the vector's scalar as PKCS#8 (as KMS
  holds a private key; the HSM has no ECDH operation);
* AES-GCM: the HSM's ``AesGcmKey.decrypt`` (``crypto decrypt`` and ``key unwrap`` aes-gcm), and
  for 256-bit keys KMS's ``open_sealed`` and ``seal`` (the envelope of every symmetric
  ciphertext; ``seal`` must give the vector's ciphertext and tag);
* AES key wrap: the HSM's ``aes_unwrap_pad`` and ``aes_wrap_pad`` (``key unwrap`` / ``key wrap``
  aes-key-wrap-pad; the wrap must give the vector's ciphertext) and ImportKeyMaterial's
  ``unwrap_material`` (RSA_AES_KEY_WRAP_SHA_256: the vector's key RSA-OAEP-wrapped under a
  wrapping key, followed by the vector's ciphertext);
* HMAC: ``compute_mac`` (GenerateMac, and VerifyMac with its constant-time comparison; messages
  of 1-4096 bytes) and the HSM's ``hmac_verify`` (``crypto hmac``).

Every case ends in exactly one class:

* **valid accepted**: every path accepted it and gave the expected output;
* **invalid rejected**: every path refused it with the operation's documented answer
  (KMSInvalidSignatureException, InvalidCiphertextException, ValidationException, a failed
  HSM verification or CRYPTO_FAILED unwrap, the import's UnwrapFailed);
* **acceptable**, classified by the rule below as accepted or rejected;
* **foreign rejected**: the case was made with parameters Strongroom does not use (RSA-OAEP with
  a label or with MGF1-SHA-1 under SHA-256; RSA-PSS with a salt length other than the hash
  length or another MGF1 hash; an HMAC tag truncated below the hash length; RFC 3394 key wrap
  without padding). The file's verdict is about its own parameters, so the case is run through
  Strongroom's algorithm with the same hash, and every path must refuse it: accepting it would
  mean Strongroom verified or decrypted under a parameter set it does not offer. (A valid
  truncated HMAC tag must also be the prefix of ``compute_mac``'s output.)
* **resalted accepted**: in a PSS file with a foreign salt length, a case whose comment says
  the salt length was changed to the hash length ("s_len changed to 32" in the SHA-256
  files with salt length 0) was signed with Strongroom's parameters: every path must accept it.
* **skipped by rule**, counted per rule: AES-GCM cases with an IV other than 96 bits or a tag
  other than 128 bits (Strongroom's GCM fixes both), and Ed25519 cases with an empty message
  (KMS messages are 1-4096 bytes and ED25519_SHA_512 has no DIGEST type, so no call can carry
  one).

Anything else — a path that accepts an invalid case, refuses a valid one, returns other output,
answers with another error, raises — is an unexplained result; the file's test fails and lists
them. ``test_summary`` asserts the totals over all 45 files and prints them (``pytest -s``).

Rule for "acceptable" vectors (legacy encodings, weak parameters, compressed points): either
answer is allowed, but it must be one of the operation's documented answers (never another
exception), every path must give the same answer, and an accepted ECDH result must equal the
vector's shared secret. (The rule of ``tests/kms/test_wycheproof.py``, plus the agreement
between paths.)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.crypto import asymmetric, kms_import, symmetric
from strongroom.crypto.hsm_symmetric import (
    AesGcmKey,
    CryptoFailure,
    aes_unwrap_pad,
    aes_wrap_pad,
    hmac_verify,
)
from strongroom.errors import AwsError
from strongroom.hsm.operations import build_registry
from strongroom.hsm.ops_wrap import WRAP_MECHANISMS
from strongroom.kms.domain.specs import SPECS
from strongroom.kms.ops.asymmetric import oaep_decrypt_or_fail, verify_signature
from strongroom.kms.ops.keypairs import derive_or_fail
from strongroom.kms.ops.mac import compute_mac

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "wycheproof"  # tests/vectors


ACCEPTED = "accepted"
REJECTED = "rejected"
OTHER_OUTPUT = "accepted with other output"
MAX_MESSAGE = 4096  # Sign/Verify/GenerateMac/VerifyMac Message: 1-4096 bytes
GCM_RULE = "AES-GCM IV other than 96 bits or tag other than 128 bits"
ED25519_RULE = "Ed25519 with an empty message"
_HASH_BYTES = {"SHA-1": 20, "SHA-224": 28, "SHA-256": 32, "SHA-384": 48, "SHA-512": 64}
_KMS_HASHES = ("SHA-256", "SHA-384", "SHA-512")  # the hashes of KMS's signing algorithms
_RESALTED = re.compile(r"s_len changed to (\d+)")

PathCall = Callable[[], str]
Runner = Callable[[dict[str, Any], "Tally"], None]


@dataclass
class Tally:
    """What happened to the cases of one file."""

    valid_accepted: int = 0
    invalid_rejected: int = 0
    acceptable: Counter[str] = field(default_factory=Counter)  # "accepted"/"rejected" -> n
    acceptable_flags: Counter[str] = field(default_factory=Counter)  # "flags: answer" -> n
    foreign_rejected: int = 0
    resalted_accepted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # rule -> n
    unexplained: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Cases classified, the unexplained ones included."""
        return (
            self.valid_accepted
            + self.invalid_rejected
            + sum(self.acceptable.values())
            + self.foreign_rejected
            + self.resalted_accepted
            + sum(self.skipped.values())
            + len(self.unexplained)
        )

    def record(self, case: dict[str, Any], paths: dict[str, PathCall], verdict: str = "") -> None:
        """Run ``case`` through every path and classify it. ``verdict``: the file's (by
        default), "foreign", or "resalted"."""
        assert paths, "a case must run through at least one path"
        answers: dict[str, str] = {}
        for name, path in paths.items():
            try:
                answers[name] = path()
            except Exception as exc:  # an unexplained result, listed rather than raised
                answers[name] = f"raised {type(exc).__name__}: {exc}"
        seen = set(answers.values())
        verdict = verdict or case["result"]
        if verdict == "valid" and seen == {ACCEPTED}:
            self.valid_accepted += 1
        elif verdict == "invalid" and seen == {REJECTED}:
            self.invalid_rejected += 1
        elif verdict == "foreign" and seen == {REJECTED}:
            self.foreign_rejected += 1
        elif verdict == "resalted" and seen == {ACCEPTED}:
            self.resalted_accepted += 1
        elif verdict == "acceptable" and seen in ({ACCEPTED}, {REJECTED}):
            answer = seen.pop()
            self.acceptable[answer] += 1
            self.acceptable_flags[f"{'+'.join(case['flags'])}: {answer}"] += 1
        else:
            self.explain(case, f"{verdict}: {answers}")

    def explain(self, case: dict[str, Any], what: str) -> None:
        """Record an unexplained result."""
        self.unexplained.append(f"tcId {case['tcId']} ({case['comment']!r}) {what}")


def _cases(data: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for group in data["testGroups"]:
        for case in group["tests"]:
            yield group, case


def _compare(got: bytes, expected: bytes) -> str:
    return ACCEPTED if got == expected else OTHER_OUTPUT


def _aws(call: Callable[[], object], refusal: str, expected: bytes | None = None) -> str:
    """A KMS function's answer: the operation's documented refusal, or success."""
    try:
        got = call()
    except AwsError as exc:
        return REJECTED if exc.code == refusal else f"AwsError {exc.code}"
    if expected is not None:
        assert isinstance(got, bytes)
        return _compare(got, expected)
    return ACCEPTED


# --- signatures ----------------------------------------------------------------------------


@functools.cache
def _hsm_public(der: bytes) -> asymmetric.PublicKey | None:
    """The HSM's handle of a public key; None when the HSM refuses to load it."""
    try:
        return asymmetric.load_public(der)
    except CryptoFailure:
        return None


def _kms_verify(spki: bytes, algorithm: str, message: bytes, kind: str, signature: bytes) -> str:
    return _aws(
        functools.partial(
            verify_signature, spki, algorithm, message, kind, signature, is_private=False
        ),
        "KMSInvalidSignatureException",
    )


def _hsm_verify(spki: bytes, mechanism: str, hash_name: str, msg: bytes, sig: bytes) -> str:
    key = _hsm_public(spki)
    if key is None:
        return REJECTED
    return ACCEPTED if key.verify(mechanism, hash_name, msg, sig) else REJECTED


def _signature_paths(
    group: dict[str, Any],
    case: dict[str, Any],
    kms_algorithm: str | None,
    mechanism: str | None,
    hash_name: str,
) -> dict[str, PathCall]:
    spki = bytes.fromhex(group["publicKeyDer"])
    msg, sig = bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"])
    hsm_hash = hash_name.replace("-", "").lower()
    paths: dict[str, PathCall] = {}
    if kms_algorithm is not None:
        if 1 <= len(msg) <= MAX_MESSAGE:
            paths["kms RAW"] = functools.partial(_kms_verify, spki, kms_algorithm, msg, "RAW", sig)
        if kms_algorithm != "ED25519_SHA_512":
            digest = hashlib.new(hsm_hash, msg).digest()
            paths["kms DIGEST"] = functools.partial(
                _kms_verify, spki, kms_algorithm, digest, "DIGEST", sig
            )
    if mechanism is not None:
        paths["hsm"] = functools.partial(_hsm_verify, spki, mechanism, hsm_hash, msg, sig)
    return paths


def _run_ecdsa(data: dict[str, Any], tally: Tally) -> None:
    for group, case in _cases(data):
        sha = group["sha"]
        kms = f"ECDSA_{sha.replace('-', '_')}"
        tally.record(case, _signature_paths(group, case, kms, "ecdsa", sha))


def _run_pkcs1(data: dict[str, Any], tally: Tally) -> None:
    for group, case in _cases(data):
        sha = group["sha"]
        kms = f"RSASSA_PKCS1_V1_5_{sha.replace('-', '_')}"
        tally.record(case, _signature_paths(group, case, kms, "rsa-pkcs", sha))


def _run_pss(data: dict[str, Any], tally: Tally) -> None:
    """KMS's and the HSM's PSS: MGF1 with the message hash, salt length = hash length."""
    for group, case in _cases(data):
        sha = group["sha"]
        assert group["mgf"] == "MGF1"
        mgf_ours = group["mgfSha"] == sha
        verdict = ""  # the file's: its parameters are Strongroom's
        if not mgf_ours or group["sLen"] != _HASH_BYTES[sha]:
            resalted = _RESALTED.fullmatch(case["comment"])
            ours = mgf_ours and resalted and int(resalted.group(1)) == _HASH_BYTES[sha]
            verdict = "resalted" if ours else "foreign"
        kms = f"RSASSA_PSS_{sha.replace('-', '_')}" if sha in _KMS_HASHES else None
        tally.record(case, _signature_paths(group, case, kms, "rsa-pkcs-pss", sha), verdict)


def _run_ed25519(data: dict[str, Any], tally: Tally) -> None:
    for group, case in _cases(data):
        if not case["msg"]:
            tally.skipped[ED25519_RULE] += 1
            continue
        paths = _signature_paths(group, case, "ED25519_SHA_512", None, "SHA-512")
        tally.record(case, paths)


# --- RSA-OAEP, ECDH ------------------------------------------------------------------------

#: ``asymmetric.load_private`` parses and checks the key (0.3 s for RSA-4096); the HSM path
#: uses this memoised copy, and the import path is given it too (see :func:`_parsed_once`).
_private_key = functools.cache(asymmetric.load_private)


@contextlib.contextmanager
def _parsed_once() -> Iterator[None]:
    """``unwrap_material`` parses the wrapping key twice per call (75 ms with RSA-2048, mostly
    the key check); the vectors call it with a few keys thousands of times, so the parse is
    memoised while they run. Every other step of the import path runs unchanged."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asymmetric, "load_private", _private_key)
        yield


def _hsm_oaep(private: bytes, hash_name: str, ct: bytes, expected: bytes) -> str:
    try:
        got = _private_key(private).decrypt_oaep(hash_name, ct)
    except CryptoFailure:
        return REJECTED
    return _compare(got, expected)


def _import_unwrap(private: bytes, algorithm: str, wrapped: bytes, expected: bytes) -> str:
    try:
        got = kms_import.unwrap_material(private, algorithm, wrapped)
    except kms_import.UnwrapFailed:
        return REJECTED
    return _compare(got, expected)


def _run_oaep(data: dict[str, Any], tally: Tally) -> None:
    """KMS's RSAES_OAEP_SHA_1 / _SHA_256 and the HSM's rsa-oaep: MGF1 with the same hash,
    empty label."""
    for group, case in _cases(data):
        sha = group["sha"]
        algorithm = {"SHA-1": "RSAES_OAEP_SHA_1", "SHA-256": "RSAES_OAEP_SHA_256"}[sha]
        private = bytes.fromhex(group["privateKeyPkcs8"])
        ct, msg = bytes.fromhex(case["ct"]), bytes.fromhex(case["msg"])
        paths: dict[str, PathCall] = {
            "kms Decrypt": functools.partial(
                _aws,
                functools.partial(oaep_decrypt_or_fail, private, algorithm, ct),
                "InvalidCiphertextException",
                msg,
            ),
            "hsm": functools.partial(_hsm_oaep, private, sha.replace("-", "").lower(), ct, msg),
            "kms import": functools.partial(_import_unwrap, private, algorithm, ct, msg),
        }
        foreign = group["mgfSha"] != sha or bool(case["label"])
        with _parsed_once():
            tally.record(case, paths, "foreign" if foreign else "")


_CURVES: dict[str, ec.EllipticCurve] = {
    "secp256r1": ec.SECP256R1(),
    "secp384r1": ec.SECP384R1(),
    "secp521r1": ec.SECP521R1(),
}


def _ec_private(curve: str, scalar_hex: str) -> bytes:
    key = ec.derive_private_key(int(scalar_hex, 16), _CURVES[curve])
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _run_ecdh(data: dict[str, Any], tally: Tally) -> None:
    for group, case in _cases(data):
        private = _ec_private(group["curve"], case["private"])
        public, shared = bytes.fromhex(case["public"]), bytes.fromhex(case["shared"])
        call = functools.partial(derive_or_fail, private, public)
        paths: dict[str, PathCall] = {
            "kms DeriveSharedSecret": functools.partial(_aws, call, "ValidationException", shared)
        }
        tally.record(case, paths)


# --- AES-GCM, AES key wrap -----------------------------------------------------------------


def _hsm_gcm(key: bytes, blob: bytes, aad: bytes, expected: bytes) -> str:
    try:
        got = AesGcmKey(key).decrypt(blob, aad)
    except CryptoFailure:
        return REJECTED
    return _compare(got, expected)


def _kms_gcm(key: bytes, iv: bytes, sealed: bytes, aad: bytes, expected: bytes) -> str:
    try:
        got = symmetric.open_sealed(key, iv, sealed, aad)
    except symmetric.CryptoError:
        return REJECTED
    if got != expected:
        return OTHER_OUTPUT
    if symmetric.seal(key, iv, got, aad) != sealed:
        return "opened, but seal gives another ciphertext"
    return ACCEPTED


def _run_aes_gcm(data: dict[str, Any], tally: Tally) -> None:
    for group, case in _cases(data):
        if group["ivSize"] != 96 or group["tagSize"] != 128:
            tally.skipped[GCM_RULE] += 1
            continue
        key, iv, aad = (bytes.fromhex(case[k]) for k in ("key", "iv", "aad"))
        sealed = bytes.fromhex(case["ct"] + case["tag"])
        msg = bytes.fromhex(case["msg"])
        paths: dict[str, PathCall] = {
            "hsm": functools.partial(_hsm_gcm, key, iv + sealed, aad, msg)
        }
        if len(key) == 32:  # KMS's AES-256-GCM
            paths["kms"] = functools.partial(_kms_gcm, key, iv, sealed, aad, msg)
        tally.record(case, paths)


def _hsm_kwp(kek: bytes, wrapped: bytes, expected: bytes) -> str:
    try:
        got = aes_unwrap_pad(kek, wrapped)
    except CryptoFailure:
        return REJECTED
    if got != expected:
        return OTHER_OUTPUT
    if aes_wrap_pad(kek, got) != wrapped:
        return "unwrapped, but wrap gives another ciphertext"
    return ACCEPTED


@functools.cache
def _wrapping_pair() -> tuple[bytes, asymmetric.PublicKey]:
    """An ImportKeyMaterial wrapping key pair (RSA_2048), made by Strongroom's own recipe."""
    private, public = kms_import.new_wrapping_pair("RSA_2048")
    return private, asymmetric.load_public(public)


def _import_kwp(kek: bytes, wrapped: bytes, expected: bytes) -> str:
    private, public = _wrapping_pair()
    blob = public.encrypt_oaep("sha256", kek) + wrapped
    return _import_unwrap(private, "RSA_AES_KEY_WRAP_SHA_256", blob, expected)


def _key_wrap_runner(*, foreign: bool) -> Runner:
    """AES-KWP through the HSM and the import path; for an RFC 3394 (KW) file ``foreign``:
    Strongroom has no KW without padding, and its KWP must refuse every KW ciphertext."""

    def run(data: dict[str, Any], tally: Tally) -> None:
        for _group, case in _cases(data):
            kek, ct, msg = (bytes.fromhex(case[k]) for k in ("key", "ct", "msg"))
            paths: dict[str, PathCall] = {
                "hsm": functools.partial(_hsm_kwp, kek, ct, msg),
                "kms import": functools.partial(_import_kwp, kek, ct, msg),
            }
            with _parsed_once():
                tally.record(case, paths, "foreign" if foreign else "")

    return run


# --- HMAC ----------------------------------------------------------------------------------


def _kms_mac(algorithm: str, key: bytes, msg: bytes, tag: bytes) -> str:
    # VerifyMac: compute_mac, then a constant-time comparison with the caller's MAC
    return ACCEPTED if hmac.compare_digest(compute_mac(algorithm, key, msg), tag) else REJECTED


def _hsm_mac(key: bytes, hash_name: str, msg: bytes, tag: bytes) -> str:
    return ACCEPTED if hmac_verify(key, hash_name, msg, tag) else REJECTED


def _run_hmac(data: dict[str, Any], tally: Tally) -> None:
    hash_name = data["algorithm"].removeprefix("HMAC").lower()  # "sha256"
    algorithm = f"HMAC_SHA_{hash_name.removeprefix('sha')}"
    full_bits = hashlib.new(hash_name).digest_size * 8
    for group, case in _cases(data):
        key, msg, tag = (bytes.fromhex(case[k]) for k in ("key", "msg", "tag"))
        paths: dict[str, PathCall] = {"hsm": functools.partial(_hsm_mac, key, hash_name, msg, tag)}
        if 1 <= len(msg) <= MAX_MESSAGE:
            paths["kms"] = functools.partial(_kms_mac, algorithm, key, msg, tag)
        truncated = group["tagSize"] != full_bits
        prefix = compute_mac(algorithm, key, msg)[: len(tag)]
        if truncated and case["result"] == "valid" and prefix != tag:
            tally.explain(case, "GenerateMac's output does not start with the valid tag")
            continue
        tally.record(case, paths, "foreign" if truncated else "")


# --- the files -----------------------------------------------------------------------------

_KEY_WRAP = _key_wrap_runner(foreign=False)

#: The files run here, and how.
RUNNERS: dict[str, Runner] = {
    "aes_gcm_test.json": _run_aes_gcm,
    "aes_kwp_test.json": _KEY_WRAP,
    "aes_wrap_test.json": _key_wrap_runner(foreign=True),
    "ecdh_secp256r1_test.json": _run_ecdh,
    "ecdh_secp384r1_test.json": _run_ecdh,
    "ecdh_secp521r1_test.json": _run_ecdh,
    "ecdsa_secp256k1_sha256_test.json": _run_ecdsa,
    "ecdsa_secp256r1_sha256_test.json": _run_ecdsa,
    "ecdsa_secp384r1_sha384_test.json": _run_ecdsa,
    "ecdsa_secp521r1_sha512_test.json": _run_ecdsa,
    "ed25519_test.json": _run_ed25519,
    "hmac_sha224_test.json": _run_hmac,
    "hmac_sha256_test.json": _run_hmac,
    "hmac_sha384_test.json": _run_hmac,
    "hmac_sha512_test.json": _run_hmac,
    "rsa_oaep_2048_sha1_mgf1sha1_test.json": _run_oaep,
    "rsa_oaep_2048_sha256_mgf1sha1_test.json": _run_oaep,
    "rsa_oaep_2048_sha256_mgf1sha256_test.json": _run_oaep,
    "rsa_oaep_3072_sha256_mgf1sha1_test.json": _run_oaep,
    "rsa_oaep_3072_sha256_mgf1sha256_test.json": _run_oaep,
    "rsa_oaep_4096_sha256_mgf1sha1_test.json": _run_oaep,
    "rsa_oaep_4096_sha256_mgf1sha256_test.json": _run_oaep,
    "rsa_pss_2048_sha256_mgf1_0_params_test.json": _run_pss,
    "rsa_pss_2048_sha256_mgf1_0_test.json": _run_pss,
    "rsa_pss_2048_sha256_mgf1_32_params_test.json": _run_pss,
    "rsa_pss_2048_sha256_mgf1_32_test.json": _run_pss,
    "rsa_pss_2048_sha384_mgf1_48_test.json": _run_pss,
    "rsa_pss_2048_sha512_mgf1sha256_32_params_test.json": _run_pss,
    "rsa_pss_3072_sha256_mgf1_32_params_test.json": _run_pss,
    "rsa_pss_3072_sha256_mgf1_32_test.json": _run_pss,
    "rsa_pss_4096_sha256_mgf1_32_test.json": _run_pss,
    "rsa_pss_4096_sha384_mgf1_48_test.json": _run_pss,
    "rsa_pss_4096_sha512_mgf1_32_params_test.json": _run_pss,
    "rsa_pss_4096_sha512_mgf1_32_test.json": _run_pss,
    "rsa_pss_4096_sha512_mgf1_64_params_test.json": _run_pss,
    "rsa_pss_4096_sha512_mgf1_64_test.json": _run_pss,
    "rsa_pss_misc_params_test.json": _run_pss,
    "rsa_pss_misc_test.json": _run_pss,
    "rsa_signature_2048_sha256_test.json": _run_pkcs1,
    "rsa_signature_3072_sha256_test.json": _run_pkcs1,
    "rsa_signature_3072_sha384_test.json": _run_pkcs1,
    "rsa_signature_3072_sha512_test.json": _run_pkcs1,
    "rsa_signature_4096_sha384_test.json": _run_pkcs1,
    "rsa_signature_4096_sha512_test.json": _run_pkcs1,
}

#: Files whose every case is foreign (made with parameters Strongroom does not use), and why.
FOREIGN_FILES: dict[str, str] = {
    "aes_wrap_test.json": "RFC 3394 key wrap without padding: the HSM wraps with "
    "aes-key-wrap-pad only, ImportKeyMaterial unwraps RFC 5649",
    "rsa_oaep_2048_sha256_mgf1sha1_test.json": "MGF1-SHA-1 under SHA-256",
    "rsa_oaep_3072_sha256_mgf1sha1_test.json": "MGF1-SHA-1 under SHA-256",
    "rsa_oaep_4096_sha256_mgf1sha1_test.json": "MGF1-SHA-1 under SHA-256",
    "rsa_pss_2048_sha256_mgf1_0_params_test.json": "salt length 0",
    "rsa_pss_2048_sha256_mgf1_0_test.json": "salt length 0",
    "rsa_pss_2048_sha512_mgf1sha256_32_params_test.json": "MGF1-SHA-256 under SHA-512",
    "rsa_pss_4096_sha512_mgf1_32_params_test.json": "salt length 32 under SHA-512",
    "rsa_pss_4096_sha512_mgf1_32_test.json": "salt length 32 under SHA-512",
}


def _no_secp256k1_agreement() -> bool:
    kms = "KEY_AGREEMENT" not in SPECS["ECC_SECG_P256K1"].usages
    hsm = not any("derive" in op or "ecdh" in op for op in build_registry().names())
    return kms and hsm


#: Files no Strongroom operation can take, why, and a check that the reason still holds.
NOT_APPLICABLE: dict[str, tuple[str, Callable[[], bool]]] = {
    "ecdh_secp256k1_test.json": (
        "KMS offers key agreement on the NIST curves only (ECC_SECG_P256K1 keys are "
        "SIGN_VERIFY keys, as in AWS), and the HSM has no ECDH operation",
        _no_secp256k1_agreement,
    ),
}


@functools.cache
def _load(name: str) -> dict[str, Any]:
    return dict(json.loads((VECTORS / name).read_text()))


@functools.cache
def _run(name: str) -> Tally:
    tally = Tally()
    RUNNERS[name](_load(name), tally)
    return tally


def test_every_file_is_accounted_for() -> None:
    present = {path.name for path in VECTORS.glob("*.json")}
    assert not RUNNERS.keys() & NOT_APPLICABLE.keys()
    assert RUNNERS.keys() | NOT_APPLICABLE.keys() == present
    assert len(present) == 45
    assert FOREIGN_FILES.keys() <= RUNNERS.keys()


def test_not_applicable_reasons_hold() -> None:
    for name, (reason, still_true) in NOT_APPLICABLE.items():
        assert still_true(), f"{name} is listed as not applicable ({reason}), which is no longer so"
    assert "aes-key-wrap" not in WRAP_MECHANISMS  # the reason aes_wrap_test.json is foreign


@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_file(name: str) -> None:
    tally = _run(name)
    assert not tally.unexplained, "\n".join(tally.unexplained)
    assert tally.total == _load(name)["numberOfTests"]
    if name in FOREIGN_FILES:
        assert tally.foreign_rejected + tally.resalted_accepted == tally.total
    else:
        assert tally.valid_accepted > 0


#: The totals over the 45 files (10,928 cases), as ``test_summary`` prints them.
EXPECTED_TOTALS = {
    "valid accepted": 3775,
    "invalid rejected": 3919,
    "acceptable accepted": 3,
    "acceptable rejected": 691,
    "foreign rejected": 1663,
    "resalted accepted": 2,
    "skipped by rule": 123,
    "not applicable": 752,
    "unexplained": 0,
}


def _row(tally: Tally) -> dict[str, int]:
    return {
        "valid accepted": tally.valid_accepted,
        "invalid rejected": tally.invalid_rejected,
        "acceptable accepted": tally.acceptable[ACCEPTED],
        "acceptable rejected": tally.acceptable[REJECTED],
        "foreign rejected": tally.foreign_rejected,
        "resalted accepted": tally.resalted_accepted,
        "skipped by rule": sum(tally.skipped.values()),
        "not applicable": 0,
        "unexplained": len(tally.unexplained),
    }


_HEADS = ("valid", "invalid", "acc ok", "acc no", "foreign", "resalted", "skipped", "n/a", "unexp")


def test_summary() -> None:
    totals: Counter[str] = Counter({key: 0 for key in EXPECTED_TOTALS})
    flags: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    lines = [f"{'file':52}" + "".join(f"{h:>9}" for h in _HEADS)]
    for name in sorted(RUNNERS.keys() | NOT_APPLICABLE.keys()):
        if name in NOT_APPLICABLE:
            row = dict.fromkeys(EXPECTED_TOTALS, 0)
            row["not applicable"] = _load(name)["numberOfTests"]
        else:
            tally = _run(name)
            row = _row(tally)
            flags.update(tally.acceptable_flags)
            skipped.update(tally.skipped)
        totals.update(row)
        lines.append(f"{name:52}" + "".join(f"{n:>9}" for n in row.values()))
    lines.append(f"{'total':52}" + "".join(f"{totals[k]:>9}" for k in EXPECTED_TOTALS))
    lines += [f"acceptable, {flag}: {n}" for flag, n in sorted(flags.items())]
    lines += [f"skipped by rule, {rule}: {n}" for rule, n in sorted(skipped.items())]
    lines += [f"not applicable, {name}: {reason}" for name, (reason, _) in NOT_APPLICABLE.items()]
    print("\nWycheproof (reliability figure C1)\n" + "\n".join(lines))
    assert sum(totals.values()) == 10_928
    assert dict(totals) == EXPECTED_TOTALS
