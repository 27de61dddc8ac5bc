"""I/O errors and a read-only file system under serve (reliability figure A3), injected by
scripts/lazyfs.py (``fail EIO|EROFS``, then ``heal``) while clients create keys and encrypt:
every call is answered and keeps its effect, or is refused 503 with no effect; serve answers
again by itself once the fault ends; then the power is cut, and after a restart on what was
synced everything acknowledged is there. A failed fsync drops the file's unsynced data, as
Linux does, so a later fsync that succeeds does not make it durable: the cut would find an
acknowledgement that rested on it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.storage.fault_support import Tally, check_everything_acknowledged, clients, recovered
from tests.storage.test_power_loss import _fsync_dir, _fuse_unusable, _write

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import crash_kill as ck  # noqa: E402
from lazyfs_state import send  # noqa: E402
from power_loss import mounted  # noqa: E402

pytestmark = pytest.mark.skipif(
    _fuse_unusable() is not None, reason=f"FUSE is not usable here: {_fuse_unusable()}"
)


@pytest.fixture
def fs(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    """lazyfs over tmp_path/backing at tmp_path/data: (backing, mount, control socket)."""
    backing, mount = tmp_path / "backing", tmp_path / "data"
    backing.mkdir(mode=0o700)
    try:
        with mounted(backing, mount, tmp_path / "lazyfs.log") as control:
            yield backing, mount, control
    except RuntimeError as exc:
        pytest.skip(f"FUSE is not usable here: {exc}")


def test_injected_faults_fail_writes_and_a_failed_fsync_loses_the_data(
    fs: tuple[Path, Path, Path],
) -> None:
    backing, mount, control = fs
    _write(mount / "kept", b"synced", fsync=True)
    _fsync_dir(mount)
    fd = os.open(mount / "kept", os.O_WRONLY)
    try:
        os.pwrite(fd, b"SYNCED", 0)  # in the page cache, not yet synced
        assert send(control, "fail EIO") == {"fault": "EIO"}
        with pytest.raises(OSError) as info:
            os.fsync(fd)  # fails, and drops what it should have written
        assert info.value.errno == errno.EIO
        with pytest.raises(OSError) as info:
            os.pwrite(fd, b"x", 0)
        assert info.value.errno == errno.EIO
        assert (mount / "kept").read_bytes() == b"synced"  # reads go on; the write is gone
        send(control, "heal")
        os.fsync(fd)  # succeeds: nothing is left to write
    finally:
        os.close(fd)
    assert send(control, "fail EROFS") == {"fault": "EROFS"}
    for attempt in (
        lambda: open(mount / "new", "wb"),  # noqa: SIM115
        lambda: open(mount / "kept", "r+b"),  # noqa: SIM115
        lambda: (mount / "kept").rename(mount / "moved"),
        (mount / "kept").unlink,
    ):
        with pytest.raises(OSError) as info:
            attempt()
        assert info.value.errno == errno.EROFS
    assert (mount / "kept").read_bytes() == b"synced"
    assert send(control, "heal") == {"fault": None}
    assert send(control, "stats")["faults"] == 6
    assert (backing / "kept").read_bytes() == b"synced"


@pytest.mark.parametrize("fault", ["EIO", "EROFS"])
def test_serve_fails_closed_under_a_fault_heals_and_loses_nothing_to_a_cut_after(
    tmp_path: Path, fault: str
) -> None:
    backing, mount, log = tmp_path / "backing", tmp_path / "data", tmp_path / "serve.log"
    backing.mkdir(mode=0o700)
    tally = Tally()
    try:
        with (
            mounted(backing, mount, tmp_path / "lazyfs.log") as control,
            ck.serve(mount, 1, log, []) as (_, port),
        ):
            kms = ck.aws_client("kms", mount, port)
            key = kms.create_key(Description="fault base")["KeyMetadata"]["KeyId"]
            with clients(lambda: ck.aws_client("kms", mount, port), key, tally):
                time.sleep(1.0)
                send(control, f"fail {fault}")
                time.sleep(1.5)  # calls against the failing file system
                refused = tally.total_refused()
                send(control, "heal")
                after = recovered(kms)  # serve answers again by itself
                time.sleep(1.0)  # and acknowledges more, on what the fault left
            # the power goes: only what was synced is kept
            assert send(control, "cut")["cut"]
    except RuntimeError as exc:
        if "lazyfs did not get ready" in str(exc):
            pytest.skip(f"FUSE is not usable here: {exc}")
        raise
    assert refused > 0, tally.refused
    assert tally.bad == [], tally.bad[:5]
    with (
        mounted(backing, mount, tmp_path / "lazyfs.log"),
        ck.serve(mount, 1, log, []) as (_, port),
    ):
        kms = ck.aws_client("kms", mount, port)
        extra = check_everything_acknowledged(kms, mount, tally, {key, after})
    answered = len(tally.keys) + len(tally.blobs)
    print(f"{fault}: answered {answered}, refused {tally.refused}, refused with effect {extra}")


def test_a_trail_writer_started_during_the_fault_recovers_after_it(tmp_path: Path) -> None:
    """The trail writer stops when its journal cannot be written, and the watchdog starts a new
    one; started while the fault lasts, its first write (the chain head and its epoch) fails.
    It used to retry on the same SQLite connection, which stays unusable after an I/O error,
    and serve refused every call for good (found by the fresh-clone CI, session 23); now each
    try opens new connections."""
    backing, mount, log = tmp_path / "backing", tmp_path / "data", tmp_path / "serve.log"
    backing.mkdir(mode=0o700)
    try:
        with (
            mounted(backing, mount, tmp_path / "lazyfs.log") as control,
            ck.serve(mount, 1, log, []) as (_, port),
        ):
            kms = ck.aws_client("kms", mount, port)
            key = kms.create_key()["KeyMetadata"]["KeyId"]
            first = int((mount / "audit-writer.pid").read_text())
            send(control, "fail EIO")
            deadline = time.monotonic() + 20
            while "restarting it" not in log.read_text():  # a call fails the writer's journal
                assert time.monotonic() < deadline, "the writer was not restarted"
                with contextlib.suppress(ClientError):
                    kms.encrypt(KeyId=key, Plaintext=b"under the fault")
                time.sleep(0.2)
            time.sleep(3.0)  # the new writer's first tries meet the fault
            send(control, "heal")
            recovered(kms)
            assert int((mount / "audit-writer.pid").read_text()) != first
            kms.encrypt(KeyId=key, Plaintext=b"after the fault")
    except RuntimeError as exc:
        if "lazyfs did not get ready" in str(exc):
            pytest.skip(f"FUSE is not usable here: {exc}")
        raise
