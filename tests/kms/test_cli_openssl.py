"""Issue 4 the way AWS's guides do it: the aws CLI against a real ``serve``, OpenSSL outside.

* a signature from ``aws kms sign`` (RAW and DIGEST) verifies with ``openssl dgst`` and the
  public key from ``aws kms get-public-key``;
* data that ``openssl pkeyutl`` encrypts with that public key decrypts with ``aws kms decrypt``;
* key material wrapped by OpenSSL as AWS's import guide shows (RSAES_OAEP_SHA_1/SHA_256, and
  RSA_AES_KEY_WRAP_SHA_256 with ``openssl enc -id-aes256-wrap-pad``) imports with
  ``aws kms import-key-material``, and the HMAC key then gives OpenSSL's MAC of that material;
* rotation through the CLI.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_support import Cli, openssl
from tests.conftest import running_server

MESSAGE = b"Strongroom: a message signed by KMS and checked by OpenSSL\n" * 5


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    work = tmp_path_factory.mktemp("cli-openssl")
    with running_server(work / "data", "--scheduler-interval", "0.5") as srv:
        yield Cli(srv, work)


def _key(cli: Cli, *args: str) -> str:
    return str(cli.json("create-key", *args)["KeyMetadata"]["KeyId"])


def _public_key(cli: Cli, key_id: str, path: Path) -> Path:
    der = base64.b64decode(cli.text("get-public-key", "--key-id", key_id, "--query", "PublicKey"))
    path.write_bytes(der)
    return path


@pytest.mark.parametrize(
    ("spec", "algorithm", "digest", "sigopts"),
    [
        (
            "RSA_2048",
            "RSASSA_PSS_SHA_256",
            "sha256",
            ["rsa_padding_mode:pss", "rsa_pss_saltlen:32"],
        ),
        ("RSA_3072", "RSASSA_PKCS1_V1_5_SHA_384", "sha384", ["rsa_padding_mode:pkcs1"]),
        ("ECC_NIST_P256", "ECDSA_SHA_256", "sha256", []),
        ("ECC_NIST_P384", "ECDSA_SHA_384", "sha384", []),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256", "sha256", []),
    ],
)
@pytest.mark.parametrize("message_type", ["RAW", "DIGEST"])
def test_cli_signature_verifies_with_openssl(
    cli: Cli,
    tmp_path: Path,
    spec: str,
    algorithm: str,
    digest: str,
    sigopts: list[str],
    message_type: str,
) -> None:
    key_id = _key(cli, "--key-spec", spec, "--key-usage", "SIGN_VERIFY")
    pub = _public_key(cli, key_id, tmp_path / "pub.der")
    (tmp_path / "msg.bin").write_bytes(MESSAGE)
    signed = "msg.bin"
    if message_type == "DIGEST":  # what the caller hashed itself; KMS must not hash it again
        openssl("dgst", f"-{digest}", "-binary", "-out", "digest.bin", "msg.bin", cwd=tmp_path)
        signed = "digest.bin"
    signature = cli.text(
        "sign", "--key-id", key_id, "--message", f"fileb://{tmp_path / signed}",
        "--message-type", message_type, "--signing-algorithm", algorithm,
        "--query", "Signature",
    )  # fmt: skip
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(signature))
    options = [arg for opt in sigopts for arg in ("-sigopt", opt)]
    verify = ["dgst", f"-{digest}", "-verify", str(pub), "-keyform", "DER", *options]
    good = openssl(*verify, "-signature", "sig.bin", "msg.bin", cwd=tmp_path)
    assert b"Verified OK" in good.stdout
    (tmp_path / "other.bin").write_bytes(MESSAGE + b"!")
    bad = openssl(*verify, "-signature", "sig.bin", "other.bin", cwd=tmp_path, check=False)
    assert bad.returncode != 0 and b"Verified OK" not in bad.stdout
    # and KMS's Verify agrees on both
    valid = cli.json(
        "verify", "--key-id", key_id, "--message", f"fileb://{tmp_path / signed}",
        "--message-type", message_type, "--signing-algorithm", algorithm,
        "--signature", f"fileb://{tmp_path / 'sig.bin'}",
    )  # fmt: skip
    assert valid["SignatureValid"] is True and valid["SigningAlgorithm"] == algorithm
    refused = cli.run(
        "verify", "--key-id", key_id, "--message", f"fileb://{tmp_path / 'other.bin'}",
        "--signing-algorithm", algorithm, "--signature", f"fileb://{tmp_path / 'sig.bin'}",
        check=False,
    )  # fmt: skip
    assert refused.returncode in {254, 255}
    assert "KMSInvalidSignatureException" in refused.stderr


@pytest.mark.parametrize(
    ("algorithm", "md"), [("RSAES_OAEP_SHA_256", "sha256"), ("RSAES_OAEP_SHA_1", "sha1")]
)
def test_openssl_encryption_decrypts_with_cli(
    cli: Cli, tmp_path: Path, algorithm: str, md: str
) -> None:
    key_id = _key(cli, "--key-spec", "RSA_3072", "--key-usage", "ENCRYPT_DECRYPT")
    pub = _public_key(cli, key_id, tmp_path / "pub.der")
    plaintext = bytes(range(200))
    (tmp_path / "plain.bin").write_bytes(plaintext)
    openssl(
        "pkeyutl", "-encrypt", "-pubin", "-inkey", str(pub), "-keyform", "DER",
        "-in", "plain.bin", "-out", "ct.bin", "-pkeyopt", "rsa_padding_mode:oaep",
        "-pkeyopt", f"rsa_oaep_md:{md}", "-pkeyopt", f"rsa_mgf1_md:{md}",
        cwd=tmp_path,
    )  # fmt: skip
    out = cli.text(
        "decrypt", "--key-id", key_id, "--ciphertext-blob", f"fileb://{tmp_path / 'ct.bin'}",
        "--encryption-algorithm", algorithm, "--query", "Plaintext",
    )  # fmt: skip
    assert base64.b64decode(out) == plaintext
    other = "RSAES_OAEP_SHA_1" if algorithm == "RSAES_OAEP_SHA_256" else "RSAES_OAEP_SHA_256"
    wrong = cli.run(
        "decrypt", "--key-id", key_id, "--ciphertext-blob", f"fileb://{tmp_path / 'ct.bin'}",
        "--encryption-algorithm", other, check=False,
    )  # fmt: skip
    assert wrong.returncode in {254, 255}
    assert "InvalidCiphertextException" in wrong.stderr


def _wrap(tmp_path: Path, algorithm: str, material: Path, public: Path) -> Path:
    """Wrap ``material`` for import with OpenSSL, as AWS's import guide shows."""
    md = "sha1" if algorithm.endswith("SHA_1") else "sha256"
    oaep = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", f"rsa_oaep_md:{md}",
            "-pkeyopt", f"rsa_mgf1_md:{md}"]  # fmt: skip
    encrypt = ["pkeyutl", "-encrypt", "-pubin", "-inkey", str(public), "-keyform", "DER", *oaep]
    if algorithm.startswith("RSAES_OAEP"):
        openssl(*encrypt, "-in", str(material), "-out", "wrapped.bin", cwd=tmp_path)
        return tmp_path / "wrapped.bin"
    # RSA_AES_KEY_WRAP: a one-time AES key wraps the material (RFC 5649), RSA-OAEP wraps it
    openssl("rand", "-out", "aes.bin", "32", cwd=tmp_path)
    aes_hex = (tmp_path / "aes.bin").read_bytes().hex()
    openssl(
        "enc", "-id-aes256-wrap-pad", "-K", aes_hex, "-iv", "A65959A6",
        "-in", str(material), "-out", "material-wrapped.bin", cwd=tmp_path,
    )  # fmt: skip
    openssl(*encrypt, "-in", "aes.bin", "-out", "aes-wrapped.bin", cwd=tmp_path)
    wrapped = tmp_path / "wrapped.bin"
    wrapped.write_bytes(
        (tmp_path / "aes-wrapped.bin").read_bytes()
        + (tmp_path / "material-wrapped.bin").read_bytes()
    )
    return wrapped


@pytest.mark.parametrize(
    "algorithm", ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"]
)
def test_hmac_material_imported_with_openssl_matches_openssl_mac(
    cli: Cli, tmp_path: Path, algorithm: str
) -> None:
    key_id = _key(
        cli, "--origin", "EXTERNAL", "--key-spec", "HMAC_256", "--key-usage",
        "GENERATE_VERIFY_MAC",
    )  # fmt: skip
    state = cli.text("describe-key", "--key-id", key_id, "--query", "KeyMetadata.KeyState")
    assert state == "PendingImport"
    params = cli.json(
        "get-parameters-for-import", "--key-id", key_id, "--wrapping-algorithm", algorithm,
        "--wrapping-key-spec", "RSA_3072",
    )  # fmt: skip
    public = tmp_path / "wrapping.der"
    public.write_bytes(base64.b64decode(params["PublicKey"]))
    (tmp_path / "token.bin").write_bytes(base64.b64decode(params["ImportToken"]))
    openssl("rand", "-out", "material.bin", "32", cwd=tmp_path)
    wrapped = _wrap(tmp_path, algorithm, tmp_path / "material.bin", public)
    cli.run(
        "import-key-material", "--key-id", key_id,
        "--encrypted-key-material", f"fileb://{wrapped}",
        "--import-token", f"fileb://{tmp_path / 'token.bin'}",
        "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE",
    )  # fmt: skip
    state = cli.text("describe-key", "--key-id", key_id, "--query", "KeyMetadata.KeyState")
    assert state == "Enabled"
    (tmp_path / "msg.bin").write_bytes(MESSAGE)
    mac = cli.text(
        "generate-mac", "--key-id", key_id, "--message", f"fileb://{tmp_path / 'msg.bin'}",
        "--mac-algorithm", "HMAC_SHA_256", "--query", "Mac",
    )  # fmt: skip
    material_hex = (tmp_path / "material.bin").read_bytes().hex()
    expected = openssl(
        "dgst", "-sha256", "-mac", "HMAC", "-macopt", f"hexkey:{material_hex}", "-binary",
        "msg.bin", cwd=tmp_path,
    ).stdout  # fmt: skip
    assert base64.b64decode(mac) == expected
    # the same token cannot carry other material in; a fresh token for the same one can
    openssl("rand", "-out", "other.bin", "32", cwd=tmp_path)
    other = _wrap(tmp_path, algorithm, tmp_path / "other.bin", public)
    refused = cli.run(
        "import-key-material", "--key-id", key_id, "--encrypted-key-material", f"fileb://{other}",
        "--import-token", f"fileb://{tmp_path / 'token.bin'}",
        "--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE", check=False,
    )  # fmt: skip
    assert refused.returncode in {254, 255}
    assert "IncorrectKeyMaterialException" in refused.stderr


def test_rotation_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    key_id = _key(cli)
    (tmp_path / "p.bin").write_bytes(b"before the rotation")
    before = cli.text(
        "encrypt", "--key-id", key_id, "--plaintext", f"fileb://{tmp_path / 'p.bin'}",
        "--query", "CiphertextBlob",
    )  # fmt: skip
    (tmp_path / "old.bin").write_bytes(base64.b64decode(before))
    cli.run("enable-key-rotation", "--key-id", key_id, "--rotation-period-in-days", "90")
    status = cli.json("get-key-rotation-status", "--key-id", key_id)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 90
    assert "NextRotationDate" in status
    cli.run("rotate-key-on-demand", "--key-id", key_id)
    deadline = time.monotonic() + 20
    rotations: list[dict[str, object]] = []
    while time.monotonic() < deadline:  # the scheduler (every 0.5 s) does the rotation
        rotations = cli.json("list-key-rotations", "--key-id", key_id)["Rotations"]
        if rotations:
            break
        time.sleep(0.25)
    assert len(rotations) == 1, "no rotation listed within 20 s of RotateKeyOnDemand"
    assert rotations[0]["RotationType"] == "ON_DEMAND"
    old = cli.text(
        "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'old.bin'}", "--query", "Plaintext"
    )
    assert base64.b64decode(old) == b"before the rotation"
    refused = cli.run("enable-key-rotation", "--key-id", key_id, "--rotation-period-in-days",
                      "2561", check=False)  # fmt: skip
    assert refused.returncode in {254, 255}
    assert "ValidationException" in refused.stderr
