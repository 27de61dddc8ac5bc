"""eventIDs: version-7 UUIDs, unique across threads and forked processes, in time order."""

from __future__ import annotations

import os
import threading
import time
import uuid

from strongroom.audit.events import new_event_id


def _millis(event_id: str) -> int:
    return int(event_id.replace("-", "")[:12], 16)


def test_event_ids_are_version_7_uuids_carrying_the_time() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_event_id() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    for event_id in ids:
        parsed = uuid.UUID(event_id)
        assert str(parsed) == event_id
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
    stamps = [_millis(event_id) for event_id in ids]
    assert before <= stamps[0] and stamps[-1] <= after
    assert stamps == sorted(stamps)  # the index's right edge, as the docstring says
    assert len(set(ids)) == len(ids)


def test_threads_never_share_an_event_id() -> None:
    results: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def make(into: list[str]) -> None:
        start.wait()
        into.extend(new_event_id() for _ in range(40_000))

    threads = [threading.Thread(target=make, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [event_id for out in results for event_id in out]
    assert len(every) == 160_000
    assert len(set(every)) == len(every)


def test_a_forked_child_draws_its_own_random_part() -> None:
    read_end, write_end = os.pipe()
    parent_ids = [new_event_id() for _ in range(3)]
    pid = os.fork()
    if pid == 0:  # the child: write its ids and leave at once
        try:
            os.write(write_end, " ".join(new_event_id() for _ in range(3)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_ids = pipe.read().decode().split()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(child_ids) == 3
    # the last 48 bits are drawn once per process: the child's differ from its parent's
    assert {i.rsplit("-", 1)[1] for i in child_ids} != {i.rsplit("-", 1)[1] for i in parent_ids}
    assert not set(child_ids) & {*parent_ids, *(new_event_id() for _ in range(3))}
