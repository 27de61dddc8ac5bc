"""An event loop in a daemon thread, for calling the async HSM client from synchronous code
that many threads run at once (KMS request handlers; the CLI's one-thread facade is
:mod:`strongroom.hsm.client_sync`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["Bridge"]

T = TypeVar("T")


class Bridge:
    """Runs coroutines on its own loop; :meth:`run` blocks the calling thread until done."""

    def __init__(self, name: str = "kms-cloudhsm") -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name=name, daemon=True).start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)
