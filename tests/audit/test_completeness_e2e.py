"""Every call leaves exactly one event with CloudTrail's fields, and no secret reaches the trail."""

from __future__ import annotations

import base64
import json
import sqlite3
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.audit.conftest import AuditEnv, ingest_journal
from tests.conftest import ACCOUNT

CANARY = b"canary-plaintext-7f3a9c1e5b"
FIELDS = {
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
    "sourceIPAddress", "userAgent", "requestParameters", "responseElements", "requestID",
    "eventID", "readOnly", "resources", "managementEvent", "eventCategory",
}  # fmt: skip


def _events(env: AuditEnv) -> list[dict[str, Any]]:
    """Every event in the trail's tables, after ingesting the writer's journal (a reader's
    duty: the latest calls may be durable in the journal only)."""
    ingest_journal(env.server.data_dir)
    with sqlite3.connect(env.server.data_dir / "audit.db") as conn:
        rows = conn.execute("SELECT body FROM audit_events WHERE kind='event' ORDER BY seq")
        return [json.loads(body) for (body,) in rows]


def _fails(call: Any) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return str(info.value.response["Error"]["Code"])


def test_every_call_one_event_no_secrets(audit_env: AuditEnv) -> None:
    env = audit_env
    before = len(_events(env))
    kms = env.server.client()
    codes: list[str] = []
    key = kms.create_key(Description="audited")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=CANARY)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == CANARY
    data_key = kms.generate_data_key(KeyId=key, KeySpec="AES_256")["Plaintext"]
    codes.append(_fails(lambda: kms.describe_key(KeyId="alias/missing")))  # not found
    codes.append(_fails(lambda: kms.generate_random(NumberOfBytes=100000)))  # invalid
    akid, secret = env.user("nobody")
    other = env.server.client(akid=akid, secret=secret)
    codes.append(_fails(lambda: other.encrypt(KeyId=key, Plaintext=CANARY)))  # denied
    bad = env.server.client(akid=akid, secret="x" * 40)
    codes.append(_fails(bad.list_keys))  # bad signature
    sts = env.server.client("sts")
    assert sts.get_caller_identity()["Account"] == ACCOUNT
    request = urllib.request.Request(env.server.endpoint, data=b"{", method="POST")
    request.add_header("X-Amz-Target", "TrentService.Encrypt")
    with pytest.raises(urllib.error.HTTPError):  # unsigned: rejected before the operation
        urllib.request.urlopen(request, timeout=10)
    calls = 10
    assert codes == [
        "NotFoundException", "ValidationException", "AccessDeniedException",
        "InvalidSignatureException",
    ]  # fmt: skip
    events = _events(env)[before:]
    assert len(events) == calls
    names = [e["eventName"] for e in events]
    assert names == [
        "CreateKey",
        "Encrypt",
        "Decrypt",
        "GenerateDataKey",
        "DescribeKey",
        "GenerateRandom",
        "Encrypt",
        "ListKeys",
        "GetCallerIdentity",
        "Encrypt",
    ]
    for event in events:
        assert event.keys() >= FIELDS, event
        assert event["eventCategory"] == "Management" and event["managementEvent"] is True
    by_name = {e["eventName"]: e for e in events if "errorCode" not in e}
    assert by_name["CreateKey"]["readOnly"] is False
    assert by_name["Encrypt"]["readOnly"] is True
    assert by_name["Encrypt"]["resources"][0]["ARN"].endswith(key)
    assert by_name["GetCallerIdentity"]["eventSource"] == "sts.amazonaws.com"
    admin = by_name["Encrypt"]["userIdentity"]
    assert admin["type"] == "IAMUser" and admin["arn"].endswith(":user/admin")
    errors = [e for e in events if "errorCode" in e]
    assert [e["errorCode"] for e in errors][:4] == codes
    denied = errors[2]
    assert denied["userIdentity"]["arn"].endswith(":user/nobody")
    unsigned = errors[-1]
    assert unsigned["eventName"] == "Encrypt" and unsigned["userIdentity"]["type"] == "Unknown"
    # No secret anywhere in the database files (WAL included), in any encoding.
    raw = b"".join(p.read_bytes() for p in env.server.data_dir.glob("*.db*") if p.is_file())
    for secret_bytes in (CANARY, data_key):
        for form in (secret_bytes, base64.b64encode(secret_bytes), secret_bytes.hex().encode()):
            assert form not in raw
    assert secret.encode() not in raw


def test_calls_naming_a_malformed_arn_are_answered_and_recorded(audit_env: AuditEnv) -> None:
    """Found by scripts/fuzz_atheris.py (target "request"): rendering the event of a call whose
    KeyId is an ARN too short to name an account raised IndexError, so the call could not be
    recorded. Each is now answered with AWS's error and recorded, with no resource named."""
    env = audit_env
    before = len(_events(env))
    kms = env.server.client()
    sts = env.server.client("sts")
    codes = [
        _fails(lambda: kms.encrypt(KeyId="arn:aws:kms:us-east-1", Plaintext=b"x")),
        _fails(lambda: kms.describe_key(KeyId="arn:aws:kms:")),
        _fails(lambda: sts.assume_role(RoleArn="arn:aws:iam:role/x-name", RoleSessionName="s1")),
    ]
    assert codes[0] == codes[1] == "InvalidArnException", codes
    assert codes[2] in ("ValidationError", "AccessDenied"), codes
    events = _events(env)[before:]
    assert [e["eventName"] for e in events] == ["Encrypt", "DescribeKey", "AssumeRole"]
    assert all(e["errorCode"] and e["resources"] == [] for e in events), events
