"""A deadline on every wait for PostgreSQL, kept by the client.

A PostgreSQL that is stopped but still reachable (its processes suspended, a backend stuck,
a pooler in between that no longer forwards) leaves the connection's TCP healthy: the kernel
acknowledges what serve sends and answers keepalives, so neither ``tcp_user_timeout`` nor
keepalives fire, and a statement would wait for ever, holding the worker's event loop and
every request on it. Here each round trip of a connection (a statement, a fetch, a commit,
the pool's ping) must finish within ``deadline`` seconds; past it the connection is closed and
the call raises :class:`psycopg.OperationalError`, which SQLAlchemy takes for a lost
connection (dropped from its pool) and the API answers as 503, the database unavailable.

Only ``serve``'s engines (the store and the trail, in the request processes and the trail
writer) carry a deadline; the command-line tools' long exports and verifications do not, nor
do schema migrations.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import psycopg
from psycopg import errors

__all__ = ["DEADLINE_ENV", "PG_STATEMENT_DEADLINE", "DeadlineConnection", "statement_deadline"]

log = logging.getLogger(__name__)

#: Seconds a round trip to PostgreSQL may take in ``serve``: past the ``tcp_user_timeout`` of a
#: partition (10 s), so both faults answer alike, and far past any statement of a request.
PG_STATEMENT_DEADLINE = 15.0

#: Overrides :data:`PG_STATEMENT_DEADLINE` (seconds; ``0`` for none).
DEADLINE_ENV = "STRONGROOM_PG_STATEMENT_DEADLINE"

#: psycopg's own timeout of a wait (an OperationalError): internal to psycopg, so found by name
_WAIT_TIMEOUT: type[BaseException] = getattr(errors, "_WaitTimeout", TimeoutError)


def statement_deadline() -> float | None:
    """The deadline of ``serve``'s PostgreSQL round trips, from :data:`DEADLINE_ENV` if set."""
    raw = os.environ.get(DEADLINE_ENV, "").strip()
    if not raw:
        return PG_STATEMENT_DEADLINE
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{DEADLINE_ENV} must be a number of seconds, not {raw!r}") from None
    if not 0 <= seconds <= 3600:  # NaN fails too
        raise ValueError(f"{DEADLINE_ENV} must be between 0 (none) and 3600 seconds")
    return seconds or None


class DeadlineConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait on the server ends within :attr:`deadline`."""

    deadline: float | None = None

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        limit = self.deadline if timeout is None else timeout
        try:
            return super().wait(gen, interval, limit)
        except _WAIT_TIMEOUT:
            if timeout is not None:  # psycopg's own limit (cancel, close): its exception
                raise
            # the protocol stopped half way: the connection cannot be used again
            self.pgconn.finish()
            log.warning("PostgreSQL gave no answer within %.1f s; connection closed", limit)
            raise psycopg.OperationalError(
                f"PostgreSQL gave no answer within {limit:g} s; the connection was closed"
            ) from None
