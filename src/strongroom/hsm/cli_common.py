"""Shared pieces of ``strongroom hsm-cli``: the session state, filters, data arguments."""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from strongroom.hsm.client import HsmClient, HsmClientError, KeyInfo, client_ssl_context
from strongroom.hsm.errors import ErrorCode

__all__ = [
    "VARIADIC_OPTIONS",
    "CliState",
    "b64",
    "expand_variadic",
    "key_pairs",
    "read_data",
    "resolve_one",
    "state",
]

VARIADIC_OPTIONS = frozenset(
    {
        "--attributes",
        "--share-crypto-users",
        "--filter",
        "--key-filter",
        "--payload-filter",
        "--wrapping-filter",
        "--public-attributes",
        "--private-attributes",
    }
)


@dataclass
class CliState:
    """Connection settings and the (lazily opened) client, kept across interactive commands."""

    nodes: list[str]
    node_cert: str | None = None
    trust_anchor: str | None = None
    timeout: float = 30.0
    interactive: bool = False
    _client: HsmClient | None = field(default=None, repr=False)

    def ssl_context(self) -> ssl.SSLContext:
        """Trust settings from ``--node-cert`` or ``--trust-anchor``."""
        if not (self.node_cert or self.trust_anchor):
            raise click.UsageError("give --node-cert FILE or --trust-anchor FILE")
        if self.node_cert and self.trust_anchor:
            raise click.UsageError("give only one of --node-cert and --trust-anchor")
        return client_ssl_context(self.node_cert, self.trust_anchor)

    @property
    def connected(self) -> bool:
        """True once a client was opened."""
        return self._client is not None

    @property
    def client(self) -> HsmClient:
        """The client, connected on first use."""
        if self._client is None:
            if not self.nodes:
                raise click.UsageError("give at least one --node HOST:PORT")
            self._client = HsmClient(self.nodes, self.ssl_context(), timeout=self.timeout)
        return self._client

    def close(self) -> None:
        """Close connections."""
        if self._client is not None:
            self._client.close()
            self._client = None


def state(ctx: click.Context) -> CliState:
    """The :class:`CliState` of this invocation."""
    obj = ctx.find_object(CliState)
    assert obj is not None
    return obj


def expand_variadic(argv: list[str]) -> list[str]:
    """``--attributes a=1 b=2`` → ``--attributes a=1 --attributes b=2`` (CloudHSM CLI style)."""
    out: list[str] = []
    current: str | None = None
    for token in argv:
        if token.startswith("--"):
            current = token if token in VARIADIC_OPTIONS else None
            out.append(token)
        elif current is not None and out[-1] != current:
            out.extend([current, token])
        else:
            out.append(token)
    return out


def key_pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """``NAME=VALUE`` strings into a dict."""
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.UsageError(f"{what} must be NAME=VALUE, got {item!r}")
        out[name] = value.strip('"')
    return out


def resolve_one(client: HsmClient, filters: tuple[str, ...], what: str = "--filter") -> KeyInfo:
    """The single key that ``filters`` matches."""
    if not filters:
        raise click.UsageError(f"{what} is required")
    found = client.find_keys(key_pairs(filters, what))
    if not found:
        raise HsmClientError(ErrorCode.KEY_NOT_FOUND, "no key matches the filter")
    if len(found) > 1:
        raise HsmClientError(ErrorCode.INVALID_REQUEST, "the filter matches more than one key")
    return found[0]


def read_data(data: str | None, path: str | None) -> bytes:
    """``--data`` (base64) or ``--data-path`` (raw file)."""
    if (data is None) == (path is None):
        raise click.UsageError("give exactly one of --data (base64) and --data-path")
    if path is not None:
        return Path(path).read_bytes()
    try:
        return base64.b64decode(data or "", validate=True)
    except ValueError:
        raise click.UsageError("--data must be base64") from None


def b64(data: bytes) -> str:
    """Base64 text."""
    return base64.b64encode(data).decode()


def describe_keys(keys: list[KeyInfo]) -> list[dict[str, Any]]:
    """CloudHSM CLI JSON for keys."""
    return [dict(k.raw) for k in keys]
