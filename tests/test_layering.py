"""Architecture rules that are cheap to check: only ``strongroom.crypto`` imports hazmat."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "strongroom"
HAZMAT = re.compile(r"^\s*(from|import)\s+cryptography\.hazmat", re.MULTILINE)


def test_only_the_crypto_package_imports_hazmat() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if HAZMAT.search(path.read_text()) and path.parent.name != "crypto"
    ]
    assert offenders == []


def test_domain_layers_do_no_io() -> None:
    """The KMS domain is pure: no SQL, HTTP or key store imports."""
    forbidden = re.compile(
        r"^\s*(from|import)\s+(sqlalchemy|uvicorn|msgspec|strongroom\.storage)", re.M
    )
    domain = SRC / "kms" / "domain"
    assert [p.name for p in domain.glob("*.py") if forbidden.search(p.read_text())] == []
