"""``strongroom hsm-cli key …`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from strongroom.hsm.cli_common import b64, key_pairs, read_data, resolve_one, state

__all__ = ["key"]

_WRAP_MECHS = click.Choice(["aes-key-wrap-pad", "aes-gcm", "rsa-oaep"])
_HASHES = click.Choice(["sha1", "sha224", "sha256", "sha384", "sha512"])


@click.group()
def key() -> None:
    """Generate, list, share and manage keys."""


@key.command("generate-symmetric")
@click.argument("key_type", type=click.Choice(["aes", "generic-secret"]))
@click.option("--label", default="")
@click.option("--key-length-bytes", type=int, required=True)
@click.option("--attributes", multiple=True, help="NAME=VALUE ...")
@click.option("--share-crypto-users", multiple=True)
@click.option("--session", is_flag=True, help="A session key (gone at logout).")
@click.pass_context
def generate_symmetric(
    ctx: click.Context,
    key_type: str,
    label: str,
    key_length_bytes: int,
    attributes: tuple[str, ...],
    share_crypto_users: tuple[str, ...],
    session: bool,
) -> dict[str, Any]:
    """Generate an AES key or generic secret."""
    info = state(ctx).client.generate_symmetric(
        key_type,
        key_length_bytes,
        label,
        key_pairs(attributes, "--attributes"),
        share_crypto_users,
        session,
    )
    return {"key": dict(info.raw)}


@key.command("generate-asymmetric-pair")
@click.argument("key_type", type=click.Choice(["rsa", "ec"]))
@click.option("--public-label", default="")
@click.option("--private-label", default="")
@click.option("--modulus-size-bits", type=int, default=2048)
@click.option("--public-exponent", type=int, default=65537)
@click.option("--curve", default="")
@click.option("--public-attributes", multiple=True)
@click.option("--private-attributes", multiple=True)
@click.option("--share-crypto-users", multiple=True)
@click.option("--session", is_flag=True)
@click.pass_context
def generate_pair(
    ctx: click.Context,
    key_type: str,
    public_label: str,
    private_label: str,
    modulus_size_bits: int,
    public_exponent: int,
    curve: str,
    public_attributes: tuple[str, ...],
    private_attributes: tuple[str, ...],
    share_crypto_users: tuple[str, ...],
    session: bool,
) -> dict[str, Any]:
    """Generate an RSA or EC key pair."""
    if key_type == "ec" and not curve:
        raise click.UsageError("--curve is required for ec")
    pub, priv = state(ctx).client.generate_key_pair(
        key_type,
        public_label,
        private_label,
        modulus_bits=modulus_size_bits,
        public_exponent=public_exponent,
        curve=curve,
        public_attributes=key_pairs(public_attributes, "--public-attributes"),
        private_attributes=key_pairs(private_attributes, "--private-attributes"),
        share_with=share_crypto_users,
        session=session,
    )
    return {"public_key": dict(pub.raw), "private_key": dict(priv.raw)}


@key.command("list")
@click.option("--filter", "filters", multiple=True)
@click.option("--verbose", is_flag=True)
@click.pass_context
def list_keys(ctx: click.Context, filters: tuple[str, ...], verbose: bool) -> dict[str, Any]:
    """List keys visible to the logged-in user."""
    found = state(ctx).client.find_keys(key_pairs(filters, "--filter"))
    shown = []
    for k in found:
        raw = dict(k.raw)
        if not verbose:
            raw = {
                "key-reference": raw["key-reference"],
                "attributes": {"label": k.attributes.get("label", "")},
            }
        shown.append(raw)
    return {"matched_keys": shown, "total_key_count": len(found), "returned_key_count": len(found)}


@key.command("delete")
@click.option("--filter", "filters", multiple=True)
@click.pass_context
def delete(ctx: click.Context, filters: tuple[str, ...]) -> dict[str, str]:
    """Delete the one key the filter matches (owner only)."""
    client = state(ctx).client
    client.delete_key(resolve_one(client, filters).ref)
    return {"message": "Key deleted successfully"}


def _share(ctx: click.Context, filters: tuple[str, ...], username: str, on: bool) -> dict[str, Any]:
    client = state(ctx).client
    ref = resolve_one(client, filters).ref
    info = client.share_key(ref, username) if on else client.unshare_key(ref, username)
    verb = "shared" if on else "unshared"
    return {"message": f"Key {verb} successfully", "key": dict(info.raw)}


@key.command("share")
@click.option("--filter", "filters", multiple=True)
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(["crypto-user"]), default="crypto-user")
@click.pass_context
def share(ctx: click.Context, filters: tuple[str, ...], username: str, role: str) -> Any:
    """Share a key with a crypto user."""
    return _share(ctx, filters, username, True)


@key.command("unshare")
@click.option("--filter", "filters", multiple=True)
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(["crypto-user"]), default="crypto-user")
@click.pass_context
def unshare(ctx: click.Context, filters: tuple[str, ...], username: str, role: str) -> Any:
    """Stop sharing a key with a crypto user."""
    return _share(ctx, filters, username, False)


@key.command("set-attribute")
@click.option("--filter", "filters", multiple=True)
@click.option("--name", required=True)
@click.option("--value", required=True)
@click.pass_context
def set_attribute(
    ctx: click.Context, filters: tuple[str, ...], name: str, value: str
) -> dict[str, Any]:
    """Change one attribute of a key."""
    client = state(ctx).client
    info = client.set_attribute(resolve_one(client, filters).ref, name, value)
    return {"message": "Attribute set successfully", "key": dict(info.raw)}


@key.command("wrap")
@click.argument("mechanism", type=_WRAP_MECHS)
@click.option("--payload-filter", multiple=True)
@click.option("--wrapping-filter", multiple=True)
@click.option("--hash-function", type=_HASHES, default="sha256")
@click.option("--path", type=click.Path(dir_okay=False), default=None)
@click.pass_context
def wrap(
    ctx: click.Context,
    mechanism: str,
    payload_filter: tuple[str, ...],
    wrapping_filter: tuple[str, ...],
    hash_function: str,
    path: str | None,
) -> Any:
    """Export a key encrypted under a wrapping key."""
    client = state(ctx).client
    payload = resolve_one(client, payload_filter, "--payload-filter")
    wrapping = resolve_one(client, wrapping_filter, "--wrapping-filter")
    data = client.wrap_key(payload.ref, wrapping.ref, mechanism, hash_function)
    out: dict[str, Any] = {
        "payload_key_reference": payload.raw["key-reference"],
        "wrapping_key_reference": wrapping.raw["key-reference"],
    }
    if path:
        Path(path).write_bytes(data)
        out["path"] = path
    else:
        out["wrapped_key_data"] = b64(data)
    return out


@key.command("unwrap")
@click.argument("mechanism", type=_WRAP_MECHS)
@click.option("--filter", "filters", multiple=True)
@click.option(
    "--key-type-class",
    required=True,
    type=click.Choice(["aes", "generic-secret", "rsa-private", "ec-private"]),
)
@click.option("--label", default="")
@click.option("--data", default=None)
@click.option("--data-path", default=None)
@click.option("--attributes", multiple=True)
@click.option("--hash-function", type=_HASHES, default="sha256")
@click.pass_context
def unwrap(
    ctx: click.Context,
    mechanism: str,
    filters: tuple[str, ...],
    key_type_class: str,
    label: str,
    data: str | None,
    data_path: str | None,
    attributes: tuple[str, ...],
    hash_function: str,
) -> dict[str, Any]:
    """Import a wrapped key under an unwrapping key."""
    client = state(ctx).client
    unwrapping = resolve_one(client, filters)
    key_type, _, private = key_type_class.partition("-")
    kind = ("private-key", key_type) if private else ("secret-key", key_type_class)
    info = client.unwrap_key(
        unwrapping.ref,
        read_data(data, data_path),
        kind[0],
        kind[1],
        label,
        mechanism,
        key_pairs(attributes, "--attributes"),
        hash_function,
    )
    return {"key": dict(info.raw)}


@key.command("generate-file")
@click.option("--encoding", type=click.Choice(["pem"]), default="pem")
@click.option("--path", type=click.Path(dir_okay=False), required=True)
@click.option("--filter", "filters", multiple=True)
@click.pass_context
def generate_file(
    ctx: click.Context, encoding: str, path: str, filters: tuple[str, ...]
) -> dict[str, str]:
    """Write a public key to a PEM file."""
    client = state(ctx).client
    Path(path).write_text(client.public_key_pem(resolve_one(client, filters).ref))
    return {"message": "Successfully generated key file"}
