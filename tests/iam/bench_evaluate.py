"""Micro-benchmark of the policy engine: ``python tests/iam/bench_evaluate.py``.

Not collected by pytest. Prints microseconds per ``evaluate`` call for the default key policy and
for a 20-statement policy with conditions (worst case: every Deny is checked, the Allow that
decides is the last statement), plus the cost of building the request facts.
"""

from __future__ import annotations

import json
import timeit
from typing import Any

from strongroom.iam.policy import Caller, RequestFacts, evaluate, parse_policy

ACCOUNT = "111122223333"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app/Worker"
SESSION = Caller(
    f"arn:aws:sts::{ACCOUNT}:assumed-role/Worker/job-42", ACCOUNT, "AssumedRole", ROLE,
    userid="AROAEXAMPLE:job-42",
)  # fmt: skip
DEFAULT = {
    "Version": "2012-10-17",
    "Id": "key-default-1",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}


def twenty_statements() -> dict[str, Any]:
    statements: list[dict[str, Any]] = []
    for i in range(8):  # Denies that are checked but do not apply
        statements.append({
            "Sid": f"Deny{i}", "Effect": "Deny", "Principal": {"AWS": "*"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {f"kms:EncryptionContext:Stage{i}": ["Restricted", "Frozen"]},
                "NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]},
            },
        })  # fmt: skip
    for i in range(11):  # Allows for other principals or with conditions that fail
        statements.append({
            "Sid": f"Allow{i}", "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/user{i}", ROLE]},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*",
            "Condition": {
                "StringEquals": {"kms:EncryptionContext:AppName": f"App{i}"},
                "ForAnyValue:StringLike": {"kms:EncryptionContextKeys": "App*"},
                "Bool": {"aws:SecureTransport": "true"},
            },
        })  # fmt: skip
    statements.append({
        "Sid": "AllowWorker", "Effect": "Allow", "Principal": {"AWS": ROLE},
        "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": KEY,
        "Condition": {
            "StringEquals": {
                "kms:EncryptionContext:AppName": "Worker", "kms:CallerAccount": ACCOUNT
            },
            "StringLike": {"kms:EncryptionContext:Owner": "${aws:userid}"},
            "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
        },
    })  # fmt: skip
    return {"Version": "2012-10-17", "Statement": statements}


def _facts() -> RequestFacts:
    return RequestFacts(
        "kms:Encrypt",
        KEY,
        SESSION,
        {
            "kms:EncryptionContext:AppName": ("Worker",),
            "kms:EncryptionContext:Owner": ("AROAEXAMPLE:job-42",),
            "kms:EncryptionContextKeys": ("AppName", "Owner"),
            "aws:SourceIp": ("10.1.2.3",),
            "aws:SecureTransport": ("true",),
        },
    )


def _micro(call: Any, number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def main() -> None:
    default = parse_policy(json.dumps(DEFAULT), kind="resource")
    big = parse_policy(json.dumps(twenty_statements()), kind="resource")
    assert len(big.statements) == 20
    facts = _facts()
    d = evaluate(big, facts, match_principal=True)
    assert d.allowed and d.sid == "AllowWorker", d
    assert evaluate(default, facts, match_principal=True).allowed
    text = json.dumps(twenty_statements())
    rows = [
        ("default key policy", lambda: evaluate(default, facts, match_principal=True), 100_000),
        ("20 statements", lambda: evaluate(big, facts, match_principal=True), 20_000),
        ("default, new facts", lambda: evaluate(default, _facts(), match_principal=True), 100_000),
        ("20 statements, new facts", lambda: evaluate(big, _facts(), match_principal=True), 20_000),
        ("parse 20 statements", lambda: parse_policy(text, kind="resource"), 500),
    ]
    for label, call, number in rows:
        print(f"{label:<26}{_micro(call, number):9.2f} us")


if __name__ == "__main__":
    main()
