"""Module rules for the HSM area: only strongroom.crypto imports cryptography's hazmat; no
module of the HSM area grows past the size limit; every module declares __all__."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "strongroom"
HSM_FILES = [
    *sorted((SRC / "hsm").glob("*.py")),
    SRC / "crypto" / "asymmetric.py",
    SRC / "crypto" / "x509.py",
    *sorted((SRC / "crypto").glob("hsm_*.py")),
]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_hazmat_only_in_crypto() -> None:
    for path in [*SRC.rglob("*.py"), *Path(__file__).parent.rglob("*.py")]:
        if (SRC / "crypto") in path.parents:
            continue
        assert not any(n.startswith("cryptography.hazmat") for n in _imports(path)), path


def test_hsm_modules_small_and_declared() -> None:
    for path in HSM_FILES:
        text = path.read_text()
        if path.name != "__init__.py":
            assert "__all__" in text, path
        assert len(text.splitlines()) <= 420, path
