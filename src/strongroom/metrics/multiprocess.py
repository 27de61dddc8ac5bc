"""prometheus_client's multiprocess mode for ``serve --workers N``.

Every worker writes its counters and histograms to memory-mapped files in one directory
(``PROMETHEUS_MULTIPROC_DIR``, which ``serve`` sets to ``<data-dir>/metrics-multiproc`` before
the workers start); a scrape of any worker sums all of them. The directory is emptied at each
start so counts of a previous run are not added in.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["MULTIPROC_DIR_NAME", "fresh_multiprocess_dir"]

MULTIPROC_DIR_NAME = "metrics-multiproc"


def fresh_multiprocess_dir(data_dir: Path) -> Path:
    """An empty ``<data-dir>/metrics-multiproc`` (mode 0700)."""
    path = data_dir / MULTIPROC_DIR_NAME
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    return path
