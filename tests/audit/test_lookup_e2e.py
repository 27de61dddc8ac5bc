"""CloudTrail LookupEvents through boto3: each lookup attribute, time range, pagination, authz;
``audit tail`` and ``audit export``."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.audit.conftest import AuditEnv

READ_ALL = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["cloudtrail:LookupEvents", "kms:*"], "Resource": "*"}
    ],
}


@pytest.fixture(scope="module")
def seeded(audit_env: AuditEnv) -> dict[str, Any]:
    kms = audit_env.server.client()
    key = kms.create_key(Description="lookup")["KeyMetadata"]
    for _ in range(7):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"p")
    akid, secret = audit_env.user("reader", READ_ALL)
    reader = audit_env.server.client(akid=akid, secret=secret)
    reader.describe_key(KeyId=key["KeyId"])
    return {"key": key, "reader_akid": akid, "reader": audit_env.server.client(
        "cloudtrail", akid=akid, secret=secret)}  # fmt: skip


def _lookup(ct: Any, key: str, value: str, **extra: Any) -> list[dict[str, Any]]:
    attrs = [{"AttributeKey": key, "AttributeValue": value}]
    return list(ct.lookup_events(LookupAttributes=attrs, **extra)["Events"])


def test_each_lookup_attribute(audit_env: AuditEnv, seeded: dict[str, Any]) -> None:
    ct = audit_env.server.client("cloudtrail")
    arn = seeded["key"]["Arn"]
    encrypts = _lookup(ct, "EventName", "Encrypt")
    assert len(encrypts) >= 7 and {e["EventName"] for e in encrypts} == {"Encrypt"}
    one = encrypts[0]
    assert json.loads(one["CloudTrailEvent"])["eventID"] == one["EventId"]
    assert [e["EventId"] for e in _lookup(ct, "EventId", one["EventId"])] == [one["EventId"]]
    assert {e["ReadOnly"] for e in _lookup(ct, "ReadOnly", "false")} == {"false"}
    assert {e["ReadOnly"] for e in _lookup(ct, "ReadOnly", "true")} == {"true"}
    by_reader = _lookup(ct, "Username", "reader")
    assert [e["EventName"] for e in by_reader] == ["DescribeKey"]
    by_key = _lookup(ct, "AccessKeyId", seeded["reader_akid"])
    assert [e["EventName"] for e in by_key] == ["DescribeKey"]
    on_key = _lookup(ct, "ResourceName", arn)
    assert len(on_key) >= 9 and all(e["Resources"][0]["ResourceName"] == arn for e in on_key)
    typed = _lookup(ct, "ResourceType", "AWS::KMS::Key")
    assert len(typed) >= len(on_key)
    assert {e["EventSource"] for e in _lookup(ct, "EventSource", "kms.amazonaws.com")} == {
        "kms.amazonaws.com"
    }
    assert _lookup(ct, "EventName", "NoSuchThing") == []


def test_time_range_and_pagination(audit_env: AuditEnv, seeded: dict[str, Any]) -> None:
    ct = audit_env.server.client("cloudtrail")
    future = time.time() + 3600
    assert ct.lookup_events(StartTime=future)["Events"] == []
    # EventCategory insight asks for Insights events only: Strongroom raises none
    assert ct.lookup_events(MaxResults=5)["Events"]
    assert ct.lookup_events(EventCategory="insight", MaxResults=5)["Events"] == []
    seen: list[str] = []
    pages = 0
    for page in ct.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}],
        PaginationConfig={"PageSize": 3},
    ):
        pages += 1
        seen += [e["EventId"] for e in page["Events"]]
    assert pages >= 3 and len(seen) == len(set(seen)) == len(_lookup(ct, "EventName", "Encrypt"))
    with pytest.raises(ClientError) as info:
        ct.lookup_events(NextToken="garbage")
    assert info.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_lookup_needs_permission(audit_env: AuditEnv, seeded: dict[str, Any]) -> None:
    assert seeded["reader"].lookup_events(MaxResults=1)["Events"]
    akid, secret = audit_env.user("no-trail")
    with pytest.raises(ClientError) as info:
        audit_env.server.client("cloudtrail", akid=akid, secret=secret).lookup_events()
    assert info.value.response["Error"]["Code"] == "AccessDeniedException"


def test_tail_and_export(audit_env: AuditEnv, seeded: dict[str, Any]) -> None:
    del seeded
    tail = audit_env.cli("tail", "-n", "3")
    assert tail.returncode == 0, tail.stderr
    assert len([json.loads(line) for line in tail.stdout.splitlines()]) == 3
    export = audit_env.cli("export", "--since", "2000-01-01")
    events = [json.loads(line) for line in export.stdout.splitlines()]
    assert len(events) >= 10 and events[0]["eventTime"] <= events[-1]["eventTime"]
    later = audit_env.cli("export", "--since", str(time.time() + 60))
    assert later.returncode == 0 and later.stdout == ""
