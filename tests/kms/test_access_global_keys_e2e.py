"""Identity policies on the other services of the endpoint, end to end through boto3.

The cloudhsmv2 control plane and CloudTrail's LookupEvents are authorized by the caller's IAM
identity policies, with the request's global condition keys as AWS has them for every service
(``aws:SourceIp``, ``aws:SecureTransport``, ``aws:RequestedRegion``, ``aws:CurrentTime``,
``aws:EpochTime``) beside the principal's; KMS has ``aws:RequestedRegion`` too. (Over HTTPS,
``aws:SecureTransport`` true: tests/api/test_tls_e2e.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.kms.access_support import (
    Env,
    access_env,
    fails,
    hsm_denied,
    identity,
    identity_statement,
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("global-keys")) as environment:
        yield environment


def _statement(effect: str, action: str, **condition: Any) -> dict[str, Any]:
    return identity_statement(effect, action, condition=condition)


def test_cloudhsm_needs_an_identity_policy(env: Env) -> None:
    nobody = env.user("hsm-nobody")
    message = hsm_denied(lambda: nobody.client("cloudhsmv2").describe_clusters())
    assert message.startswith(f"User: {nobody.arn} is not authorized to perform: ")
    assert "cloudhsm:DescribeClusters" in message
    reader = env.user("hsm-reader", identity(_statement("Allow", "cloudhsm:Describe*")))
    assert reader.client("cloudhsmv2").describe_clusters()["Clusters"] is not None
    hsm_denied(
        lambda: reader.client("cloudhsmv2").create_cluster(
            HsmType="hsm2m.medium", SubnetIds=["subnet-0000000a"]
        )
    )


def test_cloudhsm_source_ip_and_requested_region(env: Env) -> None:
    fenced = env.user(
        "hsm-fenced",
        identity(
            _statement("Allow", "cloudhsm:*"),
            _statement("Deny", "cloudhsm:*", NotIpAddress={"aws:SourceIp": "10.0.0.0/8"}),
        ),
    )
    assert "explicit deny in an identity-based policy" in hsm_denied(
        lambda: fenced.client("cloudhsmv2").describe_clusters()
    )
    loopback = env.user(
        "hsm-loopback",
        identity(_statement("Allow", "cloudhsm:*", IpAddress={"aws:SourceIp": "127.0.0.0/8"})),
    )
    assert loopback.client("cloudhsmv2").describe_clusters()["Clusters"] is not None
    west = env.user(
        "hsm-west",
        identity(
            _statement(
                "Allow",
                "cloudhsm:DescribeClusters",
                StringEquals={"aws:RequestedRegion": "us-west-2"},
            )
        ),
    )
    west_client = west.server.client("cloudhsmv2", "us-west-2", akid=west.akid, secret=west.secret)
    assert west_client.describe_clusters()["Clusters"] is not None
    hsm_denied(lambda: west.client("cloudhsmv2").describe_clusters())  # us-east-1


def test_lookup_events_secure_transport_and_time(env: Env) -> None:
    https_only = env.user(
        "trail-https",
        identity(
            _statement("Allow", "cloudtrail:LookupEvents", Bool={"aws:SecureTransport": "true"})
        ),
    )
    code, _ = fails(lambda: https_only.client("cloudtrail").lookup_events(MaxResults=1))
    assert code == "AccessDeniedException"  # this server speaks plain HTTP
    plain_ok = env.user(
        "trail-plain",
        identity(
            _statement(
                "Allow",
                "cloudtrail:LookupEvents",
                Bool={"aws:SecureTransport": "false"},
                DateGreaterThan={"aws:CurrentTime": "2020-01-01T00:00:00Z"},
                NumericGreaterThan={"aws:EpochTime": "1577836800"},
            )
        ),
    )
    assert plain_ok.client("cloudtrail").lookup_events(MaxResults=1)["Events"] is not None
    expired = env.user(
        "trail-expired",
        identity(
            _statement(
                "Allow",
                "cloudtrail:LookupEvents",
                DateLessThan={"aws:CurrentTime": "2020-01-01T00:00:00Z"},
            )
        ),
    )
    code, _ = fails(lambda: expired.client("cloudtrail").lookup_events(MaxResults=1))
    assert code == "AccessDeniedException"


def test_kms_requested_region(env: Env) -> None:
    eu_only = env.user(
        "kms-eu",
        identity(_statement("Allow", "kms:*", StringEquals={"aws:RequestedRegion": "eu-west-1"})),
    )
    eu = eu_only.server.client("kms", "eu-west-1", akid=eu_only.akid, secret=eu_only.secret)
    assert eu.create_key()["KeyMetadata"]["Arn"].startswith("arn:aws:kms:eu-west-1:")
    code, message = fails(lambda: eu_only.client("kms").create_key())
    assert code == "AccessDeniedException"
    assert "because no identity-based policy allows the kms:CreateKey action" in message
