"""Shared by the alias, tag and scheduled-deletion end-to-end tests.

The aliases and tags of a key as dictionaries, and (from ``keys_support``) key and alias ARNs,
unique alias names and the (code, message) of a call that must fail (see
``tests/kms/test_aliases_e2e.py``, ``test_tags_e2e.py`` and ``test_scheduled_deletion_e2e.py``).
"""

from __future__ import annotations

from typing import Any

from tests.kms.keys_support import alias_arn, fails, key_arn, unique_alias

__all__ = ["alias_arn", "aliases_of", "all_aliases", "fails", "key_arn", "tags_of", "unique_alias"]


def aliases_of(kms: Any, key_id: str) -> dict[str, dict[str, Any]]:
    return {a["AliasName"]: a for a in kms.list_aliases(KeyId=key_id, Limit=100)["Aliases"]}


def all_aliases(kms: Any) -> dict[str, dict[str, Any]]:
    pages = kms.get_paginator("list_aliases").paginate()
    return {a["AliasName"]: a for page in pages for a in page["Aliases"]}


def tags_of(kms: Any, key_id: str) -> dict[str, str]:
    return {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
