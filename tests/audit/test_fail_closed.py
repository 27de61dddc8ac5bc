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


def _break_trail_after(runtime: Runtime, operation: str, broken_url: str, restore_after: float
                       ) -> Any:  # fmt: skip
    """Make the trail unwritable right after ``operation`` ran (its intent entry durable, its
    outcome not yet), and writable again ``restore_after`` seconds later: the fault of a trail
    writer that dies mid-call, which a test cannot time from outside."""
    assert isinstance(runtime.trail, Trail)
    trail, good = runtime.trail, runtime.trail.store.engine
    service = runtime.app._services["TrentService"]
    real = service.call

    def restore() -> None:
        trail.store.engine = good

    def call(op: str, *args: Any) -> Any:
        result = real(op, *args)
        if op == operation:
            trail.store.engine = create_engine(broken_url)
            threading.Timer(restore_after, restore).start()
        return result

    object.__setattr__(service, "call", call)
    return real


def _once(runtime: Runtime, kms: Any) -> Any:
    """A client that makes one attempt (botocore's legacy ``max_attempts: 1`` retries a 503
    once, which would hide what the first attempt was answered)."""
    akid, secret = read_credentials(runtime.config.data_dir)
    return boto3.client(
        "kms", endpoint_url=kms.meta.endpoint_url, region_name="us-east-1",
        aws_access_key_id=akid, aws_secret_access_key=secret,
        config=BotoConfig(retries={"total_max_attempts": 1}),
    )  # fmt: skip


def _entries(runtime: Runtime, request_id: str) -> list[str]:
    assert isinstance(runtime.trail, Trail)
    with runtime.trail.store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT kind FROM audit_events WHERE body LIKE ? ORDER BY seq", (f"%{request_id}%",)
        ).fetchall()
    return [row[0] for row in rows]


def test_a_state_change_whose_outcome_cannot_be_recorded_waits_for_the_trail(
    live: tuple[Runtime, Any], tmp_path: Path
) -> None:
    """The trail goes away after CreateKey ran and comes back 0.6 s later: the call's outcome
    is retried until it is recorded, and the call is answered as it ran."""
    runtime, kms = live
    _break_trail_after(runtime, "CreateKey", f"sqlite:///{tmp_path}/no/such/dir/t.db", 0.6)
    keys_before = kms.list_keys()["Keys"]
    started = time.monotonic()
    created = _once(runtime, kms).create_key(Description="outcome retried")
    assert time.monotonic() - started >= 0.5  # it waited for the trail
    key = created["KeyMetadata"]["KeyId"]
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["Description"] == "outcome retried"
    assert len(kms.list_keys()["Keys"]) == len(keys_before) + 1
    request_id = created["ResponseMetadata"]["RequestId"]
    assert _entries(runtime, request_id) == ["intent", "event"]
    store = TrailStore(runtime.trail.store.engine)  # type: ignore[union-attr]
    report = verify_trail(store, load_or_create_signer(runtime.config.data_dir).verifier())
    assert report.ok, report


def test_a_state_change_whose_outcome_stays_unrecorded_says_it_may_have_run(
    live: tuple[Runtime, Any], tmp_path: Path
) -> None:
    """The trail stays away longer than the retry window: 503, with a message that does not
    claim the request was not carried out (it was: the known limit), and its intent entry is
    in the trail."""
    runtime, kms = live
    runtime.app.outcome_retry_seconds = 0.4
    _break_trail_after(runtime, "CreateKey", f"sqlite:///{tmp_path}/no/such/dir/t.db", 1.5)
    keys_before = {k["KeyId"] for k in kms.list_keys()["Keys"]}
    with pytest.raises(ClientError) as info:
        _once(runtime, kms).create_key(Description="outcome lost")
    error = info.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (
        "ServiceUnavailableException", 503,
    )  # fmt: skip
    assert "may have been carried out" in error["Error"]["Message"]
    time.sleep(1.3)  # the trail is back
    new = {k["KeyId"] for k in kms.list_keys()["Keys"]} - keys_before
    assert len(new) == 1  # the effect stands
    assert _entries(runtime, error["ResponseMetadata"]["RequestId"]) == ["intent"]
