"""The cases of scripts/interop_counts.py (reliability figure C3): a tally, a bounded thread pool,
and the sign/verify and RSA-OAEP checks between Strongroom (through boto3) and code outside it
(``cryptography``, and libsodium through PyNaCl for Ed25519ph, which ``cryptography`` lacks).

A case is a row name and a check: a function of the thread's client that raises on a mismatch.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, mldsa, padding, rsa
from nacl import bindings as sodium

from strongroom.kms.domain.specs import SPECS, oaep_plaintext_limit, signing_hash

PH = "ED25519_PH_SHA_512"
MIX = 4  # every MIX-th pair sends MessageType DIGEST (EXTERNAL_MU for ML-DSA); RAW otherwise
NEGATIVE_EVERY = 100  # one bit-flipped signature or ciphertext per this many pairs
OAEP_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096")
OAEP_ALGORITHMS = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA_256": hashes.SHA256, "SHA_384": hashes.SHA384, "SHA_512": hashes.SHA512,
}  # fmt: skip
_CURVES: dict[str, Callable[[], ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1, "ECC_NIST_P384": ec.SECP384R1,
    "ECC_NIST_P521": ec.SECP521R1, "ECC_SECG_P256K1": ec.SECP256K1,
}  # fmt: skip
_MLDSA: dict[str, Callable[[], Any]] = {
    "ML_DSA_44": mldsa.MLDSA44PrivateKey.generate,
    "ML_DSA_65": mldsa.MLDSA65PrivateKey.generate,
    "ML_DSA_87": mldsa.MLDSA87PrivateKey.generate,
}

Case = tuple[str, Callable[[Any], None]]


class Mismatch(Exception):
    """A check found a wrong answer."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Mismatch(what)


@dataclass
class Tally:
    """Rows of the table: name -> [asked, passed, failed]; the first errors, for the report."""

    rows: dict[str, list[int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ask(self, cases: Sequence[Case]) -> None:
        for row, _ in cases:
            self.rows.setdefault(row, [0, 0, 0])[0] += 1

    def add(self, row: str, ok: bool, error: str = "") -> None:
        with self.lock:
            self.rows[row][1 if ok else 2] += 1
            if error and len(self.errors) < 20:
                self.errors.append(error[:400])


def run_pool(
    cases: Sequence[Case], tally: Tally, threads: int, deadline: float, client: Callable[[], Any]
) -> None:
    """Each case once, on ``threads`` threads (one ``client()`` each), until ``deadline``."""
    tally.ask(cases)
    position = itertools.count()  # next() of a count is atomic under the GIL
    lock = threading.Lock()

    def worker() -> None:
        with lock:  # boto3 makes its clients one at a time
            mine = client()
        while time.monotonic() < deadline:
            i = next(position)
            if i >= len(cases):
                return
            row, check = cases[i]
            try:
                check(mine)
            except Exception as exc:  # any exception is a failed case, reported
                tally.add(row, False, f"{row} #{i}: {type(exc).__name__}: {exc}")
            else:
                tally.add(row, True)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def flip(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one bit, chosen by ``rng``, flipped."""
    bit = rng.randrange(len(data) * 8)
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# ---- signing outside and verifying outside ---------------------------------------------------


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    return _HASHES[signing_hash(algorithm) or "SHA_512"]()


def _rsa_padding(algorithm: str) -> padding.AsymmetricPadding:
    algo = _hash(algorithm)
    return (
        padding.PSS(padding.MGF1(algo), algo.digest_size)
        if "PSS" in algorithm
        else (padding.PKCS1v15())
    )


def new_private(spec: str) -> Any:
    """A private key of ``spec`` made outside, to import into an EXTERNAL key."""
    family = SPECS[spec].family
    if family == "rsa":
        return rsa.generate_private_key(65537, SPECS[spec].size)
    if family == "ec":
        return ec.generate_private_key(_CURVES[spec]())
    if family == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return _MLDSA[spec]()


def outside_sign(private: Any, algorithm: str, message: bytes) -> bytes:
    if algorithm == PH:  # libsodium's Ed25519ph with the same 32-byte seed
        _, secret = sodium.crypto_sign_seed_keypair(private.private_bytes_raw())
        state = sodium.crypto_sign_ed25519ph_state()
        sodium.crypto_sign_ed25519ph_update(state, message)
        return bytes(sodium.crypto_sign_ed25519ph_final_create(state, secret))
    if isinstance(private, rsa.RSAPrivateKey):
        return private.sign(message, _rsa_padding(algorithm), _hash(algorithm))
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return private.sign(message, ec.ECDSA(_hash(algorithm)))
    return bytes(private.sign(message))  # Ed25519, ML-DSA


def outside_verify(public: Any, algorithm: str, message: bytes, signature: bytes) -> None:
    """Raises InvalidSignature unless ``signature`` is valid (``public`` from GetPublicKey)."""
    if algorithm == PH:
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        state = sodium.crypto_sign_ed25519ph_state()
        sodium.crypto_sign_ed25519ph_update(state, message)
        try:
            sodium.crypto_sign_ed25519ph_final_verify(state, signature, raw)
        except Exception as exc:  # PyNaCl's BadSignatureError
            raise InvalidSignature(str(exc)) from exc
    elif isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, message, _rsa_padding(algorithm), _hash(algorithm))
    elif isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, message, ec.ECDSA(_hash(algorithm)))
    else:  # Ed25519, ML-DSA
        public.verify(signature, message)


def kms_message(public: Any, algorithm: str, message: bytes, n: int) -> tuple[bytes, str]:
    """What to send KMS for ``message``: (Message, MessageType); the mix of MIX."""
    if algorithm == PH:
        return hashlib.sha512(message).digest(), "DIGEST"
    if algorithm == "ED25519_SHA_512" or n % MIX != MIX - 1:
        return message, "RAW"
    if algorithm == "ML_DSA_SHAKE_256":  # μ computed outside (FIPS 204), signed inside
        hasher = mldsa.MLDSAMuHasher(public)
        hasher.update(message)
        return bytes(hasher.finalize()), "EXTERNAL_MU"
    digest = hashes.Hash(_hash(algorithm))
    digest.update(message)
    return digest.finalize(), "DIGEST"


@dataclass
class SignKey:
    """One SIGN_VERIFY key spec's two KMS keys: ``inside`` (made by KMS; signs) and ``imported``
    (Origin EXTERNAL, holding ``private``'s material; verifies what ``private`` signs)."""

    spec: str
    inside: str
    public: Any  # the inside key's GetPublicKey, loaded by cryptography
    imported: str | None = None
    private: Any = None


def _wrap(public_der: bytes, material: bytes) -> bytes:
    """RSA_AES_KEY_WRAP_SHA_256 of ``material`` for GetParametersForImport's public key."""
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    aes = os.urandom(32)
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    return public.encrypt(aes, oaep) + keywrap.aes_key_wrap_with_padding(aes, material)


def make_sign_key(kms: Any, spec: str) -> SignKey:
    inside = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    spki = kms.get_public_key(KeyId=inside)["PublicKey"]
    key = SignKey(spec, inside, serialization.load_der_public_key(spki))
    if SPECS[spec].family == "mldsa":  # Strongroom does not import ML-DSA material (issue 4)
        return key
    key.private = new_private(spec)
    der = key.private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    made = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY", Origin="EXTERNAL")
    key.imported = made["KeyMetadata"]["Arn"]
    params = kms.get_parameters_for_import(
        KeyId=key.imported, WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256", WrappingKeySpec="RSA_4096"
    )
    kms.import_key_material(
        KeyId=key.imported, ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=_wrap(params["PublicKey"], der),
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE",
    )  # fmt: skip
    theirs = kms.get_public_key(KeyId=key.imported)["PublicKey"]
    mine = key.private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expect(theirs == mine, f"{spec}: the imported key's public key differs")
    return key


def _message(seed: int, row: str, n: int) -> tuple[bytes, random.Random]:
    rng = random.Random(f"{seed}:{row}:{n}")
    return rng.randbytes(rng.randint(1, 4096)), rng


def _sign_inside(key: SignKey, algorithm: str, seed: int, n: int, negative: bool, kms: Any) -> None:
    """KMS signs; ``cryptography`` (libsodium for Ed25519ph) verifies with GetPublicKey."""
    message, rng = _message(seed, f"in {key.spec} {algorithm} {negative}", n)
    body, kind = kms_message(key.public, algorithm, message, n)
    out = kms.sign(KeyId=key.inside, Message=body, MessageType=kind, SigningAlgorithm=algorithm)
    expect(out["KeyId"] == key.inside and out["SigningAlgorithm"] == algorithm, "Sign answer")
    if not negative:
        outside_verify(key.public, algorithm, message, out["Signature"])
        return
    try:
        outside_verify(key.public, algorithm, message, flip(out["Signature"], rng))
    except InvalidSignature:
        return
    raise Mismatch("a signature with a flipped bit verified outside")


def _sign_outside(
    key: SignKey, algorithm: str, seed: int, n: int, negative: bool, kms: Any
) -> None:
    """``cryptography`` (libsodium for Ed25519ph) signs with the imported material; KMS verifies."""
    message, rng = _message(seed, f"out {key.spec} {algorithm} {negative}", n)
    signature = outside_sign(key.private, algorithm, message)
    body, kind = kms_message(key.public, algorithm, message, n)
    args = {"KeyId": key.imported, "Message": body, "MessageType": kind,
            "SigningAlgorithm": algorithm}  # fmt: skip
    if not negative:
        out = kms.verify(Signature=signature, **args)
        expect(out["SignatureValid"] is True and out["KeyId"] == key.imported, "Verify answer")
        return
    try:
        kms.verify(Signature=flip(signature, rng), **args)
    except ClientError as exc:
        expect(error_code(exc) == "KMSInvalidSignatureException", f"Verify: {error_code(exc)}")
        return
    raise Mismatch("KMS verified a signature with a flipped bit")


def sign_cases(keys: Sequence[SignKey], pairs: int, seed: int) -> list[Case]:
    """``pairs`` per (spec, algorithm) and direction, round robin; a negative per NEGATIVE_EVERY."""
    cases: list[Case] = []
    for n, key in itertools.product(range(pairs), keys):
        negative = n % NEGATIVE_EVERY == NEGATIVE_EVERY - 1
        for algorithm in SPECS[key.spec].usages["SIGN_VERIFY"]:
            name = f"{key.spec} {algorithm}"
            cases.append((f"in->out {name}", partial(_sign_inside, key, algorithm, seed, n, False)))
            if negative:
                check = partial(_sign_inside, key, algorithm, seed, n, True)
                cases.append(("in->out negatives (bit flip refused outside)", check))
            if key.imported is None:
                continue
            check = partial(_sign_outside, key, algorithm, seed, n, False)
            cases.append((f"out->in {name}", check))
            if negative:
                check = partial(_sign_outside, key, algorithm, seed, n, True)
                cases.append(("out->in negatives (bit flip: KMSInvalidSignature)", check))
    return cases


# ---- RSA-OAEP: encrypted outside with GetPublicKey, decrypted inside ------------------------


def _oaep(
    key: str, public: rsa.RSAPublicKey, algorithm: str, seed: int, n: int, negative: bool, kms: Any
) -> None:
    limit = oaep_plaintext_limit(public.key_size, algorithm)
    rng = random.Random(f"{seed}:oaep:{key}:{algorithm}:{n}:{negative}")
    size = (1, limit)[n] if n < 2 else rng.randint(1, limit)  # 1 B and the limit come first
    plain = rng.randbytes(size)
    algo = hashes.SHA1() if algorithm.endswith("SHA_1") else hashes.SHA256()  # noqa: S303
    blob = public.encrypt(plain, padding.OAEP(padding.MGF1(algo), algo, None))
    if negative:
        try:
            kms.decrypt(KeyId=key, CiphertextBlob=flip(blob, rng), EncryptionAlgorithm=algorithm)
        except ClientError as exc:
            expect(error_code(exc) == "InvalidCiphertextException", f"Decrypt: {error_code(exc)}")
            return
        raise Mismatch("KMS decrypted a ciphertext with a flipped bit")
    out = kms.decrypt(KeyId=key, CiphertextBlob=blob, EncryptionAlgorithm=algorithm)
    expect(out["Plaintext"] == plain, f"Decrypt of {size} bytes gave other bytes")
    expect(out["KeyId"] == key and out["EncryptionAlgorithm"] == algorithm, "Decrypt answer")


def oaep_cases(kms: Any, count: int, seed: int) -> list[Case]:
    """``count`` outside encryptions per (spec, algorithm), round robin; a negative (a bit
    flipped in the ciphertext: InvalidCiphertextException) per NEGATIVE_EVERY."""
    targets = []
    for spec in OAEP_SPECS:
        key = kms.create_key(KeySpec=spec, KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["Arn"]
        public = serialization.load_der_public_key(kms.get_public_key(KeyId=key)["PublicKey"])
        assert isinstance(public, rsa.RSAPublicKey)
        targets += [(spec, key, public, algorithm) for algorithm in OAEP_ALGORITHMS]
    cases: list[Case] = []
    for n, (spec, key, public, algorithm) in itertools.product(range(count), targets):
        cases.append(
            (f"OAEP {spec} {algorithm}", partial(_oaep, key, public, algorithm, seed, n, False))
        )
        if n % NEGATIVE_EVERY == NEGATIVE_EVERY - 1:
            check = partial(_oaep, key, public, algorithm, seed, n, True)
            cases.append(("OAEP negatives (bit flip: InvalidCiphertext)", check))
    return cases
