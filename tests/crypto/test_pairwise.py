"""Conditional pairwise consistency tests on key generation (reliability figure C5): every place
in ``strongroom.crypto`` that generates a key pair tests it before returning it, a key pair
whose halves do not fit is refused, and each family's test, made to fail, fails by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, mlkem

from strongroom.crypto import asymmetric, audit_sign, kms_asymmetric, kms_import, pairwise, x509
from strongroom.crypto.hsm_symmetric import CryptoFailure
from strongroom.crypto.self_test import FAULT_ENV
from strongroom.crypto.server_cert import self_signed_server_certificate

#: each KMS key spec and the family of its pairwise test (RSA_3072/4096: RSA, as RSA_2048,
#: left out for their generation time)
KMS_SPECS = {
    "RSA_2048": "RSA",
    "ECC_NIST_P256": "ECDSA P-256",
    "ECC_NIST_P384": "ECDSA P-384",
    "ECC_NIST_P521": "ECDSA P-521",
    "ECC_SECG_P256K1": "ECDSA secp256k1",
    "ECC_NIST_EDWARDS25519": "Ed25519",
    "ML_DSA_44": "ML-DSA-44",
    "ML_DSA_65": "ML-DSA-65",
    "ML_DSA_87": "ML-DSA-87",
    "ML_KEM_768": "ML-KEM-768",
    "ML_KEM_1024": "ML-KEM-1024",
}


def test_every_family_is_a_kms_spec() -> None:
    assert set(KMS_SPECS.values()) == set(pairwise.FAMILIES)


@pytest.mark.parametrize(("spec", "family"), KMS_SPECS.items())
def test_each_kms_spec_is_tested_and_fails_by_name(
    spec: str, family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert kms_asymmetric.public_der(kms_asymmetric.generate_private(spec))
    with mock.patch.object(pairwise, "check", wraps=pairwise.check) as check:
        kms_asymmetric.generate_private(spec)
    assert check.call_count == 1
    assert pairwise.family(check.call_args.args[0]) == family
    name = pairwise.test_name(family)
    monkeypatch.setenv(FAULT_ENV, name)
    with pytest.raises(pairwise.PairwiseFailure) as exc:
        kms_asymmetric.generate_private(spec)
    assert str(exc.value) == f"{name} failed: the new key was discarded"
    others = [s for s, f in KMS_SPECS.items() if f != family and not s.startswith("RSA")]
    kms_asymmetric.generate_private(others[0])  # another family's test is not touched


def _key_makers(tmp_path: Path) -> dict[str, Callable[[], object]]:
    return {
        "HSM EC pair": lambda: asymmetric.generate_ec("secp256r1"),
        "HSM RSA pair": lambda: asymmetric.generate_rsa(2048),
        "import wrapping pair": lambda: kms_import.new_wrapping_pair("RSA_2048"),
        "HSM node key": x509.generate_node_key,
        "TLS key": lambda: self_signed_server_certificate(["127.0.0.1"]),
        "trail signing key": lambda: audit_sign.load_or_create_signer(tmp_path),
    }


@pytest.mark.parametrize(
    ("maker", "family"),
    [
        ("HSM EC pair", "ECDSA P-256"),
        ("HSM RSA pair", "RSA"),
        ("import wrapping pair", "RSA"),
        ("HSM node key", "ECDSA P-256"),
        ("TLS key", "ECDSA P-256"),
        ("trail signing key", "Ed25519"),
    ],
)
def test_every_other_generator_tests_its_key(
    maker: str, family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make = _key_makers(tmp_path)[maker]
    make()
    monkeypatch.setenv(FAULT_ENV, pairwise.test_name(family))
    (tmp_path / "audit-signing.key").unlink(missing_ok=True)
    with pytest.raises(pairwise.PairwiseFailure):
        make()
    assert not (tmp_path / "audit-signing.key").exists()  # nothing kept of a refused key


def test_the_hsm_sees_a_crypto_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """An HSM node answers a failed pairwise test with CRYPTO_FAILED and its message."""
    monkeypatch.setenv(FAULT_ENV, pairwise.test_name("ECDSA P-384"))
    with pytest.raises(CryptoFailure, match="ECDSA P-384 pairwise consistency test failed"):
        asymmetric.generate_ec("p-384")
    assert asymmetric.generate_ec("secp521r1").info["curve"] == "secp521r1"


def _mismatched(kind: type[Any], real: Any, other: Any, **attrs: Any) -> Any:
    """A private key of ``kind`` whose private operations are ``real``'s and whose public half
    is ``other``'s: an inconsistent pair, as a faulty generator could make."""
    fake = mock.Mock(spec=kind, **attrs)
    for method in ("sign", "decapsulate"):
        if hasattr(real, method):
            setattr(fake, method, getattr(real, method))
    fake.public_key = other.public_key
    return fake


@pytest.mark.parametrize(
    "pair",
    [
        lambda: _mismatched(
            ec.EllipticCurvePrivateKey,
            ec.generate_private_key(ec.SECP256R1()),
            ec.generate_private_key(ec.SECP256R1()),
            curve=ec.SECP256R1(),
        ),
        lambda: _mismatched(
            ed25519.Ed25519PrivateKey,
            ed25519.Ed25519PrivateKey.generate(),
            ed25519.Ed25519PrivateKey.generate(),
        ),
        lambda: _mismatched(
            mldsa.MLDSA44PrivateKey,
            mldsa.MLDSA44PrivateKey.generate(),
            mldsa.MLDSA44PrivateKey.generate(),
        ),
        lambda: _mismatched(
            mlkem.MLKEM768PrivateKey,
            mlkem.MLKEM768PrivateKey.generate(),
            mlkem.MLKEM768PrivateKey.generate(),
        ),
    ],
    ids=["ECDSA", "Ed25519", "ML-DSA", "ML-KEM"],
)
def test_a_pair_whose_halves_do_not_fit_is_refused(pair: Callable[[], Any]) -> None:
    with pytest.raises(pairwise.PairwiseFailure, match="pairwise consistency test failed"):
        pairwise.check(pair())


def test_a_key_of_no_known_family_is_refused() -> None:
    with pytest.raises(pairwise.PairwiseFailure, match="no pairwise consistency test"):
        pairwise.check(ec.generate_private_key(ec.SECP224R1()))
