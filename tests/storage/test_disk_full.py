"""A full file system (reliability figure A3): serve's data directory on a small tmpfs of its own
is filled while clients create keys and encrypt. Every call either is answered and keeps its
effect and its trail record, or is refused AWS-shaped (503, never a 500 or a traceback) with
no effect; once space returns, serve answers again by itself, without a restart; after one,
everything acknowledged is there and the trail verifies.

A real ENOSPC from the kernel, not an injected one: the test mounts the tmpfs, so it needs
root (CAP_SYS_ADMIN) and skips with the reason where the mount is refused.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import running_server
from tests.storage.fault_support import Tally, check_everything_acknowledged, clients, recovered


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 48 MiB at tmp_path/data (serve's log goes to tmp_path, outside it)."""
    mount = tmp_path / "data"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", str(mount)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    """Take every free block of the file system ``path`` is on."""
    with open(path, "ab", buffering=0) as out:
        for chunk in (1 << 20, 4096, 512):
            with contextlib.suppress(OSError):
                while out.write(bytes(chunk)):
                    pass


def test_a_full_file_system_refuses_calls_without_effect_and_heals(small_fs: Path) -> None:
    tally = Tally()
    with running_server(small_fs) as server:
        kms = server.client()
        key = kms.create_key(Description="disk-full base")["KeyMetadata"]["KeyId"]
        with clients(server.client, key, tally):
            time.sleep(1.0)  # calls answered before the disk fills
            filler = small_fs / "filler"
            _fill(filler)  # while the clients go on
            assert os.statvfs(small_fs).f_bavail == 0
            time.sleep(2.0)  # calls against the full disk
            refused_while_full = tally.total_refused()
            filler.unlink()  # space returns
            after = recovered(kms)  # serve answers again by itself
            time.sleep(1.0)
        assert refused_while_full > 0, tally.refused
        assert tally.bad == [], tally.bad[:5]
    with running_server(small_fs) as server:  # after a restart: everything acknowledged
        extra = check_everything_acknowledged(server.client(), small_fs, tally, {key, after})
    answered = len(tally.keys) + len(tally.blobs)
    assert answered > 0
    print(f"answered {answered}, refused {tally.refused}, refused with effect {extra}")
