"""Request bodies for scripts/fuzz_wire.py: well-formed ones from botocore's models, and ways to
break them.

:class:`Inputs` walks an operation's input shape and builds a JSON body that mostly satisfies
the model (lengths, ranges, enums), drawing identifiers, ciphertexts, tokens and policies from a
pool of real values so that calls get past validation into the service. :func:`mutate` then
breaks one thing in it (a member of the wrong JSON type, a missing required member, a value out
of range, invalid base64, a lone surrogate, deep nesting, ...), and :func:`raw_bodies` gives
bodies that are not a JSON object at all.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import secrets
import string
import time
from collections.abc import Mapping
from typing import Any

Body = dict[str, Any]

#: characters for free-text strings: printable ASCII plus a few multi-byte and odd ones
ALPHABET = string.ascii_letters + string.digits + "-_/:.*@+= " + "é中🔑\u0000\u200b\x7f"
ODD_STRINGS = [
    "",
    " ",
    "\u0000",
    "\ud800",  # a lone surrogate: valid in JSON's \\u escapes, not in UTF-8
    "a" * 5000,
    "alias/aws/",
    "arn:aws:kms:us-east-1:111122223333:key/",
    "arn:aws:kms:us-east-1:111122223333:alias/",
    "../../etc/passwd",
    "%00%ff",
    "${jndi:ldap://127.0.0.1/a}",
    "' OR 1=1 --",
    "\u202e\u0301",
    "9" * 400,
]
#: a string :func:`encode` replaces with nested arrays or objects (too deep for ``json.dumps``)
DEEP = "\u0001deep:"
ODD_NUMBERS: list[Any] = [-1, 0, 2**31, 2**63, -(2**63) - 1, 10**40, 1.5, -0.0, 1e308]


class Inputs:
    """Model-driven request bodies for the operations of one botocore service model."""

    def __init__(self, model: Mapping[str, Any], rng: random.Random, pool: Mapping[str, list[Any]]):
        self.shapes: Mapping[str, Any] = model["shapes"]
        self.operations: Mapping[str, Any] = model["operations"]
        self.rng = rng
        #: member name -> real values to draw from (KeyId -> key ids, ARNs and aliases, ...)
        self.pool = pool

    def body(self, operation: str) -> Body:
        spec = self.operations[operation].get("input")
        if spec is None:
            return {}
        value = self.value(spec["shape"], "", 0)
        return value if isinstance(value, dict) else {}

    def value(self, shape_name: str, member: str, depth: int) -> Any:
        shape = self.shapes[shape_name]
        kind = shape["type"]
        rng = self.rng
        pooled = self.pool.get(member)
        if pooled and rng.random() < 0.8:
            return rng.choice(pooled)
        if kind == "structure":
            if depth > 4:
                return {}
            required = set(shape.get("required", []))
            return {
                name: self.value(m["shape"], name, depth + 1)
                for name, m in shape.get("members", {}).items()
                if name in required or rng.random() < 0.5
            }
        if kind == "list":
            count = self._size(shape, 3) if depth <= 4 else 0
            item = shape["member"]["shape"]
            return [self.value(item, member, depth + 1) for _ in range(count)]
        if kind == "map":
            count = self._size(shape, 3) if depth <= 4 else 0
            keys, values = shape["key"]["shape"], shape["value"]["shape"]
            return {
                str(self.value(keys, "", depth + 1)): self.value(values, "", depth + 1)
                for _ in range(count)
            }
        return self._scalar(kind, shape)

    def _scalar(self, kind: str, shape: Mapping[str, Any]) -> Any:
        rng = self.rng
        if kind == "string":
            if "enum" in shape and rng.random() < 0.9:
                return rng.choice(shape["enum"])
            return "".join(rng.choice(ALPHABET) for _ in range(self._size(shape, 40)))
        if kind in ("integer", "long"):
            low = int(shape.get("min", 0))
            high = int(shape.get("max", max(low, 0) + 100))
            return rng.randint(low, max(low, min(high, low + 10_000)))
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "blob":
            return base64.b64encode(rng.randbytes(self._size(shape, 64))).decode()
        if kind == "timestamp":
            return time.time() + rng.uniform(-86400 * 400, 86400 * 400)
        if kind in ("double", "float"):
            return rng.uniform(-1e6, 1e6)
        return None

    def _size(self, shape: Mapping[str, Any], cap: int) -> int:
        low = int(shape.get("min", 0))
        high = int(shape.get("max", cap))
        return self.rng.randint(low, max(low, min(high, cap)))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location inside a decoded JSON value (dict keys and list indexes)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append((*prefix, key))
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.append((*prefix, index))
            found += _paths(item, (*prefix, index))
    return found


def _set(body: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        body = body[step]
    body[path[-1]] = value


def _delete(body: Any, path: tuple[Any, ...]) -> None:
    for step in path[:-1]:
        body = body[step]
    del body[path[-1]]


def _odd_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            rng.choice(ODD_STRINGS),
            rng.choice(ODD_NUMBERS),
            True,
            None,
            [],
            {},
            [rng.choice(ODD_STRINGS)],
            {"": rng.choice(ODD_STRINGS)},
            {"a": {"b": {"c": [1, "x", None]}}},
            "not base64!",
            "QUJD",  # base64 of 'ABC', for a blob of the wrong length
            "QQ",  # unpadded base64
        ]
    )


def mutate(body: Body, rng: random.Random) -> tuple[str, Body]:
    """Break one thing in ``body`` (a deep copy is changed); returns (what was done, body)."""
    body = json.loads(json.dumps(body))
    paths = _paths(body)
    choice = rng.randrange(6) if paths else 5
    if choice <= 1:
        path = rng.choice(paths)
        _set(body, path, _odd_value(rng))
        return "odd-value", body
    if choice == 2:
        path = rng.choice(paths)
        _delete(body, path)
        return "drop-member", body
    if choice == 3:
        depth = rng.choice([10, 100, 1000, 100_000])
        _set(body, rng.choice(paths), f"{DEEP}{depth}:{rng.choice('[{')}")
        return "deep-value", body
    if choice == 4:
        path = rng.choice(paths)
        _set(body, path, rng.choice(ODD_NUMBERS))
        return "odd-number", body
    body[rng.choice(["Unknown", "keyId", "KEYID", "__type", ""])] = _odd_value(rng)
    return "extra-member", body


def encode(body: Body) -> bytes:
    """``body`` as JSON, each :data:`DEEP` marker replaced by that many nested levels."""
    text = json.dumps(body)
    marker = json.dumps(DEEP)[1:-1]
    while marker in text:
        start = text.index(marker)
        end = text.index('"', start)
        depth, kind = text[start + len(marker) : end].split(":")
        opened, closed = ("[", "]") if kind == "[" else ('{"a":', "}")
        nested = opened * int(depth) + "1" + closed * int(depth)
        text = text[: start - 1] + nested + text[end + 1 :]
    return text.encode()


def raw_bodies(rng: random.Random) -> list[tuple[str, bytes]]:
    """Bodies that are not (only) a JSON object."""
    deep = rng.choice([100, 1000, 100_000])
    return [
        ("empty", b""),
        ("json-null", b"null"),
        ("json-array", b"[1, 2, 3]"),
        ("json-string", b'"KeyId"'),
        ("json-number", b"1e999"),
        ("truncated", b'{"KeyId": "abc'),
        ("trailing", b'{"KeyId": "abc"} {}'),
        ("not-utf8", b'{"KeyId": "\xff\xfe"}'),
        ("bom", b'\xef\xbb\xbf{"KeyId": "abc"}'),
        ("duplicate-keys", b'{"KeyId": "a", "KeyId": "b"}'),
        ("big-int", b'{"Limit": ' + b"9" * 5000 + b"}"),
        ("nan", b'{"Limit": NaN}'),
        ("deep-array", b"[" * deep + b"]" * deep),
        ("deep-object", b'{"a":' * deep + b"1" + b"}" * deep),
        ("escaped-surrogate", b'{"KeyId": "\\ud800\\udc00\\udfff"}'),
        ("control-chars", b'{"KeyId": "a\x01\x02"}'),
        ("random", rng.randbytes(rng.randrange(1, 256))),
    ]


def build_pool(kms: Any, account: str) -> dict[str, list[Any]]:
    """Real identifiers, blobs and tokens, so that calls get past validation."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    def create(**kwargs: Any) -> dict[str, Any]:
        meta: dict[str, Any] = kms.create_key(**kwargs)["KeyMetadata"]
        return meta

    sym = create(Description="fuzz")
    alias = f"alias/fuzz-{secrets.token_hex(4)}"
    kms.create_alias(AliasName=alias, TargetKeyId=sym["KeyId"])
    rsa_sign = create(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    rsa_enc = create(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    ecc_sign = create(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    ecc_agree = create(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")
    hmac_key = create(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    kem_key = create(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")
    external = create(Origin="EXTERNAL")
    mrk = create(MultiRegion=True)
    keys = [sym, rsa_sign, rsa_enc, ecc_sign, ecc_agree, hmac_key, kem_key, external, mrk]
    context = {"purpose": "fuzz"}
    blob = kms.encrypt(KeyId=sym["KeyId"], Plaintext=b"x" * 32, EncryptionContext=context)
    rsa_blob = kms.encrypt(
        KeyId=rsa_enc["KeyId"], Plaintext=b"y", EncryptionAlgorithm="RSAES_OAEP_SHA_256"
    )
    message = secrets.token_bytes(32)
    signature = kms.sign(KeyId=rsa_sign["KeyId"], Message=message,
                         SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]  # fmt: skip
    mac = kms.generate_mac(KeyId=hmac_key["KeyId"], Message=message, MacAlgorithm="HMAC_SHA_256")
    public = kms.get_public_key(KeyId=ecc_agree["KeyId"])["PublicKey"]
    kem = kms.encapsulate(KeyId=kem_key["KeyId"], EncapsulationAlgorithm="ML_KEM")
    root = f"arn:aws:iam::{account}:root"
    grant = kms.create_grant(KeyId=sym["KeyId"], GranteePrincipal=root, Operations=["Encrypt"])
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*",
              "Principal": {"AWS": root}, "Resource": "*"}]}  # fmt: skip
    key_refs = [k["KeyId"] for k in keys] + [sym["Arn"], alias, alias.replace("alias/", "")]
    key_refs += [
        f"arn:aws:kms:us-east-1:{account}:{alias}",
        "alias/missing",
        secrets.token_hex(16),
    ]
    return {
        "KeyId": key_refs,
        "TargetKeyId": key_refs,
        "DestinationKeyId": key_refs,
        "AliasName": [alias, "alias/aws/fuzz", f"alias/fuzz-{secrets.token_hex(4)}"],
        "CiphertextBlob": [b64(blob["CiphertextBlob"]), b64(rsa_blob["CiphertextBlob"])],
        "EncryptionContext": [context, {}],
        "SourceEncryptionContext": [context],
        "GrantTokens": [[grant["GrantToken"]]],
        "GrantToken": [grant["GrantToken"]],
        "GrantId": [grant["GrantId"]],
        "GranteePrincipal": [root],
        "RetiringPrincipal": [root],
        "Policy": [json.dumps(policy)],
        "PublicKey": [b64(public)],
        "Signature": [b64(signature)],
        "Mac": [b64(mac["Mac"])],
        "SharedSecretCiphertextBlob": [b64(kem["SharedSecretCiphertextBlob"])],
        "Message": [b64(message)],
        "Plaintext": [b64(b"fuzz plaintext")],
        "ReplicaRegion": ["us-west-2", "eu-west-1"],
        "_keys": [k["KeyId"] for k in keys],
    }


def repair(kms: Any, pool: dict[str, list[Any]]) -> None:
    """Undo what fuzzed calls did to the pool's keys (deletion scheduled, disabled)."""
    for key_id in pool["_keys"]:
        with contextlib.suppress(Exception):
            kms.cancel_key_deletion(KeyId=key_id)
        with contextlib.suppress(Exception):
            kms.enable_key(KeyId=key_id)
