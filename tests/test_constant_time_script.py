"""``scripts/constant_time.py`` (reliability figure S2) works, and its leaky control is caught.

Small sample counts only: no timing assertion on the real paths (a shared machine makes those
flaky), only that each path runs on the real service and refuses every input. The control
compares 64 KiB strings, whose early exit costs microseconds: flagged at 20,000 samples here.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import constant_time
from constant_time_targets import real_targets

from strongroom.errors import AwsError

SAMPLES = 20_000


def test_welch_t_and_the_cropped_tests() -> None:
    assert constant_time.welch_t((3, 6, 14), (3, 6, 14)) == 0.0  # equal classes
    assert constant_time.welch_t((1, 5, 25), (3, 6, 14)) == 0.0  # too few to say
    a = [100 + i % 7 for i in range(20_000)]
    b = [x + 3 for x in a]
    t, test, diff = constant_time.dudect_t(a, b)
    assert t > 100 and diff == pytest.approx(-3.0)
    assert test.startswith("<p") or test == "all"
    same, _, _ = constant_time.dudect_t(a, list(a))
    assert same == 0.0


def test_the_leaky_control_is_flagged_at_a_small_sample_count() -> None:
    control = constant_time.eq_control(65_536)
    result = constant_time.measure(control, SAMPLES, 60, random.Random(1))
    assert result.samples == SAMPLES
    assert result.max_t > constant_time.THRESHOLD and result.ok
    assert result.diff_ns > 0  # class A (wrong only at the end) compares longer


def test_every_real_path_runs_and_refuses_both_classes(tmp_path: Path) -> None:
    with real_targets(tmp_path) as targets:
        names = {t.name for t in targets}
        assert {"sigv4-signature", "kms-verify-mac", "hsm-hmac-verify", "session-token"} <= names
        for target in targets:
            for make in (target.class_a, target.class_b):
                outcome = target.call(make())  # False, no match (None) or an AWS error
                assert outcome in (False, None) or isinstance(outcome, AwsError), target.name
            result = constant_time.measure(target, 2_000, 30, random.Random(2))
            assert result.samples == 2_000 and result.max_t >= 0, target.name


def test_the_script_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--samples", "2000", "--targets", "hsm-hmac-verify", "--control-bytes", "65536"]
    code = constant_time.main(argv)  # 1 only if this busy machine upsets a path or the control
    out = capsys.readouterr().out
    assert "hsm-hmac-verify" in out and "control-eq-65536B" in out
    # at 2,000 samples a heavily loaded machine can hide even the control's microseconds
    # (seen once in CI beside two long benchmark runs): then the run must say so and fail;
    # the control's flagging itself is tested at 20,000 samples above
    assert "flagged (control)" in out or ("CONTROL NOT FLAGGED" in out and code == 1), out
