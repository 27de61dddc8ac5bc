"""Every KMS operation of the installed botocore model is called through boto3 or the aws CLI by
some module under tests/ (reliability figure C3, "boto3 for every implemented operation").

A text scan, no server: each module under tests/ is parsed and its calls are matched.

* **boto3**: ``<client>.<snake_name>(...)`` (``botocore.xform_name``) with no positional
  argument and only keywords of the operation's input shape (or ``**kwargs``). That is how a
  boto3 client method is called, and it keeps out ``cryptography``'s ``key.sign(data, ...)`` or
  the Encryption SDK's ``client.decrypt(source=...)``.
* **aws CLI**: the kebab-case command as the first argument of ``Cli.run/json/text``
  (tests/cli_support.py), or ``aws kms <command>`` inside a string.

Modules skipped as a whole by a module-level ``pytestmark`` do not count: they may not run in
the default run. An operation of the model that Strongroom does not implement (not in
``strongroom.kms.ops.registry.OPERATIONS``: it answers UnsupportedOperationException) may go
untested only when :data:`REFUSED_BY_DESIGN` names it with a reason. A new operation in a newer
botocore fails here until a test calls it.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import botocore
import botocore.session

from strongroom.kms.ops.registry import OPERATIONS

TESTS = Path(__file__).resolve().parents[1]
CLI_METHODS = frozenset({"run", "json", "text"})

#: Operations Strongroom refuses by design (UnsupportedOperationException for the whole
#: operation) and that no test calls, each with its reason. Empty: Strongroom implements all 56
#: operations of botocore 1.44.5's model and every one is called through boto3.
REFUSED_BY_DESIGN: dict[str, str] = {}


@functools.cache
def _model() -> dict[str, frozenset[str]]:
    """Operation name -> the member names of its input shape."""
    model = botocore.session.get_session().get_service_model("kms")
    out = {}
    for name in model.operation_names:
        shape = model.operation_model(name).input_shape
        out[name] = frozenset(shape.members) if shape is not None else frozenset()
    return out


def _is_skipped_module(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return "skip" in ast.unparse(node.value)
    return False


def _calls(source: str) -> tuple[set[str], set[str]]:
    """What a module calls: (boto3 operations, aws CLI commands)."""
    model = _model()
    by_snake = {botocore.xform_name(name): name for name in model}
    by_kebab = {snake.replace("_", "-"): name for snake, name in by_snake.items()}
    tree = ast.parse(source)
    boto: set[str] = set()
    cli: set[str] = set()
    if _is_skipped_module(tree):
        return boto, cli
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for command in re.findall(r"\baws kms ([a-z-]+)", node.value):
                if command in by_kebab:
                    cli.add(by_kebab[command])
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr = node.func.attr
        if attr in by_snake and not node.args:
            members = model[by_snake[attr]]
            if all(k.arg is None or k.arg in members for k in node.keywords):
                boto.add(by_snake[attr])
        first = node.args[0] if node.args else None
        if (
            attr in CLI_METHODS
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and first.value in by_kebab
        ):
            cli.add(by_kebab[first.value])
    return boto, cli


def _covered() -> dict[str, list[str]]:
    """Operation -> the test modules that call it (boto3 or CLI)."""
    found: dict[str, list[str]] = {}
    for path in sorted(TESTS.rglob("*.py")):
        if path.resolve() == Path(__file__).resolve():
            continue
        boto, cli = _calls(path.read_text(encoding="utf-8"))
        for operation in boto | cli:
            found.setdefault(operation, []).append(str(path.relative_to(TESTS)))
    return found


def test_every_operation_is_called_through_boto3_or_the_cli() -> None:
    model = _model()
    covered = _covered()
    missing = sorted(set(model) - set(covered) - set(REFUSED_BY_DESIGN))
    assert not missing, f"KMS operations no test calls through boto3 or the aws CLI: {missing}"
    assert len(model) >= 56


def test_only_implemented_operations_are_required_and_refusals_are_real() -> None:
    model = _model()
    covered = _covered()
    unimplemented = set(model) - set(OPERATIONS)
    assert unimplemented <= set(REFUSED_BY_DESIGN), (
        f"operations Strongroom does not implement need a reason in REFUSED_BY_DESIGN: "
        f"{sorted(unimplemented - set(REFUSED_BY_DESIGN))}"
    )
    for name, reason in REFUSED_BY_DESIGN.items():
        assert name in model and reason
        assert name not in covered, f"{name} is tested now: take it out of REFUSED_BY_DESIGN"


def test_the_scan_tells_boto3_calls_from_look_alikes() -> None:
    boto, cli = _calls(
        "kms.list_keys()\n"
        "kms.verify(KeyId=k, Message=m, Signature=s, SigningAlgorithm=a)\n"
        "west.re_encrypt(**args)\n"
        "pub.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())\n"  # cryptography
        "esdk.decrypt(source=blob, key_provider=provider)\n"  # the Encryption SDK
        "pub.encrypt(b'x', oaep)\n"
        "cli.json('create-key', '--description', 'd')\n"
        "run('aws kms schedule-key-deletion --key-id k')\n"
        "cli.run('not-an-operation')\n"
    )
    assert boto == {"ListKeys", "Verify", "ReEncrypt"}
    assert cli == {"CreateKey", "ScheduleKeyDeletion"}
    skipped = "import pytest\npytestmark = pytest.mark.skipif(True, reason='x')\nkms.list_keys()\n"
    assert _calls(skipped) == (set(), set())
