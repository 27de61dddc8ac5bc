"""Pre-operational cryptographic self-tests (reliability figure C5): every known answer and
pairwise check passes on a sound library, and each one, made to fail, keeps ``serve`` and an
HSM node from starting: a named failure, a non-zero status, no port, no data directory.

Every name in ``NAMES`` is injected in turn (``tests/crypto/test_self_test_vectors.py`` checks
that ``NAMES`` holds every name a self-test can fail with); the conditional pairwise tests of
key generation and a repeat in a running process are in ``tests/crypto``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from strongroom.crypto import _self_test_asymmetric, rng
from strongroom.crypto.self_test import FAULT_ENV, NAMES, SelfTestFailure, run_self_tests
from tests.conftest import STRONGROOM, free_port

#: the continuous test's fault is a stuck generator, chosen when the process starts (below)
RNG_TEST = "continuous random number generator test"


def test_a_repeated_draw_latches_the_generator_into_failure() -> None:
    values = iter([b"a" * 16, b"b" * 16, b"b" * 16, b"c" * 16])
    generator = rng._Continuous(lambda n: next(values)[:n])
    assert generator.draw(16) == b"a" * 16
    assert generator.draw(16) == b"b" * 16
    with pytest.raises(rng.RngFailure):
        generator.draw(16)  # the same block again
    with pytest.raises(rng.RngFailure):
        generator.draw(16)  # and from then on, whatever the source gives
    with pytest.raises(rng.RngFailure):
        generator.draw(4)


def test_the_self_tests_pass() -> None:
    run_self_tests()


@pytest.mark.parametrize("name", [n for n in NAMES if n != RNG_TEST])
def test_each_failure_is_caught_and_named(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULT_ENV, name)
    with pytest.raises(SelfTestFailure) as exc:
        run_self_tests()
    assert str(exc.value) == name


def test_an_unexpected_library_error_fails_the_self_tests_by_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def _mlkem() -> None:
        raise ValueError("the library misbehaved")

    tests = _self_test_asymmetric.TESTS
    monkeypatch.setattr(_self_test_asymmetric, "TESTS", (*tests[:-1], _mlkem))
    with pytest.raises(SelfTestFailure) as exc:
        run_self_tests()
    assert str(exc.value) == "mlkem (ValueError)"


SERVE = ("serve", "--port", "{port}", "--data-dir", "{dir}")
HSM_NODE = ("hsm-node", "--data-dir", "{dir}", "--port", "{port}")


@pytest.mark.parametrize(
    ("command", "status", "fault"),
    [(SERVE, 3, "AES-256-GCM encrypt"),
     (SERVE, 3, RNG_TEST),
     (SERVE, 3, "ML-KEM-768 decapsulation"),
     (SERVE, 3, "HMAC-SHA-512"),
     (HSM_NODE, 4, "AES-256-GCM encrypt"),
     (HSM_NODE, 4, RNG_TEST),
     (HSM_NODE, 4, "RSA PKCS#1 v1.5"),
     (HSM_NODE, 4, "AES-KWP unwrap")],
)  # fmt: skip
def test_a_failed_self_test_keeps_the_process_from_starting(
    tmp_path: Path, command: tuple[str, ...], status: int, fault: str
) -> None:
    data = tmp_path / "data"
    args = [a.format(port=free_port(), dir=data) for a in command]
    env = {**os.environ, FAULT_ENV: fault}
    proc = subprocess.run(
        [STRONGROOM, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert proc.returncode == status, proc.stderr
    assert "self-test failed" in proc.stderr and fault in proc.stderr
    assert not data.exists()  # nothing made, nothing served
