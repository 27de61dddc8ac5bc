"""The root key and the trail's signing key are created once, whole, by whichever of several
processes starting at once gets there first: none of them reads an empty or partial file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_LOAD = {
    "root.key": "from strongroom.rootkey import load_or_create_root_key as f",
    "audit-signing.key": "from strongroom.crypto.audit_sign import load_or_create_signer as f",
}


@pytest.mark.parametrize("name", sorted(_LOAD))
def test_processes_starting_at_once_share_one_whole_key(tmp_path: Path, name: str) -> None:
    for round_ in range(5):
        data_dir = tmp_path / f"d{round_}"
        data_dir.mkdir()
        code = f"import sys, pathlib; {_LOAD[name]}; f(pathlib.Path(sys.argv[1]))"
        procs = [
            subprocess.Popen([sys.executable, "-c", code, str(data_dir)], stderr=subprocess.PIPE)
            for _ in range(6)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err.decode()
        key = data_dir / name
        assert len(key.read_bytes()) == 32 and key.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in data_dir.iterdir()] == [name]  # no temporary file left
