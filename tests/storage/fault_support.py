"""What the file-system fault tests share (a full disk, injected EIO and EROFS): clients that
create keys and encrypt and keep a ledger of what was acknowledged, and the checks after."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tests.audit.conftest import audit_cli


class Tally:
    """What the clients were answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: list[str] = []  # acknowledged CreateKey
        self.blobs: list[tuple[bytes, bytes]] = []  # acknowledged Encrypt: (blob, plaintext)
        self.request_ids: list[str] = []  # of every acknowledged call
        self.refused: dict[str, int] = {}
        self.bad: list[str] = []  # answers that break the rules: not a 503, not AWS-shaped

    def refuse(self, exc: ClientError) -> None:
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        code = exc.response["Error"]["Code"]
        message = exc.response["Error"].get("Message", "")
        with self.lock:
            self.refused[f"{status} {code}"] = self.refused.get(f"{status} {code}", 0) + 1
            if status != 503 or not code or "Traceback" in message:
                self.bad.append(f"{status} {code}: {message}")

    def total_refused(self) -> int:
        with self.lock:
            return sum(self.refused.values())


def _client_loop(kms: Any, key: str, stop: threading.Event, tally: Tally, n: int) -> None:
    i = 0
    while not stop.is_set() and i < 2_000:
        i += 1
        plaintext = b"fault %d %d" % (n, i)
        try:
            if i % 3 == 0:
                answer = kms.create_key(Description=f"fault {n} {i}")
                with tally.lock:
                    tally.keys.append(answer["KeyMetadata"]["KeyId"])
            else:
                answer = kms.encrypt(KeyId=key, Plaintext=plaintext)
                with tally.lock:
                    tally.blobs.append((answer["CiphertextBlob"], plaintext))
            with tally.lock:
                tally.request_ids.append(answer["ResponseMetadata"]["RequestId"])
        except ClientError as exc:
            tally.refuse(exc)
            time.sleep(0.01)
        except BotoCoreError as exc:  # no answer at all: as bad as a 500
            with tally.lock:
                tally.bad.append(f"no answer: {exc}")


@contextmanager
def clients(make_client: Any, key: str, tally: Tally, count: int = 4) -> Iterator[None]:
    """``count`` client threads (each with a client of its own) until the block ends."""
    stop = threading.Event()
    threads = [
        threading.Thread(target=_client_loop, args=(make_client(), key, stop, tally, n))
        for n in range(count)
    ]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)


def recovered(kms: Any, seconds: float = 30) -> str:
    """Wait until a CreateKey succeeds again; its key id."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return str(kms.create_key(Description="after the fault")["KeyMetadata"]["KeyId"])
        except ClientError:
            assert time.monotonic() < deadline, "serve did not recover once the fault ended"
            time.sleep(0.2)


def calls_of_unknown_outcome(data: Path, operation: str) -> set[str]:
    """Request IDs of ``operation`` calls with an intent entry in the trail and no event."""
    ids: dict[bool, set[str]] = {}
    for intents in (False, True):
        proc = audit_cli(data, "export", "--since", "0", *(["--intents"] if intents else []))
        assert proc.returncode == 0, proc.stderr
        records = [json.loads(line) for line in proc.stdout.splitlines() if line]
        ids[intents] = {r["requestID"] for r in records if r.get("eventName") == operation}
    return ids[True] - ids[False]


def check_everything_acknowledged(kms: Any, data: Path, tally: Tally, known: set[str]) -> int:
    """Through a restarted serve: every acknowledged key and ciphertext is there; a key no
    acknowledged call made (besides ``known``) is a refused CreateKey that ran, its outcome
    not recorded (the documented limit), each with such an intent in the trail; every
    acknowledged call has its record and the trail verifies. Returns the count of those keys."""
    for made in tally.keys:
        assert kms.describe_key(KeyId=made)["KeyMetadata"]["KeyState"] == "Enabled"
    for blob, plaintext in tally.blobs[:: max(1, len(tally.blobs) // 200)]:
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    pages = kms.get_paginator("list_keys").paginate()
    listed = {k["KeyId"] for page in pages for k in page["Keys"]}
    assert {*tally.keys, *known} <= listed
    extra = listed - {*tally.keys, *known}
    unknown = calls_of_unknown_outcome(data, "CreateKey")
    assert len(extra) <= len(unknown), (extra, unknown)
    proc = audit_cli(data, "verify")
    assert proc.returncode == 0 and "OK:" in proc.stdout, proc.stdout + proc.stderr
    proc = audit_cli(data, "export", "--since", "0")
    assert proc.returncode == 0, proc.stderr
    recorded = {json.loads(line)["requestID"] for line in proc.stdout.splitlines() if line}
    missing = set(tally.request_ids) - recorded
    assert not missing, f"{len(missing)} acknowledged calls without a record"
    return len(extra)
