"""The ``strongroom`` command's subcommands load on demand: the HSM client and node start
without the service (SQLAlchemy, botocore, the server), and every listed name resolves."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from strongroom.cli import COMMANDS, main
from tests.conftest import STRONGROOM

HEAVY = ("sqlalchemy", "botocore", "uvicorn", "strongroom.server", "strongroom.kms.service")


def _loaded_after(command: str) -> set[str]:
    """The heavy modules a fresh interpreter holds after resolving ``command``."""
    code = (
        "import json, sys\n"
        "from strongroom.cli import main\n"
        f"main.get_command(None, {command!r})\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(proc.stdout))


@pytest.mark.parametrize("command", ["hsm-cli", "hsm-node"])
def test_hsm_commands_start_without_the_service(command: str) -> None:
    assert _loaded_after(command) == set()


def test_serve_still_loads_the_service() -> None:
    # the check above would pass vacuously if the heavy names were wrong
    assert _loaded_after("serve") >= {"sqlalchemy", "strongroom.server"}


def test_every_listed_command_resolves_under_its_own_name() -> None:
    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
    assert main.get_command(ctx, "no-such-command") is None


def test_the_installed_command_lists_and_runs_them() -> None:
    out = subprocess.run(
        [STRONGROOM, "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert all(f"  {name} " in out for name in COMMANDS), out
    bad = subprocess.run(
        [STRONGROOM, "no-such-command"], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2 and "No such command" in bad.stderr
    node = subprocess.run(
        [STRONGROOM, "hsm-node", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert node.returncode == 0 and "Usage: strongroom hsm-node" in node.stdout
