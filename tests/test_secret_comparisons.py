"""Lint (reliability figure S2): secrets are compared with ``hmac.compare_digest``, never ``==``.

An ``==``, ``!=``, ``in`` or ``not in`` on a signature, MAC, tag, digest, password or secret stops
at the first differing byte, so its time tells an attacker how much of a guess was right. This
checker walks the AST of every module under ``src/strongroom`` and flags such a comparison when
one operand is *secret-named* and the other is not a public constant.

Secret-named: the operand's identifier, split into words (``snake_case`` and ``camelCase``), has
a word in :data:`SECRET_WORDS` and its last word (the head noun: ``signature_algorithm`` is an
algorithm, ``password_wrapped`` a ciphertext) is not in :data:`METADATA_WORDS`. The identifier
of a name is its name, of an attribute its last attribute, of a subscript its string key (else
its container), of a call its function's name; calls that only convert (``x.encode()``,
``bytes(x)``, ``bytes.fromhex(x)``) take the identifier of what they convert. ``UPPER_CASE``
identifiers are constants written in the source, hence public.

Public operand on the other side (the comparison then leaks nothing secret): a literal (``None``,
a number, a string such as an algorithm name), a tuple/list/set of literals, or an
``UPPER_CASE`` name or attribute (a module constant or an enum member).

What it cannot see: secrets under neutral names (``expected == given``), comparisons made by
``startswith``/``find`` or by a C library. The timing side is ``scripts/constant_time.py``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "strongroom"

SECRET_WORDS = frozenset(
    {
        "signature", "sig", "mac", "hmac", "tag", "digest", "hexdigest", "hash",
        "secret", "password", "passphrase", "passwd", "pin", "otp", "token", "material",
    }
)  # fmt: skip
METADATA_WORDS = frozenset(
    {
        "len", "length", "size", "count", "name", "names", "id", "ids", "type", "kind",
        "algorithm", "algorithms", "alg", "spec", "usage", "version", "format", "state",
        "status", "bits", "wrapped", "sealed", "encrypted",
    }
)  # fmt: skip
_ARGUMENT_CONVERSIONS = frozenset(
    {"bytes", "str", "bytearray", "memoryview", "fromhex", "b64decode", "b64encode",
     "urlsafe_b64decode", "urlsafe_b64encode", "hexlify", "unhexlify"}
)  # fmt: skip
_RECEIVER_CONVERSIONS = frozenset(
    {"encode", "decode", "hex", "lower", "upper", "strip", "lstrip", "rstrip", "casefold"}
)
_OPERATORS = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)

# (module under src/strongroom, the comparison as ast.unparse writes it) -> why it is public.
# An entry that no longer matches anything fails test_the_allow_list_has_no_stale_entries.
ALLOWED: dict[tuple[str, str], str] = {
    # The audit trail's hash chain and digest hashes are SHA-256 over the records themselves:
    # anyone who can read the trail computes them; no key is involved (the digests' signatures
    # are checked with the signing key's verify, not with ==).
    ("audit/store.py", "entry.hash != chain"): "public hash chain",
    ("audit/verify.py", "digest_hash(digest.body, digest.signature) != digest.hash"): (
        "public digest hash"
    ),
    ("audit/verify.py", "fields['prevDigestHash'] != prev_hash"): "public digest hash",
    ("audit/verify.py", "entry_hash(chain, entry.seq, entry.kind, entry.body) != entry.hash"): (
        "public hash chain"
    ),
    # A backup file's SHA-256 against the backup's own manifest: both come from the backup.
    ("backup.py", "_sha256(path) != digest"): "integrity digest of a public file",
    # A NextToken is base64 of a page offset, not a MAC.
    ("cloudhsm/domain.py", "page_token(int(text)) != token"): "pagination token",
    # The SHA-256 of a sealed (encrypted) object file against the node's index on disk; the
    # object is then opened with authenticated encryption.
    ("hsm/store.py", "hashlib.sha256(blob).digest() != digest"): "digest of ciphertext",
}


@dataclass(frozen=True, slots=True)
class Hit:
    """One flagged comparison."""

    module: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.text}"


def words(identifier: str) -> list[str]:
    """``expectedMac`` / ``expected_mac`` -> ``["expected", "mac"]``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", identifier)
    return [w.lower() for w in re.split(r"[_\W]+", spaced) if w]


def identifier(node: ast.expr) -> str | None:
    """The name an operand goes by (see the module docstring), or None for other expressions."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
        return identifier(node.value)
    if isinstance(node, ast.Call):
        func = identifier(node.func)
        if func in _ARGUMENT_CONVERSIONS and node.args:
            return identifier(node.args[0])
        if func in _RECEIVER_CONVERSIONS and isinstance(node.func, ast.Attribute):
            return identifier(node.func.value)
        return func
    return None


def _is_constant_name(name: str) -> bool:
    return name.lstrip("_").isupper()


def secret_named(node: ast.expr) -> bool:
    """True if the operand's identifier names secret material."""
    name = identifier(node)
    if name is None or _is_constant_name(name):
        return False
    parts = words(name)
    return bool(parts) and parts[-1] not in METADATA_WORDS and not SECRET_WORDS.isdisjoint(parts)


def public_constant(node: ast.expr) -> bool:
    """True for a literal, a collection of literals, or an UPPER_CASE name or attribute."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return all(public_constant(e) for e in node.elts)
    if isinstance(node, ast.Name | ast.Attribute):
        name = identifier(node)
        return name is not None and _is_constant_name(name)
    return False


def check_source(source: str, module: str) -> list[Hit]:
    """Every secret comparison in ``source`` (allowed ones included)."""
    hits: list[Hit] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
            if isinstance(op, _OPERATORS) and flagged(left, right):
                hits.append(Hit(module, node.lineno, ast.unparse(node)))
                break
    return hits


def flagged(left: ast.expr, right: ast.expr) -> bool:
    """The rule for one ``==``/``!=``/``in`` between ``left`` and ``right``."""
    if public_constant(left) or public_constant(right):
        return False
    return secret_named(left) or secret_named(right)


def tree_hits() -> list[Hit]:
    """Every secret comparison under src/strongroom, allowed ones included."""
    hits: list[Hit] = []
    for path in sorted(SRC.rglob("*.py")):
        hits += check_source(path.read_text(), path.relative_to(SRC).as_posix())
    return hits


def test_no_secret_is_compared_with_eq_or_in() -> None:
    modules = list(SRC.rglob("*.py"))
    assert len(modules) > 100  # the walk found the package
    offenders = [str(h) for h in tree_hits() if (h.module, h.text) not in ALLOWED]
    assert offenders == [], "use hmac.compare_digest for these (or allow-list with a reason)"


def test_the_allow_list_has_no_stale_entries() -> None:
    found = {(h.module, h.text) for h in tree_hits()}
    assert [entry for entry in ALLOWED if entry not in found] == []


BAD = """
def check(req, expected_mac, claim, expected, tag, user, password, known_tokens, digest):
    if req["Mac"] != expected_mac: ...
    if claim.signature.encode() == expected.encode(): ...
    if tag == compute_tag(b"x"): ...
    if user.password_hash == hashlib.sha256(password).hexdigest(): ...
    if bytes.fromhex(claim.signatureValue) == expected: ...
    if session_token in known_tokens: ...
    ok = secret_key != other
    return digest in (other, expected) or expected == hmac_sign(b"k", b"m")
"""

GOOD = """
def check(req, mac, tag, claim, rec, password, token, secret):
    if not hmac.compare_digest(req["Mac"], mac): ...
    if mac is None or tag == None or len(tag) != 16 or mac == b"": ...
    if req["MacAlgorithm"] == "HMAC_SHA_256" or rec.mac_algorithm != spec: ...
    if claim.signature_algorithm in ALGORITHMS or token in VARIADIC_OPTIONS: ...
    if tag_length == length or password_wrapped != sealed or digest_size == 32: ...
    if EXPECTED_MAC == other or Role.ADMIN == rec.role or secret.kind == "x": ...
    return secrets.compare_digest(password, token) and rec.key_id == claim.key_id
"""


def test_the_checker_flags_a_bad_snippet_and_passes_a_good_one() -> None:
    hits = check_source(BAD, "bad.py")
    assert [h.line for h in hits] == [3, 4, 5, 6, 7, 8, 9, 10, 10], [str(h) for h in hits]
    assert check_source(GOOD, "good.py") == []


# compare_digest sites whose operands have neutral names; the lint could not see an == there.
NEUTRAL_SITES = {
    "crypto/ed25519ph.py": "left/right: two curve points computed from public inputs",
    "crypto/self_test.py": "got/expected: a known-answer test against a published vector",
    "node.py": "a recorded and a computed check value (an HMAC of the root key, a public key's "
    "fingerprint): nothing secret, compared in constant time all the same",
}


def test_every_compare_digest_site_would_be_flagged_as_eq() -> None:
    """Turned into ``a == b``, each of today's compare_digest calls is a hit: the lint guards
    the real sites, not only the synthetic snippet."""
    sites: dict[str, list[bool]] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and identifier(node.func) == "compare_digest":
                left, right = node.args
                sites.setdefault(module, []).append(flagged(left, right))
    assert len(sites) >= 6  # SigV4, VerifyMac, HSM HMAC, session tokens, imported material, ...
    unguarded = sorted(m for m, results in sites.items() if not all(results))
    assert unguarded == sorted(NEUTRAL_SITES)
