"""``strongroom hsm-cli``: the CloudHSM-CLI-like client, interactive or one command at a time.

Every command prints ``{"error_code": 0, "data": …}``; failures print ``error_code`` 1 with a
message and exit non-zero. Single-command mode logs in from ``CLOUDHSM_ROLE`` and
``CLOUDHSM_PIN=username:password`` and logs out afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from typing import Any

import click

from strongroom.hsm.cli_common import CliState, b64, expand_variadic, state
from strongroom.hsm.cli_crypto import crypto
from strongroom.hsm.cli_discovery import cluster_nodes
from strongroom.hsm.cli_keys import key
from strongroom.hsm.client import HsmClientError

__all__ = ["commands", "hsm_cli", "run"]

_DISCOVERY_OPTIONS = ("--cluster-id", "--endpoint-url", "--region")
_CONNECTION_OPTIONS = ("--node", "--node-cert", "--trust-anchor", "--timeout", *_DISCOVERY_OPTIONS)
_NO_AUTO_LOGIN = {("cluster", "activate"), ("login",), ("logout",), ("interactive",)}
_ROLES = click.Choice(["admin", "crypto-user"])


@click.group()
def commands() -> None:
    """HSM commands."""


@commands.group()
def cluster() -> None:
    """Cluster activation and HSM information."""


@cluster.command("activate")
@click.option("--password", required=True)
@click.pass_context
def activate(ctx: click.Context, password: str) -> str:
    """Set the admin password of a fresh cluster (as the unactivated admin)."""
    state(ctx).client.activate(password)
    return "Cluster activation successful"


@cluster.command("hsm-info")
@click.pass_context
def hsm_info(ctx: click.Context) -> dict[str, Any]:
    """Public facts about the HSM."""
    return {"hsms": [state(ctx).client.hsm_info()]}


@commands.command("login")
@click.option("--username", required=True)
@click.option("--role", type=_ROLES, required=True)
@click.option("--password", default=None, help="Prompted for if omitted.")
@click.pass_context
def login(ctx: click.Context, username: str, role: str, password: str | None) -> dict[str, str]:
    """Log in (interactive mode)."""
    if password is None:
        password = click.prompt("Enter password", hide_input=True, err=True)
    state(ctx).client.login(username, password, role)
    return {"username": username.lower(), "role": role}


@commands.command("logout")
@click.pass_context
def logout(ctx: click.Context) -> str:
    """Log out."""
    state(ctx).client.logout()
    return "Logout successful"


@commands.group()
def user() -> None:
    """Manage HSM users."""


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> dict[str, Any]:
    """List users."""
    return {"users": state(ctx).client.list_users()}


@user.command("create")
@click.option("--username", required=True)
@click.option("--role", type=_ROLES, required=True)
@click.option("--password", required=True)
@click.pass_context
def user_create(ctx: click.Context, username: str, role: str, password: str) -> dict[str, str]:
    """Create a user (admin)."""
    state(ctx).client.create_user(username, role, password)
    return {"username": username.lower(), "role": role}


@user.command("delete")
@click.option("--username", required=True)
@click.option("--role", type=_ROLES, required=True)
@click.pass_context
def user_delete(ctx: click.Context, username: str, role: str) -> dict[str, str]:
    """Delete a user (admin)."""
    state(ctx).client.delete_user(username, role)
    return {"username": username.lower(), "role": role}


@user.command("change-password")
@click.option("--username", required=True)
@click.option("--role", type=_ROLES, required=True)
@click.option("--password", required=True)
@click.pass_context
def user_change_password(
    ctx: click.Context, username: str, role: str, password: str
) -> dict[str, str]:
    """Change one's own password, or (admin) reset another user's; unlocks."""
    state(ctx).client.change_password(username, role, password)
    return {"username": username.lower(), "role": role}


@commands.command("random")
@click.option("--length", type=int, required=True)
@click.pass_context
def random_cmd(ctx: click.Context, length: int) -> dict[str, str]:
    """Random bytes from the HSM (base64)."""
    return {"random_data": b64(state(ctx).client.random(length))}


@commands.command("audit")
@click.option("--from-seq", type=int, default=0)
@click.option("--limit", type=int, default=1000)
@click.pass_context
def audit(ctx: click.Context, from_seq: int, limit: int) -> dict[str, Any]:
    """Read the HSM audit log (admin)."""
    records = state(ctx).client.audit(from_seq, limit)
    fields = (
        "seq",
        "reboot",
        "time_us",
        "session",
        "user",
        "user_type",
        "opcode",
        "response",
        "keys",
        "detail",
    )
    return {"records": [{f: getattr(r, f) for f in fields} for r in records]}


@commands.command("interactive")
@click.pass_context
def interactive(ctx: click.Context) -> None:
    """Read commands from standard input, one per line, until EOF or ``quit``."""
    st = state(ctx)
    st.interactive = True
    prompt = sys.stdin.isatty()
    while True:
        if prompt:
            click.echo("aws-cloudhsm > ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line or line.strip() in ("quit", "exit"):
            break
        if line.strip():
            _emit(*_invoke(st, shlex.split(line)))


commands.add_command(key)
commands.add_command(crypto)


def _invoke(st: CliState, argv: list[str]) -> tuple[int, Any]:
    try:
        data = commands.main(
            expand_variadic(argv), prog_name="hsm-cli", standalone_mode=False, obj=st
        )
    except HsmClientError as exc:
        return 1, exc.message
    except click.exceptions.Exit as exc:
        return exc.exit_code, None
    except click.ClickException as exc:
        return 1, exc.format_message()
    except (OSError, ValueError) as exc:
        return 1, str(exc)
    return 0, data


def _emit(code: int, data: Any) -> None:
    if data is None and code == 0:
        return
    click.echo(json.dumps({"error_code": 0 if code == 0 else 1, "data": data}))


def _split_connection(argv: list[str]) -> tuple[CliState, list[str]]:
    st = CliState(nodes=[])
    found: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i] in _CONNECTION_OPTIONS:
        if i + 1 >= len(argv):
            raise click.UsageError(f"{argv[i]} needs a value")
        opt, value = argv[i], argv[i + 1]
        if opt in _DISCOVERY_OPTIONS:
            found[opt] = value
        elif opt == "--node":
            st.nodes.append(value)
        elif opt == "--node-cert":
            st.node_cert = value
        elif opt == "--trust-anchor":
            st.trust_anchor = value
        else:
            st.timeout = float(value)
        i += 2
    if "--cluster-id" in found:
        st.nodes.extend(
            cluster_nodes(found["--cluster-id"], found.get("--endpoint-url"), found.get("--region"))
        )
    return st, argv[i:]


def _env_login(st: CliState, rest: list[str]) -> tuple[int, Any] | None:
    role, pin = os.environ.get("CLOUDHSM_ROLE"), os.environ.get("CLOUDHSM_PIN")
    if (
        not role
        or not pin
        or tuple(rest[:2]) in _NO_AUTO_LOGIN
        or tuple(rest[:1]) in _NO_AUTO_LOGIN
    ):
        return None
    username, sep, password = pin.partition(":")
    if not sep:
        return 1, "CLOUDHSM_PIN must be username:password"
    try:
        st.client.login(username, password, role)
    except HsmClientError as exc:
        return 1, exc.message
    except (click.ClickException, OSError, ValueError) as exc:
        return 1, str(exc)
    return None


def run(argv: list[str]) -> int:
    """Run ``hsm-cli`` with ``argv``; returns the exit status."""
    try:
        st, rest = _split_connection(argv)
    except (click.UsageError, ValueError) as exc:
        _emit(1, str(exc))
        return 2
    if not rest or rest[0] in ("--help", "-h"):
        click.echo(commands.get_help(click.Context(commands, info_name="hsm-cli")))
        return 0
    try:
        failed = _env_login(st, rest)
        code, data = failed if failed else _invoke(st, rest)
        _emit(code, data)
        if st.connected and st.client.aio.logged_in:
            with contextlib.suppress(HsmClientError, OSError):
                st.client.logout()
    finally:
        st.close()
    return code


@click.command(
    "hsm-cli",
    context_settings={
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
        "help_option_names": [],
    },
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def hsm_cli(argv: tuple[str, ...]) -> None:
    """CloudHSM-CLI-style client: [--node H:P ... | --cluster-id ID [--endpoint-url URL]
    [--region R]] [--node-cert F | --trust-anchor F] COMMAND."""
    sys.exit(run(list(argv)))
