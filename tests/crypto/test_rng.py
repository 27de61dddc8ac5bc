"""The tested generator's helpers (reliability figure C6): tokens, strings and integers are made
from continuously tested draws, so a repeat latches them as it latches key material; and the
testing-only repeat trigger (:data:`rng.REPEAT_FILE_ENV`) that the end-to-end test uses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from strongroom.crypto import rng


@pytest.fixture
def generator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[bytes], None]]:
    """Replace the process's generator by one over a scripted source; calling the fixture
    with a block makes every later draw repeat that block."""
    stuck: list[bytes] = []

    def source(count: int) -> bytes:
        return (stuck[0] * count)[:count] if stuck else os.urandom(count)

    test_generator = rng._Continuous(source)
    monkeypatch.setattr(rng, "random_bytes", test_generator.draw)
    yield stuck.append


def test_helpers_have_the_lengths_and_alphabets_of_the_secrets_module() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", rng.token_hex(32))
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", rng.token_urlsafe(18))
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", rng.token_urlsafe(24))
    assert re.fullmatch(r"[A-Z2-7]{20}", rng.choice_string("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 20))
    assert rng.choice_string("x", 3) == "xxx"
    assert rng.choice_string("ab", 0) == ""
    assert 0 <= rng.random_int(159) < 2**159
    assert rng.random_int(159) != rng.random_int(159)
    with pytest.raises(ValueError):
        rng.choice_string("", 4)
    with pytest.raises(ValueError):
        rng.choice_string("a" * 257, 4)


def test_choice_string_is_unbiased() -> None:
    """62 characters do not divide 256: without rejection the first 8 would come up 5/4 as
    often as the others. 62,000 draws: each character's count within 25 % of the mean."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    counts = Counter(rng.choice_string(alphabet, 62_000))
    assert set(counts) == set(alphabet)
    assert max(counts.values()) < 1250 and min(counts.values()) > 750


@pytest.mark.parametrize(
    "helper",
    [
        lambda: rng.token_hex(8),
        lambda: rng.token_urlsafe(24),
        lambda: rng.choice_string("abc", 40),
        lambda: rng.random_int(64),
        lambda: rng.random_bytes(32),
    ],
    ids=["token_hex", "token_urlsafe", "choice_string", "random_int", "random_bytes"],
)
def test_every_helper_draws_through_the_continuous_test(
    helper: Callable[[], object], generator: Callable[[bytes], None]
) -> None:
    helper()  # a sound source
    generator(b"\x42")  # now stuck
    with pytest.raises(rng.RngFailure):
        for _ in range(3):  # the first stuck draw differs from the last sound one
            helper()
    with pytest.raises(rng.RngFailure):  # latched, whatever the size of the draw
        rng.random_bytes(1)


def test_a_short_helper_draw_is_still_compared(generator: Callable[[bytes], None]) -> None:
    """Helpers draw at least 8 bytes, so even a 2-character string is compared."""
    generator(b"\x07")
    rng.choice_string("ab", 2)
    with pytest.raises(rng.RngFailure):
        rng.choice_string("ab", 2)


def test_the_repeat_trigger_repeats_the_last_compared_draw(tmp_path: Path) -> None:
    trigger = tmp_path / "repeat"
    source = rng._repeating_while(str(trigger))
    first = source(16)
    assert source(4) != first[:4]  # short draws are not what is repeated
    trigger.touch()
    assert source(12) == first[:12]  # a repeated block
    assert source(40)[:12] == first[:12]
    trigger.unlink()
    assert source(16)[:8] != first[:8]
    generator = rng._Continuous(rng._repeating_while(str(trigger)))
    generator.draw(16)
    trigger.touch()
    with pytest.raises(rng.RngFailure):
        generator.draw(16)
    trigger.unlink()
    with pytest.raises(rng.RngFailure):  # the source is sound again; the latch stays
        generator.draw(16)


def test_the_trigger_is_read_only_when_the_process_starts_with_it(tmp_path: Path) -> None:
    """Without the variable the source is ``os.urandom`` itself (no test hook on the path of a
    draw); with it, the trigger file decides."""
    code = (
        "import os; from strongroom.crypto import rng; print(rng._generator._source is os.urandom)"
    )
    env_without = {k: v for k, v in os.environ.items() if k != rng.REPEAT_FILE_ENV}
    plain = subprocess.run(
        [sys.executable, "-c", code], env=env_without, capture_output=True, text=True, check=True
    )
    assert plain.stdout.strip() == "True"
    hooked = subprocess.run(
        [sys.executable, "-c", code],
        env={**env_without, rng.REPEAT_FILE_ENV: str(tmp_path / "t")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert hooked.stdout.strip() == "False"
