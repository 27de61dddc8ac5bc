"""``serve`` appends to the trail through its writer process: calls fail closed while that
process is gone, the watchdog replaces it, and the trail stays one valid chain throughout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from strongroom.audit.writer import WRITER_NICE
from tests.audit.conftest import audit_cli
from tests.conftest import running_server


def _writer_pid(data: Path) -> int:
    return int((data / "audit-writer.pid").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_killed_writer_fails_calls_closed_then_is_replaced(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data, "--workers", "2") as server:
        kms = server.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        keys_before = kms.list_keys()["Keys"]
        first = _writer_pid(data)
        pid_inode = (data / "audit-writer.pid").stat().st_ino
        os.kill(first, signal.SIGKILL)
        # the replacement needs a new interpreter (hundreds of ms); calls until then fail
        with pytest.raises(ClientError) as info:
            kms.create_key()
        assert info.value.response["Error"]["Code"] == "ServiceUnavailableException"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        deadline = time.monotonic() + 20
        while True:
            try:
                kms.encrypt(KeyId=key, Plaintext=b"after the restart")
                break
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ServiceUnavailableException"
                assert time.monotonic() < deadline, "the trail writer was not replaced"
                time.sleep(0.2)
        second = _writer_pid(data)
        assert second != first and _alive(second)
        # the new PID was renamed over the old file, never written into it: a reader polling
        # for the replacement cannot catch the file empty
        assert (data / "audit-writer.pid").stat().st_ino != pid_inode
        assert not list(data.glob("audit-writer.pid.*"))
        assert kms.list_keys()["Keys"] == keys_before  # the refused CreateKey had no effect
        server.stop()
        assert not _alive(second)  # serve stops its writer (by PID) when it stops
        assert not (data / "audit-writer.pid").exists()
    proc = audit_cli(data, "verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_writer_exits_when_serve_is_killed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data) as server:
        server.client().list_keys()
        writer = _writer_pid(data)
        server.stop(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(writer) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(writer):  # do not leave it behind if the assertion fails
            os.kill(writer, signal.SIGKILL)
            pytest.fail("the trail writer outlived its serve")


def _nice(pid: int, tid: int) -> int:
    """A thread's niceness, from /proc (field 19 of its stat line)."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


def _may_raise_priority() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import os; os.setpriority(os.PRIO_PROCESS, 0, -10)"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def test_writer_commits_at_a_raised_priority_and_ingests_at_serves(tmp_path: Path) -> None:
    if not Path("/proc/self/task").is_dir():
        pytest.skip("needs /proc to read thread priorities")
    data = tmp_path / "data"
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with running_server(data) as server:
        kms = server.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        writer = _writer_pid(data)
        deadline = time.monotonic() + 10
        threads: list[int] = []
        while len(threads) < 2 and time.monotonic() < deadline:  # the ingestion thread starts
            kms.encrypt(KeyId=key, Plaintext=b"x")  # with the first ingestion
            time.sleep(0.3)
            threads = sorted(int(t) for t in os.listdir(f"/proc/{writer}/task"))
        assert len(threads) >= 2, "the writer never started its ingestion thread"
        expected = min(base, WRITER_NICE) if _may_raise_priority() else base
        assert _nice(writer, writer) == expected  # the thread that commits and acknowledges
        for tid in threads:
            if tid != writer:
                assert _nice(writer, tid) == base  # background ingestion: not raised
