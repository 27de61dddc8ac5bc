"""Pre-operational cryptographic self-tests (reliability figure C5): every known answer and
pairwise check passes on a sound library, and each one, made to fail, keeps ``serve`` and an
HSM node from starting: a named failure, a non-zero status, no port, no data directory."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from strongroom.crypto.self_test import FAULT_ENV, NAMES, SelfTestFailure, run_self_tests
from tests.conftest import STRONGROOM, free_port


def test_the_self_tests_pass() -> None:
    run_self_tests()


@pytest.mark.parametrize("name", NAMES)
def test_each_failure_is_caught_and_named(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, name)
    with pytest.raises(SelfTestFailure) as exc:
        run_self_tests()
    assert str(exc.value) == name


@pytest.mark.parametrize(
    ("command", "status"),
    [(("serve", "--port", "{port}", "--data-dir", "{dir}"), 3),
     (("hsm-node", "--data-dir", "{dir}", "--port", "{port}"), 4)],
)  # fmt: skip
def test_a_failed_self_test_keeps_the_process_from_starting(
    tmp_path: Path, command: tuple[str, ...], status: int
) -> None:
    data = tmp_path / "data"
    args = [a.format(port=free_port(), dir=data) for a in command]
    env = {**os.environ, FAULT_ENV: "AES-256-GCM encrypt"}
    proc = subprocess.run(
        [STRONGROOM, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert proc.returncode == status, proc.stderr
    assert "self-test failed" in proc.stderr and "AES-256-GCM encrypt" in proc.stderr
    assert not data.exists()  # nothing made, nothing served
