"""KMS keys as domain values: the record, its ARN, and its ``KeyMetadata`` as AWS shows it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from strongroom.kms.domain.specs import algorithm_lists
from strongroom.kms.domain.states import KeyState

__all__ = ["KeyRecord", "default_policy", "key_arn", "material_id", "policy_is_json_object"]

PARTITION = "aws"


def key_arn(region: str, account_id: str, key_id: str) -> str:
    """``arn:aws:kms:<region>:<account>:key/<key-id>``."""
    return f"arn:{PARTITION}:kms:{region}:{account_id}:key/{key_id}"


def default_policy(account_id: str) -> str:
    """AWS's default key policy document, byte for byte as GetKeyPolicy returns it."""
    return (
        "{\n"
        '  "Version" : "2012-10-17",\n'
        '  "Id" : "key-default-1",\n'
        '  "Statement" : [ {\n'
        '    "Sid" : "Enable IAM User Permissions",\n'
        '    "Effect" : "Allow",\n'
        '    "Principal" : {\n'
        f'      "AWS" : "arn:aws:iam::{account_id}:root"\n'
        "    },\n"
        '    "Action" : "kms:*",\n'
        '    "Resource" : "*"\n'
        "  } ]\n"
        "}"
    )


def material_id(key_id: str, version: int) -> str:
    """The 64-hex-digit ``KeyMaterialId`` of one material version of a key."""
    return hashlib.sha256(f"strongroom-key-material:{key_id}:{version}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One KMS key's metadata (its material lives apart, wrapped by the root key)."""

    key_id: str
    account_id: str
    region: str
    state: KeyState
    key_spec: str
    key_usage: str
    origin: str
    description: str
    created: float
    deletion_date: float | None
    pending_window_days: int | None
    multi_region: bool
    key_manager: str
    custom_key_store_id: str | None
    policy: str
    current_version: int
    #: For a multi-Region replica, the region of the row its material is stored under.
    home_region: str = ""

    @property
    def arn(self) -> str:
        return key_arn(self.region, self.account_id, self.key_id)

    @property
    def material_arn(self) -> str:
        """The ARN that binds the key's wrapped material (its home region's ARN)."""
        return key_arn(self.home_region or self.region, self.account_id, self.key_id)

    @property
    def is_replica_view(self) -> bool:
        """True for a multi-Region key seen in a region other than its home row's."""
        return bool(self.home_region) and self.home_region != self.region

    def replace(self, **changes: Any) -> KeyRecord:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def metadata(self) -> dict[str, Any]:
        """``KeyMetadata`` as DescribeKey returns it."""
        meta: dict[str, Any] = {
            "AWSAccountId": self.account_id,
            "KeyId": self.key_id,
            "Arn": self.arn,
            "CreationDate": self.created,
            "Enabled": self.state is KeyState.ENABLED,
            "Description": self.description,
            "KeyUsage": self.key_usage,
            "KeyState": self.state.value,
            "Origin": self.origin,
            "KeyManager": self.key_manager,
            "CustomerMasterKeySpec": self.key_spec,
            "KeySpec": self.key_spec,
            "MultiRegion": self.multi_region,
        }
        if self.state is KeyState.PENDING_DELETION and self.deletion_date is not None:
            meta["DeletionDate"] = self.deletion_date
        if self.state is KeyState.PENDING_REPLICA_DELETION and self.pending_window_days:
            meta["PendingDeletionWindowInDays"] = self.pending_window_days
        meta.update(algorithm_lists(self.key_spec, self.key_usage))
        if self.key_spec == "SYMMETRIC_DEFAULT" and self.origin in ("AWS_KMS", "EXTERNAL"):
            meta["CurrentKeyMaterialId"] = material_id(self.key_id, self.current_version)
        if self.custom_key_store_id is not None:
            meta["CustomKeyStoreId"] = self.custom_key_store_id
        return meta


def policy_is_json_object(text: str) -> bool:
    """True when ``text`` parses as a JSON object (full grammar checks come with issue 3)."""
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
