"""Node supervisor: runs one ``strongroom hsm-node`` process per HSM, by PID.

Each HSM gets a data directory under ``<serve data dir>/hsms/<hsm id>`` and its own loopback
address (``127.x.y.z``, the HSM's "ENI IP") listening on CloudHSM's port 2223, so
DescribeClusters tells clients where every HSM is. Extra node options (fast Argon2 settings in
tests) come from ``STRONGROOM_HSM_NODE_ARGS``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from strongroom.files import replace_text

__all__ = ["NODE_ARGS_ENV", "NodeSupervisor"]

NODE_ARGS_ENV = "STRONGROOM_HSM_NODE_ARGS"


class NodeSupervisor:
    """Start, probe and stop node processes."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "hsms"
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def data_dir(self, hsm_id: str) -> Path:
        return self.root / hsm_id

    @staticmethod
    def address_free(ip: str, port: int) -> bool:
        """Whether ``port`` can be bound on ``ip`` now."""
        with socket.socket() as sock:
            try:
                sock.bind((ip, port))
            except OSError:
                return False
            return True

    @classmethod
    def free_address(cls, port: int, network: ipaddress.IPv4Network) -> str:
        """An unused address of ``network`` (a loopback range) on which ``port`` can be bound."""
        first = int(network.network_address) + 1
        last = int(network.broadcast_address) - 1
        for _ in range(200):
            ip = str(ipaddress.IPv4Address(random.randint(first, last)))
            if cls.address_free(ip, port):
                return ip
        raise RuntimeError(f"no free address in {network}")

    def start(self, hsm_id: str, az: str, ip: str, port: int, hsm_type: str) -> int:
        """Start (or restart) the node of ``hsm_id``, an HSM of ``hsm_type``; returns its
        PID."""
        directory = self.data_dir(hsm_id)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = [
            sys.executable,
            "-c",
            "from strongroom.cli import main; main()",
            "hsm-node",
            "--data-dir",
            str(directory),
            "--host",
            ip,
            "--port",
            str(port),
            "--az",
            az,
            "--hsm-id",
            hsm_id,
            "--hsm-type",
            hsm_type,
            "--metrics-port",  # GET /metrics (docs/monitoring.md)
            str(port + 1),
            *shlex.split(os.environ.get(NODE_ARGS_ENV, "")),
        ]
        log = open(directory / "node.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._procs[proc.pid] = proc
        replace_text(directory / "node.pid", str(proc.pid))
        return proc.pid

    def alive(self, pid: int) -> bool:
        """True while process ``pid`` runs (reaping it if it was ours and ended)."""
        if pid <= 0:
            return False
        proc = self._procs.get(pid)
        if proc is not None:
            return proc.poll() is None
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True

    @staticmethod
    def listening(ip: str, port: int) -> bool:
        with contextlib.suppress(OSError), socket.create_connection((ip, port), 0.2):
            return True
        return False

    def stop(self, pid: int, timeout: float = 10.0) -> None:
        """SIGTERM the node, SIGKILL it if it does not exit in time."""
        if not self.alive(pid):
            self._procs.pop(pid, None)
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.alive(pid):
            time.sleep(0.05)
        if self.alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        proc = self._procs.pop(pid, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)

    def stop_all(self) -> None:
        for pid in list(self._procs):
            self.stop(pid)

    def remove(self, hsm_id: str) -> None:
        """Delete an HSM's data directory (after its process stopped)."""
        shutil.rmtree(self.data_dir(hsm_id), ignore_errors=True)

    def appliance_pin(self, hsm_id: str) -> str:
        return (self.data_dir(hsm_id) / "appliance-user.pin").read_text().strip()

    def node_cert(self, hsm_id: str) -> Path:
        return self.data_dir(hsm_id) / "hsm-certificate.pem"
