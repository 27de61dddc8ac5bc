"""``strongroom hsm-cli crypto …`` commands."""

from __future__ import annotations

from typing import Any

import click

from strongroom.hsm.cli_common import b64, read_data, resolve_one, state
from strongroom.hsm.client import HsmClientError
from strongroom.hsm.errors import ErrorCode

__all__ = ["crypto"]

_HASHES = click.Choice(["sha1", "sha224", "sha256", "sha384", "sha512"])
_SIGN_MECHS = ("rsa-pkcs", "rsa-pkcs-pss", "ecdsa")
_CIPHER_MECHS = click.Choice(["aes-gcm", "aes-cbc-pad", "rsa-oaep"])


@click.group()
def crypto() -> None:
    """Encrypt, decrypt, sign, verify, MAC and hash on the HSM."""


def _key_options(fn: Any) -> Any:
    for opt in (
        click.option("--key-filter", "--filter", "filters", multiple=True),
        click.option("--hash-function", type=_HASHES, default="sha256"),
        click.option("--data", default=None, help="Base64 data."),
        click.option("--data-path", default=None, help="File with raw data."),
    ):
        fn = opt(fn)
    return fn


@crypto.command("sign")
@click.argument("mechanism", type=click.Choice(_SIGN_MECHS))
@_key_options
@click.pass_context
def sign(
    ctx: click.Context,
    mechanism: str,
    filters: tuple[str, ...],
    hash_function: str,
    data: str | None,
    data_path: str | None,
) -> dict[str, str]:
    """Sign data with a private key."""
    client = state(ctx).client
    key = resolve_one(client, filters, "--key-filter")
    sig = client.sign(key.ref, read_data(data, data_path), mechanism, hash_function)
    return {"key-reference": key.raw["key-reference"], "signature": b64(sig)}


@crypto.command("verify")
@click.argument("mechanism", type=click.Choice(_SIGN_MECHS))
@_key_options
@click.option("--signature", required=True, help="Base64 signature.")
@click.pass_context
def verify(
    ctx: click.Context,
    mechanism: str,
    filters: tuple[str, ...],
    hash_function: str,
    data: str | None,
    data_path: str | None,
    signature: str,
) -> str:
    """Verify a signature with a public key."""
    client = state(ctx).client
    key = resolve_one(client, filters, "--key-filter")
    sig = read_data(signature, None)
    if not client.verify(key.ref, read_data(data, data_path), sig, mechanism, hash_function):
        raise HsmClientError(ErrorCode.CRYPTO_FAILED, "Signature verification failed")
    return "Signature verified successfully"


@crypto.group("mac")
def mac() -> None:
    """Message authentication codes."""


@mac.command("hmac")
@_key_options
@click.option("--mac", "expected", default=None, help="Base64 MAC to verify instead.")
@click.pass_context
def hmac(
    ctx: click.Context,
    filters: tuple[str, ...],
    hash_function: str,
    data: str | None,
    data_path: str | None,
    expected: str | None,
) -> Any:
    """HMAC with a secret key (or check one with --mac)."""
    client = state(ctx).client
    key = resolve_one(client, filters, "--key-filter")
    payload = read_data(data, data_path)
    if expected is not None:
        if not client.hmac_verify(key.ref, payload, read_data(expected, None), hash_function):
            raise HsmClientError(ErrorCode.CRYPTO_FAILED, "MAC verification failed")
        return "MAC verified successfully"
    return {
        "key-reference": key.raw["key-reference"],
        "mac": b64(client.hmac(key.ref, payload, hash_function)),
    }


@crypto.command("encrypt")
@click.argument("mechanism", type=_CIPHER_MECHS)
@_key_options
@click.option("--aad", default="", help="Base64 additional authenticated data (aes-gcm).")
@click.pass_context
def encrypt(
    ctx: click.Context,
    mechanism: str,
    filters: tuple[str, ...],
    hash_function: str,
    data: str | None,
    data_path: str | None,
    aad: str,
) -> dict[str, str]:
    """Encrypt (aes-gcm output is IV || ciphertext || tag)."""
    client = state(ctx).client
    key = resolve_one(client, filters, "--key-filter")
    extra = read_data(aad, None) if aad else b""
    out = client.encrypt(key.ref, read_data(data, data_path), extra, mechanism, hash_function)
    return {"key-reference": key.raw["key-reference"], "ciphertext": b64(out)}


@crypto.command("decrypt")
@click.argument("mechanism", type=_CIPHER_MECHS)
@_key_options
@click.option("--aad", default="", help="Base64 additional authenticated data (aes-gcm).")
@click.pass_context
def decrypt(
    ctx: click.Context,
    mechanism: str,
    filters: tuple[str, ...],
    hash_function: str,
    data: str | None,
    data_path: str | None,
    aad: str,
) -> dict[str, str]:
    """Decrypt."""
    client = state(ctx).client
    key = resolve_one(client, filters, "--key-filter")
    extra = read_data(aad, None) if aad else b""
    out = client.decrypt(key.ref, read_data(data, data_path), extra, mechanism, hash_function)
    return {"key-reference": key.raw["key-reference"], "plaintext": b64(out)}


@crypto.command("digest")
@click.argument("hash_name", type=_HASHES)
@click.option("--data", default=None)
@click.option("--data-path", default=None)
@click.pass_context
def digest(
    ctx: click.Context, hash_name: str, data: str | None, data_path: str | None
) -> dict[str, str]:
    """Message digest."""
    return {"digest": b64(state(ctx).client.digest(hash_name, read_data(data, data_path)))}
