"""The ``strongroom`` command line.

A subcommand's module is imported only when that subcommand runs: ``serve``, ``audit``,
``iam`` and ``status`` bring in SQLAlchemy, botocore and the whole service (~0.8 s on the
2-CPU VM), which ``hsm-cli`` and ``hsm-node`` (every HSM node process starts through it) do
not need. ``strongroom --help`` still imports them all, for their one-line summaries.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

__all__ = ["DATABASE_URL_OPTION", "DATA_DIR_OPTION", "main"]

#: ``--data-dir``, as every command that reads or writes a data directory takes it
DATA_DIR_OPTION = click.option(
    "--data-dir",
    default="./.strongroom",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="STRONGROOM_DATA_DIR",
)
#: ``--database-url``: PostgreSQL instead of the data directory's SQLite files
DATABASE_URL_OPTION = click.option("--database-url", default=None, envvar="STRONGROOM_DATABASE_URL")

#: subcommand name -> (module, attribute) of its click command
COMMANDS = {
    "audit": ("strongroom.cli.audit", "audit"),
    "backup": ("strongroom.cli.backup", "backup"),
    "hsm-cli": ("strongroom.hsm.cli_tool", "hsm_cli"),
    "hsm-node": ("strongroom.hsm.cli_node", "hsm_node"),
    "iam": ("strongroom.cli.iam", "iam"),
    "restore": ("strongroom.cli.backup", "restore"),
    "serve": ("strongroom.cli.serve", "serve"),
    "status": ("strongroom.cli.status", "status"),
}


class _LazyGroup(click.Group):
    """A group whose commands are imported by name, on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        command = getattr(importlib.import_module(target[0]), target[1])
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
            raise TypeError(f"{target[0]}.{target[1]} is not a click command")
        return command


@click.group(cls=_LazyGroup)
@click.version_option(package_name="strongroom")
def main() -> None:
    """Strongroom: AWS KMS-compatible key management with its own HSM cluster."""
