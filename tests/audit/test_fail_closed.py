"""With the trail unwritable, calls fail with a 5xx and have no effect; the trail stays valid.

The service runs in process under uvicorn (a real HTTP server, called through boto3) so the
test can swap the trail's database engine for one that cannot connect.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import uvicorn
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from sqlalchemy import create_engine

from strongroom.api.http_protocol import EdgeProtocol
from strongroom.audit.store import TrailStore
from strongroom.audit.trail import Trail
from strongroom.audit.verify import verify_trail
from strongroom.bootstrap import ensure_admin
from strongroom.crypto.audit_sign import load_or_create_signer
from strongroom.server import Config, Runtime, build
from tests.conftest import free_port, read_credentials


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Runtime, Any]]:
    config = Config(data_dir=tmp_path / "data", port=free_port())
    runtime = build(config)
    ensure_admin(config.data_dir, runtime.identities, runtime.roles, config.account_id, "us-east-1")
    server = uvicorn.Server(
        uvicorn.Config(runtime.app, port=config.port, log_level="error", http=EdgeProtocol)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    akid, secret = read_credentials(config.data_dir)
    kms = boto3.client(
        "kms", endpoint_url=f"http://127.0.0.1:{config.port}", region_name="us-east-1",
        aws_access_key_id=akid, aws_secret_access_key=secret,
        config=BotoConfig(retries={"max_attempts": 1}),
    )  # fmt: skip
    try:
        yield runtime, kms
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()


def _status(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"][
        "HTTPStatusCode"
    ]


def test_unwritable_trail_refuses_calls_without_effect(
    live: tuple[Runtime, Any], tmp_path: Path
) -> None:
    runtime, kms = live
    assert isinstance(runtime.trail, Trail)  # in process: no writer process (serve has one)
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    keys_before = kms.list_keys()["Keys"]
    good = runtime.trail.store.engine
    runtime.trail.store.engine = create_engine(f"sqlite:///{tmp_path}/no/such/dir/trail.db")
    try:
        assert _status(kms.create_key) == ("ServiceUnavailableException", 503)
        assert _status(lambda: kms.schedule_key_deletion(KeyId=key)) == (
            "ServiceUnavailableException", 503,
        )  # fmt: skip
        assert _status(lambda: kms.encrypt(KeyId=key, Plaintext=b"x")) == (
            "ServiceUnavailableException", 503,
        )  # fmt: skip
    finally:
        runtime.trail.store.engine = good
    assert kms.list_keys()["Keys"] == keys_before  # no key was created
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"  # not scheduled
    store = TrailStore(good)
    report = verify_trail(store, load_or_create_signer(runtime.config.data_dir).verifier())
    assert report.ok, report
