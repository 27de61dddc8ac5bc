"""The ``strongroom`` command line."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group()
@click.version_option(package_name="strongroom")
def main() -> None:
    """Strongroom: AWS KMS-compatible key management with its own HSM cluster."""


def _register() -> None:
    from strongroom.cli import audit, hsm, iam, serve, status

    serve.register(main)
    iam.register(main)
    hsm.register(main)
    audit.register(main)
    status.register(main)


_register()
