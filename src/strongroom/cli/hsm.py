"""CLI commands: hsm-node (run an HSM node) and hsm-cli (the HSM client)."""

from __future__ import annotations

import click

__all__ = ["register"]


def register(group: click.Group) -> None:
    """Attach this module's commands to the root group."""
    from strongroom.hsm.cli_node import hsm_node
    from strongroom.hsm.cli_tool import hsm_cli

    group.add_command(hsm_node)
    group.add_command(hsm_cli)
