"""Where the self-tests' known answers come from (reliability figure C5): every pinned value of
``strongroom.crypto._self_test_*`` is found again in the published vector files of the
``cryptography_vectors`` package (or, for SHA-224 and AES-CBC, its NIST-given value is
recomputed here by the library); and every name a self-test can fail with is in ``NAMES``, so
the fault-injection test of ``tests/kms/test_self_tests_e2e.py`` reaches it."""

from __future__ import annotations

import ast
import hashlib
import inspect
from collections.abc import Iterator
from types import ModuleType

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.crypto import _self_test_asymmetric as asym
from strongroom.crypto import _self_test_symmetric as sym
from strongroom.crypto import _self_test_vectors as v
from strongroom.crypto import self_test


def _records(path: str) -> Iterator[dict[str, str]]:
    """``key = value`` records of a vector file, a blank line or a new ``count`` between them."""
    with cryptography_vectors.open_vector_file(path, "r") as handle:
        text = handle.read()
    record: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        if (not sep and record) or (key.lower() == "count" and record):
            yield record
            record = {}
        if sep:
            record[key] = value


def _find(path: str, **match: str) -> dict[str, str]:
    for record in _records(path):
        if all(record.get(k, "").lower() == m.lower() for k, m in match.items()):
            return record
    raise AssertionError(f"no record {match} in {path}")


def test_rsa_key_and_signature_are_nists() -> None:
    path = "asymmetric/RSA/FIPS_186-2/SigGen15_186-2.txt"
    with cryptography_vectors.open_vector_file(path, "r") as handle:
        section = handle.read().split("[mod = 2048]")[1].split("[mod = 3072]")[0]
    fields: dict[str, str] = {}
    for line in section.splitlines():
        key, _, value = line.partition("=")
        fields.setdefault(key.strip(), value.strip())
    n, e, d = (int(fields[k], 16) for k in "ned")
    assert n == v.RSA_P * v.RSA_Q and e == 65537
    assert {v.RSA_P, v.RSA_Q} == set(rsa.rsa_recover_prime_factors(n, e, d))
    sha256 = section.split("SHAAlg = SHA256")[1]
    msg = sha256.split("Msg = ")[1].split()[0]
    signature = sha256.split("S = ")[1].split()[0]
    assert v.RSA_MESSAGE.hex() == msg.lower() and v.RSA_SIGNATURE.hex() == signature.lower()


def test_mldsa_and_mlkem_answers_are_nists() -> None:
    dsa = next(_records("asymmetric/MLDSA/kat_MLDSA_44_det_pure.rsp"))
    assert v.MLDSA44_SEED.hex() == dsa["xi"]
    assert hashlib.sha256(bytes.fromhex(dsa["pk"])).digest() == v.MLDSA44_PUBLIC_SHA256
    assert v.MLDSA44_MESSAGE.hex() == dsa["msg"] and v.MLDSA44_CONTEXT.hex() == dsa["ctx"]
    assert bytes.fromhex(dsa["sm"]) == v.MLDSA44_SIGNATURE + v.MLDSA44_MESSAGE
    kem = next(_records("asymmetric/MLKEM/kat_MLKEM_768.rsp"))
    assert v.MLKEM768_SEED.hex() == kem["d"] + kem["z"]
    assert hashlib.sha256(bytes.fromhex(kem["pk"])).digest() == v.MLKEM768_PUBLIC_SHA256
    assert v.MLKEM768_CIPHERTEXT.hex() == kem["ct"] and v.MLKEM768_SECRET.hex() == kem["ss"]
    # the implicit-rejection formula of the self-test gives the file's own rejected secret
    z, ct_n = bytes.fromhex(kem["z"]), bytes.fromhex(kem["ct_n"])
    assert hashlib.shake_256(z + ct_n).digest(32).hex() == kem["ss_n"]


@pytest.mark.parametrize(("name", "algorithm", "answer"), sym._HMACS)
def test_hmac_answers_are_the_rfcs(name: str, algorithm: str, answer: str) -> None:
    path = "HMAC/rfc-2202-sha1.txt" if algorithm == "sha1" else f"HMAC/rfc-4231-{algorithm}.txt"
    record = _find(path, Key="0b" * 20, Msg=b"Hi There".hex())
    assert record["MD"] == answer


def test_hkdf_kwp_ed25519_x25519_answers_are_the_rfcs() -> None:
    hkdf = list(_records("KDF/rfc-5869-HKDF-SHA256.txt"))
    okms = {r["OKM"] for r in hkdf if "OKM" in r}
    source = inspect.getsource(sym._hkdf_sha256)
    assert sum(okm in source for okm in okms) == 2  # test cases 1 and 3
    for key, wrapped in sym._KWP:
        record = _find("keywrap/kwp_botan.txt", Key=sym._KWP_KEK, Input=key)
        assert record["Output"].lower() == wrapped
    with cryptography_vectors.open_vector_file("asymmetric/Ed25519/sign.input", "r") as f:
        first = f.readline().split(":")
    assert first[0][:64] == asym._ED25519_SEED and first[1] == asym._ED25519_PUBLIC
    assert first[3][:128] == asym._ED25519_SIGNATURE
    x = _find("asymmetric/X25519/rfc7748.txt", COUNT="1")
    assert (x["INPUT_SCALAR"], x["INPUT_U"], x["OUTPUT_U"]) == asym._X25519


def test_digest_answers() -> None:
    """SHA-1/256/384/512 of "abc" are in NIST's short-message files only as bit strings of
    other messages; the values are FIPS 180-2's, checked here against hashlib."""
    for _name, algorithm, answer in sym._DIGESTS:
        assert hashlib.new(algorithm, b"abc").hexdigest() == answer


def _failure_names(module: ModuleType) -> set[str]:
    """The names a self-test module fails with: string constants passed first to a check or to
    SelfTestFailure, and those assigned to ``name`` (alone, or first of a tuple)."""
    checks = {"expect", "accepts", "refuses", "sign_verify", "SelfTestFailure"}
    tree = ast.parse(inspect.getsource(module))
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            if node.func.id in checks:
                found.append(node.args[0])
        elif isinstance(node, ast.Assign):
            target, value = node.targets[0], node.value
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
                target, value = target.elts[0], value.elts[0]
            if isinstance(target, ast.Name) and target.id == "name":
                found.append(value)
    return {e.value for e in found if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def test_every_failure_name_is_in_names() -> None:
    tables = {n for table in (sym._DIGESTS, sym._HMACS, asym._CURVES) for n, *_ in table}
    used = _failure_names(sym) | _failure_names(asym) | tables
    # the tamper checks that have no fault of their own (they fail only if a library accepts
    # an altered ciphertext)
    unnamed = {"AES-256-GCM tag check", "key wrapping AAD check"}
    assert used - unnamed == set(self_test.NAMES)
    assert len(set(self_test.NAMES)) == len(self_test.NAMES)
