"""Cluster-wide login lockout (reliability figure S3): five consecutive wrong passwords for a
user lock it on every HSM of the cluster, however the guesses are spread over the HSMs.

On one HSM a guess is *admitted* before its password is checked: while the user's counted
failures plus the guesses being checked reach :data:`LOCKOUT_THRESHOLD`, a new guess is refused
(``LIMIT_EXCEEDED``) unchecked, so concurrent logins cannot test more than five passwords. Every
admitted guess, and how it ended, is told to the other HSMs of the cluster before the login
answers (``peer_login_event``, sealed under a sub-key of the cluster's masking key, which only
members hold, and sent over TLS checked against the cluster's trust anchor). The other HSMs count
it as their own, so a guess checked on one HSM uses up the budget on all of them.

A client that logs in on every HSM (the CLI, KMS) stops at the first refusal, so its wrong
password is checked, and counted, once.

Limits: the appliance user is counted per HSM only (its password differs on each HSM and is a
144-bit random string; the control plane logs in with it every few seconds). An HSM that cannot
be reached when a guess is told misses it; it catches up with the next event it receives (each
carries the sender's count and lock). Guesses admitted at the same instant on several HSMs, before
their events cross, are each checked: at most one more guess per further HSM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import msgspec

from strongroom.crypto import rng
from strongroom.crypto.hsm_seal import SealBroken, Sealer
from strongroom.hsm.client_async import AsyncHsmClient
from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.messages import PeerEventArgs, PeersArgs
from strongroom.hsm.registry import Ctx, OpSpec, Registry
from strongroom.hsm.roles import Permission, Role
from strongroom.hsm.users import LOCKOUT_THRESHOLD, UserRecord

if TYPE_CHECKING:
    from strongroom.hsm.node import Node

__all__ = ["PEER_SECONDS", "LoginGuard", "register"]

log = logging.getLogger("strongroom.hsm.lockout")

#: how long a peer waits on another HSM's telling (a dead or stalled peer delays a login by this)
PEER_SECONDS = 1.0
#: a guess told as being checked is forgotten after this if its end is never told
PENDING_SECONDS = 30.0
#: events older or newer than this (by the receiver's clock) are refused
EVENT_WINDOW_SECONDS = 120.0
_NAME = b"peer-login-event"


class _Event(msgspec.Struct, array_like=True):
    origin: str
    username: str
    guess: bytes
    kind: str  # "checking" | "failed" | "succeeded" | "abandoned"
    failures: int
    locked: bool
    time: float


class LoginGuard:
    """One HSM's admitted guesses and counted failures, shared with the other members."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._pending: dict[str, dict[bytes, float]] = {}
        self._counted: dict[str, set[bytes]] = {}
        self._admit: dict[str, asyncio.Lock] = {}
        self._client: AsyncHsmClient | None = None
        self._client_for: tuple[tuple[str, ...], str] = ((), "")
        self._closing: asyncio.Future[None] | None = None

    # --- one login ---------------------------------------------------------------------------

    @staticmethod
    def new_guess() -> bytes:
        """A name for one login's guess, the same in its events on every HSM."""
        return rng.random_bytes(16)

    @contextlib.asynccontextmanager
    async def admitted(self, user: UserRecord, guess: bytes, ctx: Ctx) -> AsyncIterator[None]:
        """Admit one guess for checking, or refuse it while the budget is taken."""
        name = user.username
        shared = user.role_enum is not Role.APPLIANCE_USER
        async with self._admit.setdefault(name, asyncio.Lock()):
            if user.locked:
                raise HsmError(ErrorCode.USER_LOCKED, "the user is locked; an admin must reset it")
            if user.failures + len(self._live_pending(name)) >= LOCKOUT_THRESHOLD:
                raise HsmError(
                    ErrorCode.LIMIT_EXCEEDED,
                    "too many logins for this user are being checked; try again",
                )
            self._pending.setdefault(name, {})[guess] = self._deadline()
            if shared:
                await self._tell(user, guess, "checking")
        outcome = "abandoned"
        try:
            yield
            outcome = "succeeded"
        except HsmError as exc:
            if exc.code is ErrorCode.LOGIN_FAILURE:
                outcome = "failed"
            raise
        finally:
            self._pending.get(name, {}).pop(guess, None)
            if outcome == "failed":
                locked = self.count_failure(user, guess)
                ctx.detail = ctx.detail or f"failure {user.failures}" + (
                    f"; locked after {LOCKOUT_THRESHOLD} consecutive failures" if locked else ""
                )
            elif outcome == "succeeded":
                self._succeeded(user)
            if shared:
                await self._tell(user, guess, outcome)

    def count_failure(self, user: UserRecord, guess: bytes) -> bool:
        """Count a wrong guess once (an event told twice counts once); True if it locked the
        user."""
        counted = self._counted.setdefault(user.username, set())
        if guess in counted:
            return False
        counted.add(guess)
        locked = self._node.users.record_failure(user)
        self._node.persist()
        return locked

    def _succeeded(self, user: UserRecord) -> None:
        self._counted.pop(user.username, None)
        if user.failures and not user.locked:
            self._node.users.record_success(user)
            self._node.persist()

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + PENDING_SECONDS

    def _live_pending(self, name: str) -> dict[bytes, float]:
        now = asyncio.get_running_loop().time()
        pending = self._pending.get(name, {})
        for guess in [g for g, until in pending.items() if until < now]:
            del pending[guess]
        return pending

    # --- the other members -------------------------------------------------------------------

    def _sealer(self) -> Sealer:
        return Sealer(self._node.state.masking_key, "peer-login")

    def _peers(self) -> AsyncHsmClient | None:
        state = self._node.state
        wanted = (tuple(state.peers), state.trust_anchor_pem)
        if not state.peers or not state.trust_anchor_pem:
            return None
        if self._client is None or self._client_for != wanted:
            if self._client is not None:
                self._closing = asyncio.ensure_future(self._client.close())
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.check_hostname = False  # members are named by the cluster chain
            context.load_verify_locations(cadata=state.trust_anchor_pem)
            self._client = AsyncHsmClient(list(state.peers), context, timeout=PEER_SECONDS)
            self._client_for = wanted
        return self._client

    async def _tell(self, user: UserRecord, guess: bytes, kind: str) -> None:
        client = self._peers()
        if client is None:
            return
        node = self._node
        event = _Event(
            node.state.hsm_id, user.username, guess, kind, user.failures, user.locked,
            node.clock.now(),
        )  # fmt: skip
        blob = self._sealer().seal(msgspec.msgpack.encode(event), _NAME)
        calls = [
            client.call_on(i, "peer_login_event", {"blob": blob}) for i in range(len(client.nodes))
        ]
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*calls, return_exceptions=True), PEER_SECONDS * 2
            )
        except TimeoutError:
            results = [TimeoutError()]
        missed = sum(isinstance(r, BaseException) for r in results)
        if missed:
            log.warning("login event for a user not told to %d of the other HSMs", missed)

    def receive(self, ctx: Ctx, blob: bytes) -> None:
        """Apply another member's event (handler of ``peer_login_event``)."""
        node = self._node
        try:
            event = msgspec.msgpack.decode(self._sealer().open(blob, _NAME), type=_Event)
        except (SealBroken, msgspec.DecodeError, msgspec.ValidationError):
            raise HsmError(ErrorCode.PERMISSION_DENIED, "not an event from this cluster") from None
        if abs(node.clock.now() - event.time) > EVENT_WINDOW_SECONDS:
            raise HsmError(ErrorCode.PERMISSION_DENIED, "the event is outside its time window")
        ctx.username = event.username
        ctx.detail = f"{event.kind} on {event.origin}"[:120]
        user = node.users.get(event.username)
        if user is None or event.origin == node.state.hsm_id:
            return
        pending = self._pending.setdefault(user.username, {})
        pending.pop(event.guess, None)
        if event.kind == "checking":
            pending[event.guess] = self._deadline()
        elif event.kind == "failed":
            self.count_failure(user, event.guess)
        elif event.kind == "succeeded":
            self._succeeded(user)
        self._merge(user, event)
        if user.locked:
            ctx.detail += f"; locked after {LOCKOUT_THRESHOLD} consecutive failures"

    def _merge(self, user: UserRecord, event: _Event) -> None:
        """Catch up with the sender's count and lock (an event this HSM missed)."""
        if event.kind == "succeeded" or user.locked:
            return
        if event.failures > user.failures or event.locked:
            user.failures = max(user.failures, event.failures)
            user.locked = event.locked or user.failures >= LOCKOUT_THRESHOLD
            self._node.persist()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def peer_login_event(node: Node, ctx: Ctx, args: PeerEventArgs) -> None:
    """``peer_login_event``: another member admitted, or finished checking, a login guess."""
    node.guard.receive(ctx, args.blob)


def cluster_peers(node: Node, ctx: Ctx, args: PeersArgs) -> dict[str, Any]:
    """``cluster_peers``: the other members' addresses (the control plane, as appliance user)."""
    peers = sorted({p.strip() for p in args.peers if p.strip()})
    if len(peers) > 64:
        raise HsmError(ErrorCode.INVALID_REQUEST, "at most 64 peers")
    node.state.peers = peers
    node.persist()
    ctx.detail = f"{len(peers)} peers"
    return {"peers": peers}


def register(reg: Registry) -> None:
    """Declare this family's operations."""
    log_type = "MGMT_USER_DETAILS_LOG (2)"
    # anyone may send an event: it is authenticated by its seal, not by a session
    reg.add(
        OpSpec(
            "peer_login_event",
            PeerEventArgs,
            Permission.LOGIN,
            "CN_LOGIN_SYNC (0xf1)",
            log_type,
            handler=peer_login_event,
        )
    )
    reg.add(
        OpSpec(
            "cluster_peers",
            PeersArgs,
            Permission.PROVISION,
            "CN_SET_PEERS (0xf2)",
            "MINIMAL_LOG_ENTRY (0)",
            handler=cluster_peers,
        )
    )
