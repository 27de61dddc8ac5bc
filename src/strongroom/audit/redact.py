"""What of a call reaches the trail: an allow-list of request and response fields per operation.

Only the fields named here are copied into ``requestParameters`` / ``responseElements``; an
operation that is not listed records neither (``null``), so a new operation or a new field can
never leak a plaintext, key material, password or secret by default. Blobs (plaintexts,
ciphertexts, messages, signatures, key material, import tokens), passwords and credentials are
never listed. Names are written in CloudTrail's style (first letter lower-case).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["EFFECT_FREE", "READ_ONLY", "allowed_request", "allowed_response"]

_KEY = ("KeyId",)
_CRYPTO = ("KeyId", "EncryptionContext", "EncryptionAlgorithm", "GrantTokens", "DryRun")
_LIST = ("Limit", "Marker")

_REQUEST: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "kms": {
        "CancelKeyDeletion": _KEY,
        "ConnectCustomKeyStore": ("CustomKeyStoreId",),
        "CreateAlias": ("AliasName", "TargetKeyId"),
        "CreateCustomKeyStore": (
            "CustomKeyStoreName",
            "CloudHsmClusterId",
            "CustomKeyStoreType",
            "XksProxyUriEndpoint",
            "XksProxyUriPath",
            "XksProxyConnectivity",
        ),
        "CreateGrant": (
            "KeyId",
            "GranteePrincipal",
            "RetiringPrincipal",
            "Operations",
            "Constraints",
            "Name",
            "DryRun",
        ),
        "CreateKey": (
            "Description",
            "KeyUsage",
            "KeySpec",
            "CustomerMasterKeySpec",
            "Origin",
            "CustomKeyStoreId",
            "BypassPolicyLockoutSafetyCheck",
            "Tags",
            "MultiRegion",
            "Policy",
        ),
        "Decapsulate": ("KeyId", "EncapsulationAlgorithm", "GrantTokens", "DryRun"),
        "Decrypt": (*_CRYPTO, "DryRunModifiers"),
        "DeleteAlias": ("AliasName",),
        "DeleteCustomKeyStore": ("CustomKeyStoreId",),
        "DeleteImportedKeyMaterial": ("KeyId", "KeyMaterialId"),
        "DeriveSharedSecret": ("KeyId", "KeyAgreementAlgorithm", "GrantTokens", "DryRun"),
        "DescribeCustomKeyStores": ("CustomKeyStoreId", "CustomKeyStoreName", *_LIST),
        "DescribeKey": ("KeyId", "GrantTokens"),
        "DisableKey": _KEY,
        "DisableKeyRotation": _KEY,
        "DisconnectCustomKeyStore": ("CustomKeyStoreId",),
        "EnableKey": _KEY,
        "EnableKeyRotation": ("KeyId", "RotationPeriodInDays"),
        "Encapsulate": ("KeyId", "EncapsulationAlgorithm", "GrantTokens", "DryRun"),
        "Encrypt": _CRYPTO,
        "GenerateDataKey": (*_CRYPTO, "NumberOfBytes", "KeySpec"),
        "GenerateDataKeyPair": (*_CRYPTO, "KeyPairSpec"),
        "GenerateDataKeyPairWithoutPlaintext": (*_CRYPTO, "KeyPairSpec"),
        "GenerateDataKeyWithoutPlaintext": (*_CRYPTO, "NumberOfBytes", "KeySpec"),
        "GenerateMac": ("KeyId", "MacAlgorithm", "GrantTokens", "DryRun"),
        "GenerateRandom": ("NumberOfBytes", "CustomKeyStoreId"),
        "GetKeyLastUsage": _KEY,
        "GetKeyPolicy": ("KeyId", "PolicyName"),
        "GetKeyRotationStatus": _KEY,
        "GetParametersForImport": ("KeyId", "WrappingAlgorithm", "WrappingKeySpec"),
        "GetPublicKey": ("KeyId", "GrantTokens"),
        "ImportKeyMaterial": ("KeyId", "ValidTo", "ExpirationModel", "ImportType"),
        "ListAliases": ("KeyId", *_LIST),
        "ListGrants": ("KeyId", "GrantId", "GranteePrincipal", *_LIST),
        "ListKeyPolicies": ("KeyId", *_LIST),
        "ListKeyRotations": ("KeyId", "IncludeKeyMaterial", *_LIST),
        "ListKeys": _LIST,
        "ListResourceTags": ("KeyId", *_LIST),
        "ListRetirableGrants": ("RetiringPrincipal", *_LIST),
        "PutKeyPolicy": ("KeyId", "PolicyName", "Policy", "BypassPolicyLockoutSafetyCheck"),
        "ReEncrypt": (
            "SourceKeyId",
            "DestinationKeyId",
            "SourceEncryptionContext",
            "DestinationEncryptionContext",
            "SourceEncryptionAlgorithm",
            "DestinationEncryptionAlgorithm",
            "GrantTokens",
            "DryRun",
            "DryRunModifiers",
        ),
        "ReplicateKey": ("KeyId", "ReplicaRegion", "Description", "Tags"),
        "RetireGrant": ("KeyId", "GrantId", "DryRun"),
        "RevokeGrant": ("KeyId", "GrantId", "DryRun"),
        "RotateKeyOnDemand": _KEY,
        "ScheduleKeyDeletion": ("KeyId", "PendingWindowInDays"),
        "Sign": ("KeyId", "MessageType", "SigningAlgorithm", "GrantTokens", "DryRun"),
        "TagResource": ("KeyId", "Tags"),
        "UntagResource": ("KeyId", "TagKeys"),
        "UpdateAlias": ("AliasName", "TargetKeyId"),
        "UpdateCustomKeyStore": ("CustomKeyStoreId", "NewCustomKeyStoreName", "CloudHsmClusterId"),
        "UpdateKeyDescription": ("KeyId", "Description"),
        "UpdatePrimaryRegion": ("KeyId", "PrimaryRegion"),
        "Verify": ("KeyId", "MessageType", "SigningAlgorithm", "GrantTokens", "DryRun"),
        "VerifyMac": ("KeyId", "MacAlgorithm", "GrantTokens", "DryRun"),
    },
    "sts": {
        "AssumeRole": ("RoleArn", "RoleSessionName", "DurationSeconds", "Policy"),
        "GetCallerIdentity": (),
    },
    "cloudhsm": {
        "CopyBackupToRegion": ("BackupId", "DestinationRegion", "TagList"),
        "CreateCluster": ("HsmType", "SubnetIds", "SourceBackupId", "Mode", "NetworkType"),
        "CreateHsm": ("ClusterId", "AvailabilityZone", "IpAddress"),
        "DeleteCluster": ("ClusterId",),
        "DeleteHsm": ("ClusterId", "HsmId", "EniId", "EniIp"),
        "DeleteBackup": ("BackupId",),
        "RestoreBackup": ("BackupId",),
        "DescribeClusters": ("Filters", "NextToken", "MaxResults"),
        "DescribeBackups": ("Filters", "NextToken", "MaxResults", "SortAscending"),
        "InitializeCluster": ("ClusterId",),
        "ModifyBackupAttributes": ("BackupId", "NeverExpires"),
        "ModifyCluster": ("ClusterId", "BackupRetentionPolicy", "HsmType"),
        "PutResourcePolicy": ("ResourceArn", "Policy"),
        "GetResourcePolicy": ("ResourceArn",),
        "DeleteResourcePolicy": ("ResourceArn",),
        "TagResource": ("ResourceId", "TagList"),
        "UntagResource": ("ResourceId", "TagKeyList"),
        "ListTags": ("ResourceId", "NextToken", "MaxResults"),
    },
    "cloudtrail": {
        "LookupEvents": ("LookupAttributes", "StartTime", "EndTime", "MaxResults"),
    },
}

_RESPONSE: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "kms": {
        "CancelKeyDeletion": _KEY,
        "CreateCustomKeyStore": ("CustomKeyStoreId",),
        "CreateGrant": ("GrantId",),
        "CreateKey": ("KeyMetadata",),
        "DeleteImportedKeyMaterial": ("KeyId", "KeyMaterialId"),
        "ImportKeyMaterial": ("KeyId", "KeyMaterialId"),
        "ReplicateKey": ("ReplicaKeyMetadata",),
        "RotateKeyOnDemand": _KEY,
        "ScheduleKeyDeletion": ("KeyId", "DeletionDate", "KeyState", "PendingWindowInDays"),
    },
    "cloudhsm": {
        "CreateCluster": ("Cluster",),
        "CreateHsm": ("Hsm",),
        "DeleteCluster": ("Cluster",),
        "DeleteHsm": ("HsmId",),
        "InitializeCluster": ("State", "StateMessage"),
        "CopyBackupToRegion": ("DestinationBackup",),
        "DeleteBackup": ("Backup",),
        "RestoreBackup": ("Backup",),
        "ModifyBackupAttributes": ("Backup",),
        "ModifyCluster": ("Cluster",),
    },
}

#: Operations CloudTrail marks ``readOnly`` (they change no state).
READ_ONLY: frozenset[str] = frozenset(
    {
        "Decapsulate",
        "Decrypt",
        "DeriveSharedSecret",
        "DescribeCustomKeyStores",
        "DescribeKey",
        "Encapsulate",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GenerateRandom",
        "GetKeyLastUsage",
        "GetKeyPolicy",
        "GetKeyRotationStatus",
        "GetParametersForImport",
        "GetPublicKey",
        "ListAliases",
        "ListGrants",
        "ListKeyPolicies",
        "ListKeyRotations",
        "ListKeys",
        "ListResourceTags",
        "ListRetirableGrants",
        "ReEncrypt",
        "Sign",
        "Verify",
        "VerifyMac",
        "GetCallerIdentity",
        "DescribeClusters",
        "DescribeBackups",
        "GetResourcePolicy",
        "ListTags",
        "LookupEvents",
    }
)

#: Operations whose only effect is their response: withholding the response undoes them, so
#: they need no intent entry before they run (see :mod:`strongroom.audit.trail`).
#: GetParametersForImport is read-only for CloudTrail but stores import state, so it is not here.
EFFECT_FREE: frozenset[str] = READ_ONLY - {"GetParametersForImport"}


def _pick(
    table: Mapping[str, Mapping[str, tuple[str, ...]]],
    service: str,
    operation: str,
    values: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    fields = table.get(service, {}).get(operation)
    if fields is None or values is None:
        return None
    picked = {name[0].lower() + name[1:]: values[name] for name in fields if name in values}
    return picked or None


def allowed_request(
    service: str, operation: str, request: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The ``requestParameters`` the trail may keep for this call."""
    return _pick(_REQUEST, service, operation, request)


def allowed_response(
    service: str, operation: str, response: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The ``responseElements`` the trail may keep for this call."""
    return _pick(_RESPONSE, service, operation, response)
