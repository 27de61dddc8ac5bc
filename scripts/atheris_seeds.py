"""Valid inputs for the fuzz targets of ``scripts/atheris_targets.py`` to start from.

Signed requests are signed by botocore, as a real client signs them; the rest are the shapes
AWS's documentation gives (the default key policy, a request of each common operation).
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable
from unittest import mock

from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["ACCOUNT", "KEY_ARN", "MATERIAL", "policy_seeds", "request_seeds", "sigv4_seeds"]

ACCOUNT = "111122223333"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}"
MATERIAL = bytes(range(32))
_HOST = "127.0.0.1:4599"
_AKID = "AKIAFUZZ0000EXAMPLE0"


def _at(now: float, sign: Callable[[AWSRequest], None], request: AWSRequest) -> None:
    """Sign as botocore does, at ``now`` (its clock is a module-level function)."""
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", lambda *_, **__: moment):
        sign(request)


def _serialize(method: str, url: str, headers: dict[str, str], body: bytes) -> bytes:
    target = url.split(_HOST, 1)[1]
    lines = [f"{method} {target}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\n".join(lines) + "\n\n").encode("latin-1") + body


def sigv4_seeds(secret: str, now: float) -> list[bytes]:
    """Requests botocore signed for ``secret`` at ``now``."""
    seeds: list[bytes] = []
    bodies = [
        ("TrentService.Encrypt", {"KeyId": "alias/fuzz", "Plaintext": "aGVsbG8="}),
        ("TrentService.ListKeys", {}),
    ]
    for token in (None, "FwoGZXIvYXdzEFUZZSESSIONTOKEN"):
        creds = Credentials(_AKID, secret, token)
        for target, payload in bodies:
            body = json.dumps(payload).encode()
            headers = {
                "Host": _HOST,
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": target,
            }
            request = AWSRequest("POST", f"http://{_HOST}/", data=body, headers=headers)
            _at(now, SigV4Auth(creds, "kms", "us-east-1").add_auth, request)
            seeds.append(_serialize("POST", request.url, dict(request.headers), body))
        query = AWSRequest(
            "GET", f"http://{_HOST}/?Action=GetCallerIdentity&Version=2011-06-15",
            headers={"Host": _HOST},
        )  # fmt: skip
        _at(now, SigV4QueryAuth(creds, "kms", "us-east-1", expires=300).add_auth, query)
        seeds.append(_serialize("GET", query.url, dict(query.headers), b""))
    return seeds


def request_seeds() -> list[tuple[str, bytes]]:
    """(operation, JSON body) pairs, valid against botocore's KMS model."""
    b64 = base64.b64encode(b"fuzz plaintext").decode()
    context = {"purpose": "fuzz", "tenant": "t-1"}
    requests: list[tuple[str, dict[str, object]]] = [
        ("Encrypt", {"KeyId": KEY_ARN, "Plaintext": b64, "EncryptionContext": context,
                     "GrantTokens": ["token"], "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}),
        ("Decrypt", {"CiphertextBlob": b64, "EncryptionContext": context, "KeyId": "alias/a"}),
        ("GenerateDataKey", {"KeyId": KEY_ID, "KeySpec": "AES_256", "NumberOfBytes": 32}),
        ("CreateKey", {"Description": "d", "KeyUsage": "SIGN_VERIFY", "KeySpec": "RSA_2048",
                       "Tags": [{"TagKey": "k", "TagValue": "v"}], "MultiRegion": False,
                       "Policy": json.dumps(policy_document())}),
        ("Sign", {"KeyId": KEY_ID, "Message": b64, "MessageType": "RAW",
                  "SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
        ("CreateGrant", {"KeyId": KEY_ID, "GranteePrincipal": f"arn:aws:iam::{ACCOUNT}:user/b",
                         "Operations": ["Decrypt", "Encrypt"],
                         "Constraints": {"EncryptionContextSubset": context}}),
        ("ListKeys", {"Limit": 10, "Marker": "abc"}),
        ("ScheduleKeyDeletion", {"KeyId": KEY_ID, "PendingWindowInDays": 7}),
        ("ImportKeyMaterial", {"KeyId": KEY_ID, "ImportToken": b64, "EncryptedKeyMaterial": b64,
                               "ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": 1.8e9}),
        ("EnableKeyRotation", {"KeyId": KEY_ID, "RotationPeriodInDays": 365}),
    ]  # fmt: skip
    return [(op, json.dumps(body).encode()) for op, body in requests]


def policy_document() -> dict[str, object]:
    """AWS's default key policy."""
    return {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*", "Resource": "*",
        }],
    }  # fmt: skip


def policy_seeds() -> list[tuple[str, str]]:
    """(kind, document) pairs covering each element and the condition operators."""
    conditions = {
        "StringEquals": {"kms:EncryptionContext:purpose": "fuzz"},
        "ForAnyValue:StringLike": {"kms:EncryptionContextKeys": ["pur*", "x?"]},
        "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]},
        "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
        "Bool": {"aws:SecureTransport": "true"},
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/${aws:PrincipalTag/team}"},
        "StringEqualsIfExists": {"kms:ViaService": "s3.us-east-1.amazonaws.com"},
        "NumericLessThanEquals": {"aws:EpochTime": "2000000000"},
        "Null": {"aws:SourceVpc": "true"},
    }
    statements = [
        {"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/alice", "*"]},
         "Action": ["kms:Decrypt", "kms:Encrypt*"], "Resource": "*", "Condition": conditions},
        {"Effect": "Deny", "NotPrincipal": {"AWS": ACCOUNT}, "NotAction": "kms:Describe*",
         "NotResource": "arn:aws:kms:*:*:key/${aws:username}"},
    ]  # fmt: skip
    identity = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": KEY_ARN,
                       "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}}],
    }  # fmt: skip
    trust = {
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "sts:AssumeRole",
                      "Principal": {"AWS": ACCOUNT, "Service": "ec2.amazonaws.com"}},
    }  # fmt: skip
    return [
        ("resource", json.dumps(policy_document())),
        ("resource", json.dumps({"Version": "2012-10-17", "Statement": statements})),
        ("identity", json.dumps(identity)),
        ("trust", json.dumps(trust)),
    ]


def blob_seeds() -> list[bytes]:
    """Blob shapes beside the genuine ones (which need the key store to make)."""
    kid = KEY_ID.encode()
    header = bytes((1, 2, len(kid))) + kid + (1).to_bytes(4, "big") + bytes(28)
    return [b"\x00" + header + bytes(16), b"\x01\x01\x01"]
