"""Login sessions: a bearer token per login, shared by all connections of one client, with an
idle timeout. Expired sessions count as logged out; their session keys are destroyed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strongroom.clock import Clock
from strongroom.crypto import rng
from strongroom.hsm.errors import ErrorCode, HsmError
from strongroom.hsm.roles import Role

__all__ = ["Session", "SessionTable"]

TOKEN_BYTES = 32


@dataclass(slots=True)
class Session:
    """One login."""

    handle: int
    token: bytes = field(repr=False)
    username: str
    role: Role
    last_used: float


class SessionTable:
    """Live sessions of one node."""

    def __init__(self, clock: Clock, timeout_seconds: float) -> None:
        self._clock = clock
        self._timeout = timeout_seconds
        self._by_token: dict[bytes, Session] = {}
        self._next_handle = 0x1000

    def open(self, username: str, role: Role) -> Session:
        """A new session for a user that just logged in."""
        self._next_handle += 1
        session = Session(
            self._next_handle, rng.random_bytes(TOKEN_BYTES), username, role, self._clock.now()
        )
        self._by_token[session.token] = session
        return session

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_used > self._timeout

    def resolve(self, token: bytes) -> Session:
        """The live session for ``token`` (touching it), else NOT_LOGGED_IN / SESSION_EXPIRED."""
        session = self._by_token.get(token)
        if session is None:
            raise HsmError(ErrorCode.NOT_LOGGED_IN, "not logged in")
        now = self._clock.now()
        if self._expired(session, now):
            raise HsmError(ErrorCode.SESSION_EXPIRED, "the session timed out; log in again")
        session.last_used = now
        return session

    def close(self, session: Session) -> None:
        """End a session (logout)."""
        self._by_token.pop(session.token, None)

    def expired(self) -> list[Session]:
        """Remove and return every session past its idle timeout."""
        now = self._clock.now()
        gone = [s for s in self._by_token.values() if self._expired(s, now)]
        for s in gone:
            del self._by_token[s.token]
        return gone

    def is_logged_in(self, username: str) -> bool:
        """True if ``username`` has a live session."""
        now = self._clock.now()
        return any(
            s.username == username and not self._expired(s, now) for s in self._by_token.values()
        )

    def logged_in_elsewhere(self, username: str, session: Session | None) -> bool:
        """True if ``username`` has a live session other than ``session``."""
        now = self._clock.now()
        return any(
            s.username == username and s is not session and not self._expired(s, now)
            for s in self._by_token.values()
        )

    def close_all(self, username: str) -> list[Session]:
        """End every session of ``username``."""
        gone = [s for s in self._by_token.values() if s.username == username]
        for s in gone:
            del self._by_token[s.token]
        return gone

    def __len__(self) -> int:
        return len(self._by_token)
