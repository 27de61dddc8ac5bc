"""Attaching to a custom key store's cluster, one at a time per store: request threads and the
sweeper that find the connection missing or stale at once log in once and share the result,
instead of each closing the connection the others' calls are running on.

The interleaving of threads is the fault here and no test can time it against real HSM
nodes, so the HSM client is a stand-in that counts logins and remembers closing (the attach
path with real nodes runs in tests/cloudhsm/test_custom_key_store.py and test_quorum_kill.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from strongroom.kms.keystores.cloudhsm import CloudHsmKeyStores


class _Client:
    """What ``_attach`` asks of an HSM client: a slow login, logout, close."""

    logins: list[_Client]

    def __init__(self) -> None:
        self.nodes = ("10.0.0.1:2223", "10.0.1.1:2223")
        self.closed = False

    async def login(self, *args: object) -> None:
        _Client.logins.append(self)
        await asyncio.sleep(0.05)  # long enough for every thread to arrive meanwhile

    async def logout(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch) -> CloudHsmKeyStores:
    _Client.logins = []
    keystores = CloudHsmKeyStores(SimpleNamespace(passes=[]), root=None)  # type: ignore[arg-type]
    keystores._sweeper = threading.Thread(target=lambda: None)  # no sweep loop: called by hand
    monkeypatch.setattr(keystores, "_client", lambda cluster_id: _Client())
    monkeypatch.setattr(keystores, "_password", lambda row: "kmsuser-password")
    return keystores


def _row(sealed: bytes) -> Any:
    return SimpleNamespace(store_id="cks-1", cluster_id="cluster-1", password_wrapped=sealed)


def _at_once(*works: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(len(works))

    def run(work: Callable[[], Any]) -> Any:
        barrier.wait()
        return work()

    with ThreadPoolExecutor(len(works)) as pool:
        return [f.result() for f in [pool.submit(run, work) for work in works]]


def _closed(conn: Any) -> bool:
    return bool(conn.client.closed)


def test_threads_that_find_no_connection_log_in_once(stores: CloudHsmKeyStores) -> None:
    row = _row(b"sealed-1")
    got = _at_once(*[lambda: stores._conn(row)] * 8)
    assert len(_Client.logins) == 1
    assert {id(c) for c in got} == {id(got[0])} and not _closed(got[0])
    assert stores._conn(row) is got[0]  # and the next call uses it


def test_a_new_password_and_the_sweeper_at_once_log_in_once(stores: CloudHsmKeyStores) -> None:
    first = stores._conn(_row(b"sealed-1"))
    # the store was reconnected (its password rotated, sealed anew): every thread sees the
    # connection stale, and the sweeper, holding the old one, re-attaches as well
    row = _row(b"sealed-2")
    got = _at_once(*[lambda: stores._conn(row)] * 8, lambda: stores._attach(row, first))
    assert len(_Client.logins) == 2
    assert {id(c) for c in got} == {id(got[0])}
    assert got[0] is not first and _closed(first) and not _closed(got[0])
    assert got[0].sealed == b"sealed-2"
    # a sweep that comes later with the connection it saw replaced takes the new one too
    assert stores._attach(row, first) is got[0] and len(_Client.logins) == 2
    # one asked to replace the current connection itself does log in again
    again = stores._attach(row, got[0])
    assert again is not got[0] and _closed(got[0]) and len(_Client.logins) == 3
