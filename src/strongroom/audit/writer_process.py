"""Starting, watching and stopping the trail writer process (:mod:`strongroom.audit.writer`).

``serve`` starts one before it accepts calls and stops it (by PID) after the last call was
answered. If it dies in between, calls fail closed (503) until the watchdog has started a new
one, which takes well under a second; the clients reconnect by themselves.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from strongroom.audit.writer import CONFIG_ENV
from strongroom.crypto import rng
from strongroom.files import replace_text

__all__ = ["WriterProcess"]

log = logging.getLogger("strongroom.audit")

PID_FILE = "audit-writer.pid"


class WriterProcess:
    """The trail writer of one ``serve``; :attr:`socket` is the address its clients use."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.data_dir = data_dir
        self.socket = f"strongroom-trail-{os.getpid()}-{rng.token_hex(8)}"
        self._env = {
            **os.environ,
            CONFIG_ENV: json.dumps(
                {
                    "data_dir": str(data_dir),
                    "database_url": database_url,
                    "socket": self.socket,
                    "parent": os.getpid(),
                }
            ),
        }
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    def start(self) -> None:
        """Start the process; :meth:`wait_ready` then waits for it to listen (in between,
        ``serve`` builds its runtime: the two start up side by side)."""
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "strongroom.audit.writer"],
            env=self._env,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        line = proc.stdout.readline()  # "ready" once it listens; empty if it died
        proc.stdout.close()
        if line.strip() != b"ready":
            proc.wait(timeout=10)
            raise RuntimeError(f"the audit trail writer did not start (exit {proc.returncode})")
        try:
            replace_text(self.data_dir / PID_FILE, f"{proc.pid}\n")
        except OSError as exc:  # the writer serves all the same; the file is for operators
            log.warning("cannot write %s: %s", PID_FILE, exc.strerror)
        if self._watchdog is None:
            self._watchdog = threading.Thread(
                target=self._watch, name="trail-watchdog", daemon=True
            )
            self._watchdog.start()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            if self._stopping.is_set():
                return
            log.error("the audit trail writer (pid %d) exited with %s; restarting it", proc.pid,
                      code)  # fmt: skip
            try:
                self.start()
                self.wait_ready()
            except (OSError, RuntimeError, subprocess.TimeoutExpired):
                log.exception("could not restart the audit trail writer; calls fail until it is")
                self._stopping.wait(1.0)

    def stop(self) -> None:
        """Stop the writer (SIGTERM, then SIGKILL after 10 s) by its PID."""
        self._stopping.set()
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        (self.data_dir / PID_FILE).unlink(missing_ok=True)
