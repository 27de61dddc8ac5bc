"""One HSM node: its sealed state, users, keys, sessions and audit log, and the call pipeline.

Every call runs: resolve the session → decode typed arguments → check the Role × Permission table
→ run the handler → write an audit record (successes, refusals and failures alike). Handlers that
are slow (Argon2, RSA key generation) run their heavy part in a thread and their state changes back
on the event loop, so all state is touched by one thread.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from strongroom.clock import Clock, SystemClock
from strongroom.crypto import rng
from strongroom.crypto.asymmetric import PrivateKey, PublicKey, load_private, load_public
from strongroom.crypto.hsm_symmetric import AesGcmKey, CryptoFailure, random_bytes
from strongroom.crypto.x509 import encrypted_private_pem, generate_node_key, self_signed_certificate
from strongroom.hsm.audit import AuditLog, AuditRecord
from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.hsm_types import DEFAULT_HSM_TYPE, HSM_TYPES, HsmTypeLimits
from strongroom.hsm.lockout import LoginGuard
from strongroom.hsm.objects import KeyObject, KeyTable
from strongroom.hsm.protocol import PROTOCOL_VERSION, RequestIn
from strongroom.hsm.registry import Ctx, OpSpec, Registry
from strongroom.hsm.roles import Role, check
from strongroom.hsm.sessions import Session, SessionTable
from strongroom.hsm.store import NodeState, SealedStore, write_private_file
from strongroom.hsm.users import (
    ADMIN_USERNAME,
    APPLIANCE_USERNAME,
    Argon2Params,
    Passwords,
    UserTable,
)

__all__ = ["CallResult", "Node", "NodeConfig"]

log = logging.getLogger("strongroom.hsm.node")
T = TypeVar("T")
CallResult = tuple[int, str, Any]
MAX_DETAIL = 256  # characters of an audit record's detail (which may quote a request)
Handle = AesGcmKey | PrivateKey | PublicKey


@dataclass(frozen=True)
class NodeConfig:
    """How to run one node."""

    data_dir: Path
    az: str = "us-east-1a"
    hsm_id: str | None = None
    session_timeout: float = 600.0
    argon2: Argon2Params = field(default_factory=Argon2Params)
    #: a key of :data:`~strongroom.hsm.hsm_types.HSM_TYPES`: what the node holds at most
    hsm_type: str = DEFAULT_HSM_TYPE


def _new_hsm_id() -> str:
    return "hsm-" + base64.b32encode(os.urandom(10)).decode().lower()[:11]


def _decode_args(spec: OpSpec, raw: msgspec.Raw) -> Any:
    """The typed arguments; msgspec reports a string that is not UTF-8 as UnicodeDecodeError, not
    as a validation error, so it is turned into INVALID_REQUEST here."""
    try:
        return spec.decoder.decode(raw)
    except UnicodeDecodeError:
        raise HsmError(
            ErrorCode.INVALID_REQUEST, "invalid arguments: a string is not UTF-8"
        ) from None


class Node:
    """The HSM: state plus the call pipeline. Not thread-safe: call from the event loop."""

    def __init__(self, config: NodeConfig, registry: Registry, clock: Clock | None = None) -> None:
        self.config = config
        self.limits: HsmTypeLimits = HSM_TYPES[config.hsm_type]
        self.clock: Clock = clock or SystemClock()
        self.registry = registry
        self.passwords = Passwords(config.argon2)
        self.store = SealedStore(config.data_dir)
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hsm-work")
        self._handles: dict[int, Handle] = {}
        self.zeroize_requested = False
        self.join_secret: bytes | None = None
        self.on_certificate_change: Callable[[], None] = lambda: None
        fresh = not self.store.exists
        if fresh:
            self.state, keys = self._initialize(), list[KeyObject]()
        else:
            self.state, keys = self.store.load()
        self.state.reboot_counter += 1
        self.users = UserTable(self.state.users)
        self.keys = KeyTable(keys)
        self.sessions = SessionTable(self.clock, config.session_timeout)
        self.guard = LoginGuard(self)
        self.audit = AuditLog(config.data_dir / "audit.log", self.store.sealer("audit"))
        self.persist()
        self.write_tls_files()
        self._boot_records(fresh)
        self.audit.flush()

    # --- state -----------------------------------------------------------------------------

    def _initialize(self) -> NodeState:
        self.store.initialize()
        identity = generate_node_key()
        hsm_id = self.config.hsm_id or _new_hsm_id()
        cert = self_signed_certificate(identity, f"HSM:{hsm_id}:PARTN:0")
        state = NodeState(hsm_id, self.config.az, 0, False, [], identity, cert, random_bytes(32))
        users = UserTable()
        users.add(ADMIN_USERNAME, Role.UNACTIVATED_ADMIN, "")
        pin = rng.token_urlsafe(18)[:24]
        users.add(APPLIANCE_USERNAME, Role.APPLIANCE_USER, self.passwords.hash(pin))
        write_private_file(self.config.data_dir / "appliance-user.pin", pin.encode())
        state.users = users.records()
        self.store.save_state(state)
        return state

    def _boot_records(self, fresh: bool) -> None:
        steps = ["CN_INIT_TOKEN (0x1)", "CN_GEN_PSWD_ENC_KEY (0x1d)"] if fresh else []
        for opcode in steps:
            self.record(None, opcode, "MINIMAL_LOG_ENTRY (0)", ErrorCode.SUCCESS, [], "", True)
        if fresh:
            self.record(
                None,
                "CN_CREATE_APPLIANCE_USER (0xfc)",
                "MGMT_USER_DETAILS_LOG (2)",
                ErrorCode.SUCCESS,
                [],
                APPLIANCE_USERNAME,
                True,
            )
        detail = f"reboot {self.state.reboot_counter}"
        self.record(
            None,
            "CN_INIT_DONE (0x95)",
            "MINIMAL_LOG_ENTRY (0)",
            ErrorCode.SUCCESS,
            [],
            detail,
            True,
        )

    def persist(self) -> None:
        """Seal and write the index (users, certificates, object digests)."""
        self.state.users = self.users.records()
        self.store.save_state(self.state)

    def put_key(self, key: KeyObject) -> None:
        """Add or replace a key; token keys are sealed to disk before this returns."""
        if key.attrs["token"]:
            key.session = 0
            self.store.save_object(self.state, key)
            self.keys.add(key)
            self.persist()
        else:
            self.keys.add(key)
        self._handles.pop(key.ref, None)

    def drop_key(self, ref: int) -> None:
        """Destroy a key everywhere."""
        key = self.keys.remove(ref)
        self._handles.pop(ref, None)
        if key.session == 0:
            self.store.delete_object(self.state, ref)
            self.persist()

    def handle(self, key: KeyObject) -> Handle:
        """A loaded crypto handle for ``key`` (cached)."""
        found = self._handles.get(key.ref)
        if found is None:
            if key.key_class == "secret-key":
                found = AesGcmKey(key.material) if key.key_type == "aes" else None
            elif key.key_class == "private-key":
                found = load_private(key.material)
            else:
                found = load_public(key.material)
            if found is None:
                raise CryptoFailure("no cipher handle for this key type")
            self._handles[key.ref] = found
        return found

    def write_tls_files(self) -> None:
        """Write the TLS key (encrypted) and the certificate the node presents."""
        d = self.config.data_dir
        pem = encrypted_private_pem(self.state.identity_key, self.tls_password)
        write_private_file(d / "tls-key.pem", pem)
        cert = self.state.cluster_cert_pem or self.state.self_signed_pem
        write_private_file(d / "hsm-certificate.pem", cert.encode(), 0o644)

    @property
    def tls_password(self) -> bytes:
        """The password of ``tls-key.pem`` (derived from the node key)."""
        return self.store.derived_secret("tls-key").hex().encode()

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-heavy work off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # --- sessions ----------------------------------------------------------------------------

    def end_session(self, session: Session) -> None:
        """Close a session and destroy its session keys."""
        self.sessions.close(session)
        for ref in self.keys.session_keys(session.handle):
            self.drop_key(ref)

    def expire_sessions(self) -> None:
        """Close idle sessions (run periodically and on an expired token)."""
        for session in self.sessions.expired():
            for ref in self.keys.session_keys(session.handle):
                self.drop_key(ref)
            self.record(
                session,
                "CN_CLOSE_SESSION",
                "MINIMAL_LOG_ENTRY (0)",
                ErrorCode.SUCCESS,
                [],
                "idle timeout",
                False,
            )

    def _context(self, token: bytes | None) -> Ctx:
        if token is None:
            if not self.state.activated:
                return Ctx(None, Role.UNACTIVATED_ADMIN, ADMIN_USERNAME)
            return Ctx(None, Role.UNAUTHENTICATED, "")
        try:
            session = self.sessions.resolve(token)
        except HsmError as exc:
            if exc.code is ErrorCode.SESSION_EXPIRED:
                self.expire_sessions()
            raise
        return Ctx(session, session.role, session.username)

    # --- audit ---------------------------------------------------------------------------------

    def record(
        self,
        session: Session | None,
        opcode: str,
        log_type: str,
        code: ErrorCode,
        keys: list[int],
        detail: str,
        sync: bool,
        user: str = "",
        role: Role | None = None,
    ) -> None:
        """Append an audit record (written before the call's response is sent)."""
        detail = detail[:MAX_DETAIL]
        who = session.username if session else user
        kind = (session.role if session else role or Role.UNAUTHENTICATED).audit_type
        rec = AuditRecord(
            0,
            self.state.reboot_counter,
            int(self.clock.now() * 1e6),
            session.handle if session else 0,
            who,
            kind,
            opcode,
            code.text,
            int(code),
            log_type,
            keys,
            detail,
        )
        self.audit.append(rec, sync)

    def _audit(self, spec: OpSpec | None, ctx: Ctx, code: ErrorCode) -> None:
        opcode = spec.opcode if spec else "CN_UNKNOWN_OPCODE"
        log_type = spec.log_type if spec else "MINIMAL_LOG_ENTRY (0)"
        sync = spec.management if spec else False
        self.record(
            ctx.session, opcode, log_type, code, ctx.keys, ctx.detail, sync, ctx.username, ctx.role
        )

    # --- the call pipeline -----------------------------------------------------------------

    def call(self, req: RequestIn) -> CallResult | Coroutine[Any, Any, CallResult]:
        """Run one request; slow operations return a coroutine for the server to await."""
        spec = self.registry.get(req.op)
        ctx = Ctx(None, Role.UNAUTHENTICATED, "")
        try:
            if req.v != PROTOCOL_VERSION:
                raise HsmError(ErrorCode.UNSUPPORTED_VERSION, f"protocol version {req.v}")
            if spec is None:
                raise HsmError(ErrorCode.UNKNOWN_OPERATION, "unknown operation")
            ctx = self._context(req.token)
            args = _decode_args(spec, req.args)
            check(ctx.role, spec.permission_for(ctx, args))
            if spec.async_handler is not None:
                return self._call_async(spec, ctx, args)
            assert spec.handler is not None
            result = spec.handler(self, ctx, args)
        except Exception as exc:
            return self._failed(spec, ctx, exc)
        self._audit(spec, ctx, ErrorCode.SUCCESS)
        return (0, "", result)

    async def _call_async(self, spec: OpSpec, ctx: Ctx, args: Any) -> CallResult:
        assert spec.async_handler is not None
        try:
            result = await spec.async_handler(self, ctx, args)
        except Exception as exc:
            return self._failed(spec, ctx, exc)
        self._audit(spec, ctx, ErrorCode.SUCCESS)
        return (0, "", result)

    def _failed(self, spec: OpSpec | None, ctx: Ctx, exc: Exception) -> CallResult:
        if isinstance(exc, HsmError):
            code, message = exc.code, exc.message
        elif isinstance(exc, CryptoFailure):
            code, message = ErrorCode.CRYPTO_FAILED, str(exc)
        elif isinstance(exc, msgspec.ValidationError | msgspec.DecodeError):
            code, message = ErrorCode.INVALID_REQUEST, f"invalid arguments: {exc}"
        else:
            log.exception("internal error in %s", spec.name if spec else "?")
            code, message = ErrorCode.INTERNAL, "internal error"
        self._audit(spec, ctx, code)
        return (int(code), message, None)

    def close(self) -> None:
        """Flush the audit log and release resources."""
        self.audit.close()
        self.executor.shutdown(wait=False)
