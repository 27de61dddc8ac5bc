"""Fixtures shared by the KMS end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, running_server


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    """A server of its own whose domain clock a test moves (the offset file, in seconds) and
    whose scheduler runs every 0.2 s."""
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    args = ("--scheduler-interval", "0.2", "--clock-offset-file", str(offset))
    with running_server(tmp_path / "data", *args) as srv:
        yield srv, offset
