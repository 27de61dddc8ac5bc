"""Shared by the key lifecycle end-to-end tests (``tests/kms/test_keys_*_e2e.py``; the alias,
tag and scheduled-deletion tests take the ARNs, alias names and ``fails`` from here too).

AWS's default key policy text, key and alias ARNs, unique alias names, the (code, message) of a
call that must fail, and a client of a new user in another account (made through
``strongroom iam``).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION, STRONGROOM, Server, error_code

DEFAULT_POLICY = """{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::%s:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"""


def key_arn(key_id: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:kms:{region}:{account}:key/{key_id}"


def alias_arn(name: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:kms:{region}:{account}:{name}"


def unique_alias(prefix: str = "e2e") -> str:
    return f"alias/{prefix}-{uuid.uuid4().hex[:12]}"


def fails(call: Callable[[], Any]) -> tuple[str, str]:
    """Run a call that must fail; its (error code, message)."""
    with pytest.raises(ClientError) as excinfo:
        call()
    return error_code(excinfo), str(excinfo.value.response["Error"]["Message"])


def close_to(when: datetime, expected: datetime, slack: float = 60.0) -> bool:
    return abs((when - expected).total_seconds()) <= slack


def new_account_client(
    server: Server, account: str, region: str = REGION
) -> tuple[Any, dict[str, str]]:
    """A boto3 client of a new user in ``account`` (made through ``strongroom iam``), and its
    access key pair."""
    base = [
        "--data-dir",
        str(server.data_dir),
        "--account-id",
        account,
    ]
    subprocess.run(
        [STRONGROOM, "iam", "create-user", "lister", *base],
        check=True,
        capture_output=True,
        timeout=60,
    )
    allow_all = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }
    )
    subprocess.run(
        [
            STRONGROOM,
            "iam",
            "put-user-policy",
            "lister",
            "all",
            "--policy-document",
            allow_all,
            *base,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    out = subprocess.run(
        [STRONGROOM, "iam", "create-access-key", "lister", *base],
        check=True,
        capture_output=True,
        timeout=60,
    )
    pair = json.loads(out.stdout)["AccessKey"]
    return server.client(
        region=region, akid=pair["AccessKeyId"], secret=pair["SecretAccessKey"]
    ), pair
