"""``strongroom hsm-node``: run one HSM node process."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import click

from strongroom.crypto.self_test import SelfTestFailure, run_self_tests
from strongroom.hsm.audit import AuditCorrupt
from strongroom.hsm.hsm_types import DEFAULT_HSM_TYPE, HSM_TYPES
from strongroom.hsm.node import Node, NodeConfig
from strongroom.hsm.operations import build_registry
from strongroom.hsm.server import NodeServer
from strongroom.hsm.store import StoreTampered
from strongroom.hsm.users import Argon2Params

__all__ = ["hsm_node"]

EXIT_TAMPERED = 3
EXIT_SELF_TEST = 4


def _run(server: NodeServer) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(server.serve())
        return
    uvloop.run(server.serve())


@click.command("hsm-node")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--port", type=int, required=True, help="TCP port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--az", default="us-east-1a", show_default=True, help="Availability zone label.")
@click.option("--hsm-id", default=None, help="HSM id on first start (default: random).")
@click.option(
    "--session-timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Idle seconds before a login session expires.",
)
@click.option("--argon2-time-cost", type=int, default=2, show_default=True)
@click.option("--argon2-memory-kib", type=int, default=19456, show_default=True)
@click.option("--argon2-parallelism", type=int, default=1, show_default=True)
@click.option(
    "--hsm-type",
    type=click.Choice(sorted(HSM_TYPES)),
    default=DEFAULT_HSM_TYPE,
    show_default=True,
    help="The CloudHSM HSM type: how many users and keys the node holds at most.",
)
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--metrics-port", type=int, default=0, help="Serve GET /metrics on HOST:PORT (0: off)."
)
def hsm_node(
    data_dir: Path,
    port: int,
    host: str,
    az: str,
    hsm_id: str | None,
    session_timeout: float,
    argon2_time_cost: int,
    argon2_memory_kib: int,
    argon2_parallelism: int,
    hsm_type: str,
    log_level: str,
    metrics_port: int,
) -> None:
    """Run one HSM node: sealed store in DATA_DIR, TLS on HOST:PORT, audit always on."""
    logging.basicConfig(
        level=log_level.upper(),
        format='{"time":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s",'
        '"message":"%(message)s"}',
    )
    try:
        run_self_tests()
    except SelfTestFailure as exc:
        msg = {"error_code": 1, "data": f"cryptographic self-test failed: {exc}"}
        click.echo(json.dumps(msg), err=True)
        sys.exit(EXIT_SELF_TEST)
    data_dir.mkdir(parents=True, exist_ok=True)
    params = Argon2Params(argon2_time_cost, argon2_memory_kib, argon2_parallelism)
    config = NodeConfig(data_dir, az, hsm_id, session_timeout, params, hsm_type)
    try:
        node = Node(config, build_registry())
    except (StoreTampered, AuditCorrupt) as exc:
        msg = {"error_code": 1, "data": f"store integrity check failed: {exc}"}
        click.echo(json.dumps(msg), err=True)
        sys.exit(EXIT_TAMPERED)
    _run(NodeServer(node, host, port, metrics_port))
