"""CLI commands: serve."""

from __future__ import annotations

import click

__all__ = ["register"]


def register(group: click.Group) -> None:
    """Attach this module's commands to the root group."""
    del group
