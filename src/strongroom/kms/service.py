"""The KMS service object: storage, key store, caches, and the pipeline every key operation runs.

Pipeline (ARCHITECTURE.md): resolve the KeyId (id, ARN, alias, alias ARN) -> load the key ->
check its state for the operation -> authorize (access control arrives with issue 3) -> run.
Key records and unwrapped material are cached in memory; the caches drop whenever this process
writes, and whenever :class:`~strongroom.storage.engine.ChangeMonitor` says another process did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from strongroom.clock import Clock
from strongroom.crypto.kms_asymmetric import forget_loaded_keys
from strongroom.errors import AwsError
from strongroom.iam.identities import Principal
from strongroom.kms.domain.identifiers import KeyRef, alias_arn, parse_key_ref
from strongroom.kms.domain.keys import KeyRecord, key_arn
from strongroom.kms.domain.states import KeyState, check_state
from strongroom.kms.keystores.software import SoftwareKeyStore
from strongroom.storage import cks_repo, grant_repo, kms_repo, replica_repo
from strongroom.storage.engine import ChangeMonitor, write_transaction

__all__ = ["KeyAuthorizer", "Kms", "OpenAccess", "RequestContext"]

_CACHE_LIMIT = 50_000


class KeyAuthorizer(Protocol):
    """Decides whether a caller may perform an action (``kms:Encrypt``) on a key, or on the
    account (``key`` None: CreateKey, ListKeys, GenerateRandom, ...). Raises
    AccessDeniedException in AWS's wording, or returns."""

    def authorize(
        self,
        ctx: RequestContext,
        action: str,
        key: KeyRecord | None,
        request: Mapping[str, Any],
        encryption_context: Mapping[str, str] | None,
        alias: str | None,
    ) -> None: ...


class OpenAccess:
    """Every authenticated caller may do everything (before access control is configured)."""

    def authorize(
        self,
        ctx: RequestContext,
        action: str,
        key: KeyRecord | None,
        request: Mapping[str, Any],
        encryption_context: Mapping[str, str] | None,
        alias: str | None,
    ) -> None:
        del ctx, action, key, request, encryption_context, alias


KeyUsageReader = Callable[[str], tuple[tuple[str, float, str, str] | None, float | None]]

#: State-table operation names that are not themselves IAM actions.
_ACTION_OF = {"UpdateAliasTarget": "UpdateAlias"}
#: The operations a principal of another account may perform on a key, when the key policy and
#: its own IAM policies allow (kms-api.md, "Cross-account use"); a permission for any other
#: operation has no effect across accounts, as on AWS.
CROSS_ACCOUNT_OPERATIONS = frozenset(
    {
        "CreateGrant",
        "Decapsulate",
        "Decrypt",
        "DeriveSharedSecret",
        "DescribeKey",
        "Encapsulate",
        "Encrypt",
        "GenerateDataKey",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
        "GenerateDataKeyWithoutPlaintext",
        "GenerateMac",
        "GetKeyRotationStatus",
        "GetPublicKey",
        "ListGrants",
        "ReEncryptFrom",
        "ReEncryptTo",
        "RetireGrant",
        "RevokeGrant",
        "Sign",
        "Verify",
        "VerifyMac",
    }
)
_NO_REQUEST: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is calling, from where, in which region."""

    principal: Principal
    region: str
    request_id: str
    source_ip: str = ""

    @property
    def account_id(self) -> str:
        return self.principal.account_id


class Kms:
    """Everything the KMS operations share."""

    def __init__(
        self,
        engine: Engine,
        keystore: SoftwareKeyStore,
        clock: Clock,
        monitor: ChangeMonitor | None = None,
        authorizer: KeyAuthorizer | None = None,
    ) -> None:
        self.engine = engine
        self.authorizer: KeyAuthorizer = authorizer or OpenAccess()
        self.keystore = keystore
        #: the CloudHSM key stores (a ``CloudHsmKeyStores``), set by the composition root
        self.cloudhsm: Any = None
        #: key ARN -> (its last use (operation, time, eventID, requestID) or None, when
        #: tracking began or None), read from the trail; set by the composition root
        self.key_usage: KeyUsageReader | None = None
        self.clock = clock
        self._monitor = monitor
        self._generation = -1
        self._keys: dict[str, KeyRecord | None] = {}
        self._materials: dict[tuple[str, int], bytes] = {}
        self._aliases: dict[tuple[str, str, str], str | None] = {}
        self._grants: dict[tuple[str, str], tuple[grant_repo.GrantRow, ...]] = {}
        self._stores: dict[str, cks_repo.StoreRow | None] = {}
        #: policy allows that read no request-dependent condition key (see KmsAccessControl)
        self._allowed: set[tuple[object, ...]] = set()

    # -- transactions and caches -------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction; caches are dropped after it, committed or not."""
        try:
            with write_transaction(self.engine) as conn:
                yield conn
        finally:
            self.invalidate()

    def locked(self, conn: Connection, rec: KeyRecord, operation: str) -> KeyRecord:
        """Inside a write transaction: the key re-read (and locked) and its state checked
        again, so a decision made on a cached record can never overwrite a newer change."""
        fresh = kms_repo.get_key(conn, rec.key_id, for_update=True)
        if fresh is not None and fresh.region != rec.region:
            fresh = replica_repo.get_replica(conn, fresh, rec.region)
        if fresh is None:
            raise AwsError("NotFoundException", f"Key '{rec.arn}' does not exist")
        check_state(operation, fresh.state, fresh.arn)
        return fresh

    def invalidate(self) -> None:
        forget_loaded_keys()
        self._keys.clear()
        self._materials.clear()
        self._aliases.clear()
        self._grants.clear()
        self._stores.clear()
        self._allowed.clear()

    def _fresh(self) -> None:
        if self._monitor is not None:
            generation = self._monitor.generation()
            if generation != self._generation:
                self.invalidate()
                self._generation = generation
        if max(len(self._keys), len(self._materials), len(self._allowed)) > _CACHE_LIMIT:
            self.invalidate()

    def allowed_before(self, decision: tuple[object, ...]) -> bool:
        """Whether ``decision`` was remembered as an allow since the data last changed (any
        commit, by any process, forgets them all: a policy, a user or a role may have).
        Without a :class:`ChangeMonitor` nothing is remembered."""
        self._fresh()
        return decision in self._allowed

    def remember_allowed(self, decision: tuple[object, ...]) -> None:
        if self._monitor is not None:
            self._allowed.add(decision)

    def load_key(self, key_id: str, region: str | None = None) -> KeyRecord | None:
        """The key's record (cached); with ``region``, the key as seen in that region: its own
        record, a multi-Region key's replica there, or None."""
        try:
            rec = self._keys[key_id]
        except KeyError:
            with self.engine.connect() as conn:
                rec = kms_repo.get_key(conn, key_id)
            self._keys[key_id] = rec
        if rec is None or region is None or rec.region == region:
            return rec
        if not rec.multi_region:
            return None
        return self._replica(rec, region)

    def _replica(self, home: KeyRecord, region: str) -> KeyRecord | None:
        cache_key = f"{home.key_id}@{region}"
        if cache_key in self._keys:
            return self._keys[cache_key]
        with self.engine.connect() as conn:
            rec = replica_repo.get_replica(conn, home, region)
        self._keys[cache_key] = rec
        return rec

    def material(self, rec: KeyRecord, version: int) -> bytes:
        """The unwrapped material of one version of a key (cached)."""
        cache_key = (rec.key_id, version)
        found = self._materials.get(cache_key)
        if found is not None:
            return found
        with self.engine.connect() as conn:
            wrapped = kms_repo.get_material(conn, rec.key_id, version)
        if wrapped is None:
            raise AwsError("InvalidCiphertextException", "")
        material = self.keystore.unwrap_material(rec.material_arn, version, wrapped)
        self._materials[cache_key] = material
        return material

    def key_store(self, store_id: str) -> cks_repo.StoreRow | None:
        """A custom key store's row (cached like the keys)."""
        self._fresh()
        if store_id not in self._stores:
            with self.engine.connect() as conn:
                self._stores[store_id] = cks_repo.get_store(conn, store_id)
        return self._stores[store_id]

    def _visible(self, rec: KeyRecord) -> KeyRecord:
        """A custom-key-store key is Unavailable (unless PendingDeletion) while its store is not
        connected; the stored state (what EnableKey/DisableKey set) returns with the store."""
        if rec.custom_key_store_id is None or rec.state is KeyState.PENDING_DELETION:
            return rec
        store = self.key_store(rec.custom_key_store_id)
        if store is not None and store.connection_state == "CONNECTED":
            return rec
        return rec.replace(state=KeyState.UNAVAILABLE)

    def grants(self, key_id: str, region: str) -> tuple[grant_repo.GrantRow, ...]:
        """Every grant on a key in a region (cached)."""
        found = self._grants.get((key_id, region))
        if found is None:
            with self.engine.connect() as conn:
                found = tuple(grant_repo.list_grants(conn, key_id, region, limit=100_000))
            self._grants[key_id, region] = found
        return found

    def grant(self, grant_id: str) -> grant_repo.GrantRow | None:
        """One grant by id (not cached: grant tokens are rare)."""
        with self.engine.connect() as conn:
            return grant_repo.get_grant(conn, grant_id)

    def _alias_target(self, account_id: str, region: str, name: str) -> str | None:
        cache_key = (account_id, region, name)
        if cache_key in self._aliases:
            return self._aliases[cache_key]
        with self.engine.connect() as conn:
            row = kms_repo.get_alias(conn, account_id, region, name)
        target = None if row is None else row.key_id
        self._aliases[cache_key] = target
        return target

    # -- the pipeline ------------------------------------------------------------------------

    def resolve(
        self,
        ctx: RequestContext,
        key_id: str,
        operation: str,
        *,
        allow_alias: bool = True,
        request: Mapping[str, Any] | None = None,
        encryption_context: Mapping[str, str] | None = None,
    ) -> KeyRecord:
        """The pipeline: resolve a KeyId, load the key, authorize ``operation`` on it, and check
        its state for ``operation``."""
        self._fresh()
        ref = parse_key_ref(key_id, ctx.account_id, ctx.region, allow_alias=allow_alias)
        rec = self.find(ref)
        self.authorize(
            ctx, rec, operation, request=request, encryption_context=encryption_context,
            alias=ref.alias_name,
        )  # fmt: skip
        check_state(operation, rec.state, rec.arn)
        return rec

    def authorize(
        self,
        ctx: RequestContext,
        rec: KeyRecord | None,
        operation: str,
        *,
        request: Mapping[str, Any] | None = None,
        encryption_context: Mapping[str, str] | None = None,
        alias: str | None = None,
    ) -> None:
        """Authorize ``operation`` on a key (or, with ``rec`` None, on the account)."""
        action = "kms:" + _ACTION_OF.get(operation, operation)
        self.authorizer.authorize(
            ctx, action, rec, request or _NO_REQUEST, encryption_context, alias
        )
        if (
            rec is not None
            and rec.account_id != ctx.account_id
            and operation not in CROSS_ACCOUNT_OPERATIONS
        ):  # the policies allowed it, but across accounts that has no effect
            raise AwsError(
                "AccessDeniedException",
                f"User: {ctx.principal.arn} is not authorized to perform: {action} on resource: "
                f"{rec.arn} because {action} cannot be used with a KMS key in another account",
            )

    def resolve_id_only(self, ctx: RequestContext, key_id: str) -> str:
        """The key id a key id or key ARN names (no authorization, no state check)."""
        ref = parse_key_ref(key_id, ctx.account_id, ctx.region, allow_alias=False)
        return self.find(ref).key_id

    def find(self, ref: KeyRef) -> KeyRecord:
        """The key a parsed reference names, or NotFoundException in AWS's wording."""
        if ref.alias_name is not None:
            target = self._alias_target(ref.account_id, ref.region, ref.alias_name)
            if target is None:
                arn = alias_arn(ref.region, ref.account_id, ref.alias_name)
                raise AwsError("NotFoundException", f"Alias {arn} is not found.")
            key_id = target
        else:
            assert ref.key_id is not None
            key_id = ref.key_id
        rec = self.load_key(key_id, ref.region)
        if rec is None or rec.account_id != ref.account_id:
            arn = key_arn(ref.region, ref.account_id, key_id)
            raise AwsError("NotFoundException", f"Key '{arn}' does not exist")
        return self._visible(rec)

    def find_by_id(self, ctx: RequestContext, key_id: str) -> KeyRecord | None:
        """A key by bare id, visible in the caller's region (any account), else None."""
        self._fresh()
        rec = self.load_key(key_id, ctx.region)
        return None if rec is None else self._visible(rec)
