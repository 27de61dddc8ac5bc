"""``GET /metrics`` on each HSM node: CloudHSM's CloudWatch metrics, in Prometheus text format.

The node listens on a second, plain-HTTP port of its own address (``hsm-node --metrics-port``;
the control plane uses the node port + 1, i.e. 2224 on the HSM's ENI IP). Metric names and
meanings are CloudWatch's (namespace ``AWS/CloudHSM``, cloudhsm.md §5.2); the only label is
``hsm_id`` (one value per node), so nothing unbounded and nothing secret is exposed:

* ``HsmUnhealthy``: 0 while the node answers (the control plane reports 1 for a node that does
  not; see :mod:`strongroom.monitoring.hsm_health`);
* ``HsmKeysSessionOccupied`` / ``HsmKeysTokenOccupied``: session keys / token keys held;
* ``HsmSessionCount``: open connections to the node;
* ``HsmUsersAvailable`` / ``HsmUsersMax``: users that can still be created / the user limit of
  the node's HSM type (:mod:`strongroom.hsm.hsm_types`);
* ``InterfaceEth2OctetsInput`` / ``InterfaceEth2OctetsOutput``: bytes received / sent on the
  node's port since the node started (cumulative, as CloudWatch reports them).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strongroom.hsm.server import NodeServer

__all__ = ["render_node_metrics", "start_metrics_listener"]

_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_HELP = {
    "HsmUnhealthy": "1 if the HSM is not performing properly (0 while this node answers)",
    "HsmKeysSessionOccupied": "Session keys in use on the HSM",
    "HsmKeysTokenOccupied": "Token keys on the HSM",
    "HsmSessionCount": "Open connections to the HSM",
    "HsmUsersAvailable": "Users that can still be created (HsmUsersMax minus users)",
    "HsmUsersMax": "Maximum number of users on the HSM",
    "InterfaceEth2OctetsInput": "Bytes received by the HSM to date",
    "InterfaceEth2OctetsOutput": "Bytes sent by the HSM to date",
}


def _values(server: NodeServer) -> dict[str, float]:
    node = server.node
    keys = node.keys.all()
    session_keys = sum(1 for k in keys if k.session)
    users = len(node.users.records())
    return {
        "HsmUnhealthy": 0,
        "HsmKeysSessionOccupied": session_keys,
        "HsmKeysTokenOccupied": len(keys) - session_keys,
        "HsmSessionCount": len(server.connections),
        "HsmUsersAvailable": max(0, node.limits.users - users),
        "HsmUsersMax": node.limits.users,
        "InterfaceEth2OctetsInput": server.octets_in,
        "InterfaceEth2OctetsOutput": server.octets_out,
    }


def render_node_metrics(server: NodeServer) -> bytes:
    """The Prometheus text of one node's metrics."""
    hsm_id = server.node.state.hsm_id
    lines: list[str] = []
    for name, value in _values(server).items():
        kind = "counter" if name.startswith("Interface") else "gauge"
        lines += [
            f"# HELP {name} {_HELP[name]}",
            f"# TYPE {name} {kind}",
            f'{name}{{hsm_id="{hsm_id}"}} {float(value)}',
        ]
    return ("\n".join(lines) + "\n").encode()


async def _handle(
    server: NodeServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        request_line = head.split(b"\r\n", 1)[0].split()
        if request_line[:2] == [b"GET", b"/metrics"]:
            status, body, ctype = "200 OK", render_node_metrics(server), _CONTENT_TYPE
        else:
            status, body, ctype = "404 Not Found", b"not found\n", "text/plain"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def start_metrics_listener(server: NodeServer, host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` on ``host:port`` (plain HTTP, no request bodies)."""
    return await asyncio.start_server(
        lambda r, w: _handle(server, r, w), host, port, limit=8192, reuse_address=True
    )
