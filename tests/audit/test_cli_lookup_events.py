"""``aws cloudtrail lookup-events`` (the aws CLI, as issue 7 names it) against a real ``serve``:
the CLI's own pagination over NextToken, ``--max-items`` / ``--starting-token``, time ranges,
and the CloudTrail errors as the CLI shows them."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from tests.audit.conftest import AuditEnv
from tests.cli_support import Cli

ENCRYPTS = 7


@pytest.fixture(scope="module")
def cli(audit_env: AuditEnv) -> Cli:
    return Cli(audit_env.server, audit_env.server.data_dir.parent, "cloudtrail")


@pytest.fixture(scope="module")
def key_arn(audit_env: AuditEnv) -> str:
    kms = audit_env.server.client()
    key = kms.create_key(Description="cli lookup")["KeyMetadata"]
    for _ in range(ENCRYPTS):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"canary-plaintext-cli")
    kms.describe_key(KeyId=key["KeyId"])
    return str(key["Arn"])


def _by_resource(arn: str) -> list[str]:
    return ["--lookup-attributes", f"AttributeKey=ResourceName,AttributeValue={arn}"]


def test_cli_follows_next_token_across_pages(cli: Cli, key_arn: str) -> None:
    # --page-size 2: the CLI asks for 2 events a call and follows NextToken to the end
    out = cli.json("lookup-events", *_by_resource(key_arn), "--page-size", "2")
    events: list[dict[str, Any]] = out["Events"]
    names = [event["EventName"] for event in events]
    assert sorted(names) == sorted(["CreateKey", "DescribeKey", *["Encrypt"] * ENCRYPTS])
    assert len({event["EventId"] for event in events}) == len(events)
    times = [event["EventTime"] for event in events]
    assert times == sorted(times, reverse=True)  # newest first, as CloudTrail
    for event in events:
        record = json.loads(event["CloudTrailEvent"])
        assert record["eventSource"] == "kms.amazonaws.com"
        assert record["eventID"] == event["EventId"]
        assert record["resources"][0]["ARN"] == key_arn
        assert "canary-plaintext-cli" not in event["CloudTrailEvent"]
        assert {"ResourceType": "AWS::KMS::Key", "ResourceName": key_arn} in event["Resources"]


def test_cli_max_items_and_starting_token(cli: Cli, key_arn: str) -> None:
    first = cli.json("lookup-events", *_by_resource(key_arn), "--max-items", "4")
    assert len(first["Events"]) == 4
    token = first["NextToken"]
    rest = cli.json(
        "lookup-events", *_by_resource(key_arn), "--max-items", "100", "--starting-token", token
    )
    assert "NextToken" not in rest
    ids = [e["EventId"] for e in first["Events"]] + [e["EventId"] for e in rest["Events"]]
    assert len(ids) == len(set(ids)) == ENCRYPTS + 2


def test_cli_event_name_and_time_range(cli: Cli, key_arn: str) -> None:
    now = datetime.datetime.now(datetime.UTC)
    start = (now - datetime.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (now + datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    names = cli.text(
        "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=Encrypt",
        "--start-time", start, "--end-time", end, "--query", "Events[].EventName",
    ).split()  # fmt: skip
    assert len(names) >= ENCRYPTS and set(names) == {"Encrypt"}
    past = (now - datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    older = (now - datetime.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    empty = cli.json("lookup-events", "--start-time", older, "--end-time", past)
    assert empty["Events"] == []


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--start-time", "2026-01-02T00:00:00Z", "--end-time", "2026-01-01T00:00:00Z"],
         "InvalidTimeRangeException"),
        (["--lookup-attributes", "AttributeKey=Colour,AttributeValue=x"],
         "ValidationException"),  # an enum's values are checked by the model, as AWS's are
        (["--lookup-attributes", "AttributeKey=EventName,AttributeValue=Encrypt",
          "AttributeKey=ReadOnly,AttributeValue=true"], "InvalidLookupAttributesException"),
        (["--no-paginate", "--next-token", "not-a-token"], "InvalidNextTokenException"),
    ],
)  # fmt: skip
def test_cli_shows_cloudtrail_errors(cli: Cli, args: list[str], code: str) -> None:
    proc = cli.run("lookup-events", *args, check=False)
    assert proc.returncode in {254, 255}
    assert code in proc.stderr
