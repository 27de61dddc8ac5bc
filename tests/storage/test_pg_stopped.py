"""A PostgreSQL that is stopped but still reachable (reliability figure A3, a blocked remote
sink): its processes are suspended with SIGSTOP, so the kernel still acknowledges serve's
packets and keepalives and no TCP timeout fires. Calls must fail closed with 503 once the
client-side deadline of a round trip passes (``STRONGROOM_PG_STATEMENT_DEADLINE``, 3 s here),
instead of waiting for ever with the worker's event loop, and serve must answer again by
itself once PostgreSQL runs again.

PostgreSQL is a cluster of the test's own (``scripts/pg_kill.py``'s, on a free port), never the
shared server; its postmaster and backends are stopped and continued by PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from strongroom.storage.pg_deadline import DEADLINE_ENV
from tests.conftest import running_server
from tests.memscan import descendants
from tests.storage.conftest import SCRIPTS, no_postgres_server

sys.path.insert(0, str(SCRIPTS))

from pg_kill import own_cluster

_MISSING = no_postgres_server("initdb", "postgres", "pg_isready")


def _client(endpoint: str, akid: str, secret: str) -> Any:
    return boto3.client(
        "kms", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=akid, aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1}, read_timeout=60),
    )  # fmt: skip


def _unavailable(call: Any, **params: Any) -> float:
    """Seconds until ``call`` answered 503 ServiceUnavailableException."""
    began = time.monotonic()
    with pytest.raises(ClientError) as info:
        call(**params)
    error = info.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503, error
    assert error["Error"]["Code"] == "ServiceUnavailableException", error
    return time.monotonic() - began


@pytest.mark.skipif(
    _MISSING is not None,
    reason=f"no PostgreSQL server binaries to run a cluster of the test's own: {_MISSING}",
)
def test_a_stopped_postgresql_fails_calls_closed_within_the_deadline_and_heals(
    tmp_path: Path,
) -> None:
    # under /tmp, traversable by the postgres user the cluster runs as when the test is root
    with tempfile.TemporaryDirectory(prefix="sr-pg-stopped-") as tmp:
        os.chmod(tmp, 0o711)
        _stop_and_continue(Path(tmp) / "pg", tmp_path / "data")


def _stop_and_continue(pg_root: Path, data: Path) -> None:
    with own_cluster(pg_root, []) as cluster:
        assert cluster.proc is not None
        with running_server(data, "--database-url", cluster.url, env={DEADLINE_ENV: "3"}) as server:
            assert server.proc is not None
            children = descendants(server.proc.pid)
            kms = _client(server.endpoint, *server.credentials())
            key = kms.create_key()["KeyMetadata"]["KeyId"]
            kms.encrypt(KeyId=key, Plaintext=b"before")
            # the postmaster and every backend (each in a session of its own), by PID
            stopped = [cluster.proc.pid, *descendants(cluster.proc.pid)]
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
            try:
                took_create = _unavailable(kms.create_key, Description="while stopped")
                took_encrypt = _unavailable(kms.encrypt, KeyId=key, Plaintext=b"while stopped")
                took_list = _unavailable(kms.list_keys)
            finally:
                for pid in stopped:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
            # each waited for a deadline or two (the trail's and the store's), not for ever
            for took in (took_create, took_encrypt, took_list):
                assert took < 30, (took_create, took_encrypt, took_list)
            deadline = time.monotonic() + 60
            while True:  # serve answers again by itself
                try:
                    blob = kms.encrypt(KeyId=key, Plaintext=b"after")["CiphertextBlob"]
                    break
                except ClientError as exc:
                    assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 503
                    assert time.monotonic() < deadline, "serve did not recover"
                    time.sleep(0.5)
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"after"
            # the CreateKey refused while PostgreSQL was stopped had no effect
            assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key]
            log = server.log()
            assert "gave no answer within 3 s" in log, log[-3000:]
            assert "unanswered request" not in log and "internal error" not in log, log[-3000:]
            print(f"503 after {took_create:.1f} / {took_encrypt:.1f} / {took_list:.1f} s")
        for pid in children:  # left behind only if serve could not stop it: by PID
            with contextlib.suppress(OSError):
                if b"strongroom" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
