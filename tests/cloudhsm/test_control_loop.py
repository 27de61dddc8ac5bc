"""The cluster control loop's pacing (in process, on a real SQLite database): a pass every
``interval`` while a cluster or a backup is in hand, every ``idle_interval`` otherwise, and one
at once after a write through the control."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.cloudhsm import domain as d
from strongroom.cloudhsm.backups import PENDING_DELETION, Backup
from strongroom.cloudhsm.control import ClusterControl
from strongroom.storage.engine import open_engine, sqlite_url
from strongroom.storage.migrations import apply_migrations

T0 = 1_700_000_000.0


@pytest.fixture
def control(tmp_path: Path) -> Iterator[ClusterControl]:
    engine = open_engine(sqlite_url(str(tmp_path / "strongroom.db")))
    apply_migrations(engine, lambda: T0)
    ctl = ClusterControl(engine, tmp_path, lambda: T0)
    yield ctl
    ctl.stop()
    engine.dispose()


def _counting(ctl: ClusterControl) -> list[float]:
    """The times of the control's passes from now on."""
    passes: list[float] = []
    ctl.passes.append(lambda: passes.append(time.monotonic()))
    return passes


def _wait(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_with_nothing_in_hand_a_pass_reports_idle(control: ClusterControl) -> None:
    assert control.reconcile() is False


def test_a_backup_pending_deletion_keeps_the_loop_busy(control: ClusterControl) -> None:
    backup = Backup(
        backup_id="backup-abcdefghijk", account_id="111122223333", region="us-east-1",
        cluster_id="cluster-abcdefghijk", state=PENDING_DELETION, created=T0,
        hsm_type="hsm1.medium", mode="FIPS", trust_anchor="", cluster_certificate="",
        delete_ts=T0 + 7 * 86400,
    )  # fmt: skip
    control.backups.save(backup)
    assert control.reconcile() is True
    backup.delete_ts = T0 - 1  # due: this pass deletes it, and nothing is left in hand
    control.backups.save(backup)
    assert control.reconcile() is False


def test_idle_passes_are_paced_and_a_write_starts_one_at_once(control: ClusterControl) -> None:
    control.interval = 0.01
    control.idle_interval = 3600.0  # idle: no pass of its own during this test
    passes = _counting(control)
    control.start()
    # the first pass comes after `interval`; it finds nothing, so the next waits an hour
    _wait(lambda: len(passes) == 1)
    time.sleep(0.3)
    assert len(passes) == 1
    with control.write():
        pass
    _wait(lambda: len(passes) == 2)


def test_stop_ends_an_idle_wait_at_once(control: ClusterControl) -> None:
    control.interval = 0.01
    control.idle_interval = 3600.0
    passes = _counting(control)
    control.start()
    _wait(lambda: len(passes) == 1)
    stopper = threading.Thread(target=control.stop)
    stopper.start()
    stopper.join(10)
    assert not stopper.is_alive()


def test_one_failing_cluster_does_not_hold_up_the_others(
    control: ClusterControl, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for cid in ("cluster-aaaaaaaaaaa", "cluster-bbbbbbbbbbb"):
        control.save_cluster(
            d.Cluster(cid, "111122223333", "us-east-1", "hsm2m.medium", d.ACTIVE, {}, T0)
        )
    stepped: list[str] = []

    def step(cluster: d.Cluster) -> None:  # a fault no request can cause: the step raises
        if cluster.cluster_id == "cluster-aaaaaaaaaaa":
            raise RuntimeError("stuck")
        stepped.append(cluster.cluster_id)

    monkeypatch.setattr(control, "_cluster_step", step)
    assert control.reconcile() is True
    assert stepped == ["cluster-bbbbbbbbbbb"]
    assert "cluster-aaaaaaaaaaa: its control step failed" in caplog.text
