"""scripts/fuzz_atheris.py: every target runs clean for a short while, and the harness reports
and keeps a failing input (a target with a planted bug)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris has wheels for x86_64 Linux only")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "fuzz_atheris.py"


def _fuzz(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--seed", "5", *args],
        capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip


def test_every_target_runs_clean(tmp_path: Path) -> None:
    proc = _fuzz(tmp_path, "--runs", "1500", "--seconds", "60")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if " runs in " in line}
    assert sorted(lines) == ["ciphertext", "policy", "request", "sigv4", "verify"], proc.stdout
    for target, line in lines.items():
        runs = int(line.split()[1].replace(",", ""))
        assert runs >= 1500 and line.endswith(": ok"), line
        assert int(line.split("cov ")[1].split(",")[0]) > 10, f"{target} reached no code: {line}"
    assert "total" in proc.stdout and "0 failing targets" in proc.stdout


def test_a_failing_input_is_reported_and_kept(tmp_path: Path) -> None:
    proc = _fuzz(tmp_path, "--targets", "selftest", "--runs", "2000000", "--seconds", "120")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED: Uncaught Python exception" in proc.stdout, proc.stdout
    kept = list(tmp_path.glob("selftest-crash-*"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"planted"), kept
    assert b"bug" in kept[0].read_bytes()
    assert "the self-test's planted bug" in (tmp_path / "selftest.log").read_text("latin-1")


def test_an_unknown_target_is_refused(tmp_path: Path) -> None:
    proc = _fuzz(tmp_path, "--targets", "sigv4,nope")
    assert proc.returncode == 2 and "unknown targets: nope" in proc.stderr
