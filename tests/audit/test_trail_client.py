"""The request processes' side of the trail writer (:class:`TrailClient`), against a stand-in
writer on a real abstract Unix socket: the calls of one turn of the loop go out as one frame,
promptly (at the end of that turn) or a turn later, and wait for its acknowledgement."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import struct
import time
from pathlib import Path

import pytest

from strongroom.audit.client import TrailClient
from strongroom.audit.sink import AuditedCall, TrailUnavailable
from strongroom.audit.writer import ACK_FAILED, ACK_OK, decode_frame
from strongroom.server import Config, _trail, usable_cpus

ACCOUNT = "111122223333"


def _call(n: int) -> AuditedCall:
    headers = [(b"x-amz-target", b"TrentService.ListKeys"), (b"user-agent", b"test")]
    return AuditedCall(f"request-{n}", time.time(), "127.0.0.1", headers, "kms", "ListKeys")


def _read_frame(sock: socket.socket) -> list[str]:
    """The request IDs in the next frame the client sent."""
    sock.settimeout(5)
    head = sock.recv(4, socket.MSG_WAITALL)
    (size,) = struct.unpack(">I", head)
    payload = sock.recv(size, socket.MSG_WAITALL)
    return [json.loads(entry.body)["requestID"] for entry in decode_frame(payload)]


async def _one_turn_of_calls(
    prompt: bool, ack: bytes
) -> tuple[int, list[str], list[BaseException | None]]:
    """Three calls recorded in one turn: how many turns until their frame left, the request
    IDs the stand-in writer read from it, and how the calls ended once it answered ``ack``."""
    name = f"strongroom-test-trail-{os.getpid()}-{secrets.token_hex(6)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind("\0" + name)
        listener.listen(1)
        client = TrailClient(name, ACCOUNT, lambda _key: None, prompt=prompt)
        conn = await client._connection()  # connected now: the calls below do not wait for it
        writer_side, _ = listener.accept()
        with writer_side:
            calls = [asyncio.ensure_future(client.outcome(_call(n))) for n in range(3)]
            turns = 0
            while not conn.waiting and turns < 10:
                await asyncio.sleep(0)
                turns += 1
            ids = await asyncio.to_thread(_read_frame, writer_side)
            assert not any(call.done() for call in calls)  # nothing answers before the ack
            writer_side.sendall(ack)
            ended = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
        client.close()
    return turns, ids, ended


@pytest.mark.parametrize("prompt", [True, False])
def test_a_turns_calls_go_as_one_frame_and_wait_for_its_ack(prompt: bool) -> None:
    turns, ids, ended = asyncio.run(_one_turn_of_calls(prompt, ACK_OK))
    assert ids == ["request-0", "request-1", "request-2"]
    assert ended == [None, None, None]
    assert turns <= 3


def test_a_prompt_client_sends_a_turn_sooner() -> None:
    prompt, _, _ = asyncio.run(_one_turn_of_calls(True, ACK_OK))
    later, _, _ = asyncio.run(_one_turn_of_calls(False, ACK_OK))
    assert prompt == later - 1


def test_a_refused_frame_fails_every_call_in_it() -> None:
    _, ids, ended = asyncio.run(_one_turn_of_calls(True, ACK_FAILED))
    assert len(ids) == 3
    assert all(isinstance(end, TrailUnavailable) for end in ended)


def test_serve_sends_promptly_only_with_a_cpu_to_spare(tmp_path: Path) -> None:
    cpus = usable_cpus()
    assert cpus >= 1

    def client_of(workers: int) -> TrailClient:
        config = Config(data_dir=tmp_path, workers=workers, trail_socket="unused")
        sink = _trail(config, _NoIdentities(), None)  # type: ignore[arg-type]
        assert isinstance(sink, TrailClient)
        return sink

    assert client_of(cpus)._prompt is False
    assert client_of(cpus + 1)._prompt is False
    if cpus > 1:
        assert client_of(cpus - 1)._prompt is True


class _NoIdentities:
    def principal(self, access_key_id: str) -> None:
        return None
