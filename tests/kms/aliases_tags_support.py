"""Shared by the alias, tag and scheduled-deletion end-to-end tests.

Key and alias ARNs, unique alias names, the (code, message) of a call that must fail, and the
aliases and tags of a key as dictionaries (see ``tests/kms/test_aliases_e2e.py``,
``test_tags_e2e.py`` and ``test_scheduled_deletion_e2e.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, REGION, error_code


def key_arn(key_id: str, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"


def alias_arn(name: str, region: str = REGION) -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:{name}"


def unique_alias(prefix: str = "e2e") -> str:
    return f"alias/{prefix}-{uuid.uuid4().hex[:12]}"


def fails(call: Callable[[], Any]) -> tuple[str, str]:
    """Run a call that must fail; its (error code, message)."""
    with pytest.raises(ClientError) as excinfo:
        call()
    return error_code(excinfo), str(excinfo.value.response["Error"]["Message"])


def aliases_of(kms: Any, key_id: str) -> dict[str, dict[str, Any]]:
    return {a["AliasName"]: a for a in kms.list_aliases(KeyId=key_id, Limit=100)["Aliases"]}


def all_aliases(kms: Any) -> dict[str, dict[str, Any]]:
    pages = kms.get_paginator("list_aliases").paginate()
    return {a["AliasName"]: a for page in pages for a in page["Aliases"]}


def tags_of(kms: Any, key_id: str) -> dict[str, str]:
    return {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
