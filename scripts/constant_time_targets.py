"""The comparison paths ``scripts/constant_time.py`` times, each a real Strongroom function.

Every :class:`Target` has two input classes. Where the candidate is compared as given (a SigV4
signature, a VerifyMac MAC, an HSM HMAC tag, imported key material) class A is the right value
with only its last byte changed and class B the right value with its first byte changed: an
early-exit comparison takes longer on A. Where the candidate is hashed before it is compared
(a session token, an HSM password) no caller can choose which bytes of the hash match, so the
classes are dudect's fixed-against-random: A one fixed wrong value, B fresh random wrong values of
the same length. Every input is wrong, so every call takes the refusal path.

The service is composed by ``server.build`` as ``serve`` does it (SQLite in a temporary data
dir, access control on, no audit trail: the trail is written by the HTTP layer, which these
calls do not go through) and closed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key

from strongroom.api.sigv4 import Verifier
from strongroom.bootstrap import ADMIN_USER, ensure_admin
from strongroom.crypto.hsm_symmetric import hmac_sign, hmac_verify
from strongroom.errors import AwsError
from strongroom.hsm.users import Argon2Params, Passwords
from strongroom.kms.ops import _imported
from strongroom.kms.ops.registry import OPERATIONS
from strongroom.kms.service import Kms, RequestContext
from strongroom.server import Config, Runtime, build
from strongroom.storage import lifecycle_repo

ACCOUNT = "111122223333"
REGION = "us-east-1"
# The cheapest Argon2id argon2-cffi accepts: the comparison inside libargon2 is the same at any
# cost, and a cheap hash leaves less noise around it (the node's defaults are 2 / 19456 / 1).
FAST_ARGON2 = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)


#: "path": a real comparison, must stay below 4.5; "info": reported, not judged;
#: "leaky": the positive control, must exceed 4.5; "null": two identical classes, must not.
Kind = Literal["path", "info", "leaky", "null"]


@dataclass(frozen=True, slots=True)
class Target:
    """One timed path: ``call(input)`` for inputs made by ``class_a`` / ``class_b``."""

    name: str
    call: Callable[[Any], object]
    class_a: Callable[[], Any]
    class_b: Callable[[], Any]
    classes: str
    kind: Kind = "path"


def late_and_early(right: bytes) -> tuple[bytes, bytes]:
    """``right`` with its last byte changed, and with its first byte changed."""
    return right[:-1] + bytes([right[-1] ^ 0x01]), bytes([right[0] ^ 0x01]) + right[1:]


def _hex_late_and_early(right: str) -> tuple[str, str]:
    def other(ch: str) -> str:
        return "0" if ch != "0" else "1"

    return right[:-1] + other(right[-1]), other(right[0]) + right[1:]


def copy(value: bytes) -> bytes:
    """An equal bytes object at a new address."""
    return bytes(bytearray(value))


def fresh(value: bytes) -> Callable[[], bytes]:
    """``value``, as a new object for every sample. Both classes get new objects: a reused one
    sits at one address, in the CPU caches, and the t-test would see that, not the comparison."""
    return lambda: copy(value)


def _fresh_text(value: str) -> Callable[[], str]:
    return lambda: value.encode().decode()


def _refused(fn: Callable[[Any], object]) -> Callable[[Any], object]:
    """``fn`` with AwsError (the refusal every input here gets) returned, not raised."""

    def call(arg: Any) -> object:
        try:
            return fn(arg)
        except AwsError as exc:
            return exc

    return call


def _sigv4(runtime: Runtime) -> Target:
    pair = runtime.identities.create_access_key(ACCOUNT, ADMIN_USER)
    body = b'{"KeyId": "alias/app", "Plaintext": "aGVsbG8="}'
    headers = {"X-Amz-Target": "TrentService.Encrypt", "Content-Type": "application/x-amz-json-1.1"}
    request = AWSRequest(method="POST", url="http://127.0.0.1:4599/", data=body, headers=headers)
    signed_at = time.time()
    credentials = Credentials(pair.access_key_id, pair.secret_access_key)
    SigV4Auth(credentials, "kms", REGION).add_auth(request)
    raw = [(k.lower().encode(), str(v).encode("latin-1")) for k, v in request.headers.items()]
    raw.append((b"host", b"127.0.0.1:4599"))
    authorization = dict(raw)[b"authorization"].decode()
    head, signature = authorization.rsplit("Signature=", 1)
    verifier = Verifier(runtime.identities.lookup_secret, frozenset({"kms"}))
    # The right signature verifies: the refusals below are the signature comparison's.
    verifier.verify("POST", "/", b"", raw, body, signed_at)

    def with_signature(sig: str) -> list[tuple[bytes, bytes]]:  # new objects every time
        value = (head + "Signature=" + sig).encode()
        return [(k, value if k == b"authorization" else v) for k, v in raw]

    late, early = _hex_late_and_early(signature)
    return Target(
        "sigv4-signature",
        _refused(lambda h: verifier.verify("POST", "/", b"", h, body, signed_at)),
        lambda: with_signature(late),
        lambda: with_signature(early),
        "Verifier.verify; signature wrong in its last hex digit / its first",
    )


def _verify_mac(kms: Kms, ctx: RequestContext) -> Target:
    spec = {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}
    key_id = OPERATIONS["CreateKey"](kms, ctx, spec)["KeyMetadata"]["KeyId"]
    req = {"KeyId": key_id, "MacAlgorithm": "HMAC_SHA_256", "Message": b"constant time"}
    mac = OPERATIONS["GenerateMac"](kms, ctx, req)["Mac"]
    assert OPERATIONS["VerifyMac"](kms, ctx, {**req, "Mac": mac})["MacValid"]
    late, early = late_and_early(mac)
    return Target(
        "kms-verify-mac",
        _refused(lambda r: OPERATIONS["VerifyMac"](kms, ctx, r)),
        lambda: {**req, "Mac": copy(late)},
        lambda: {**req, "Mac": copy(early)},
        "VerifyMac handler; MAC wrong in its last byte / its first",
    )


def _hsm_hmac() -> list[Target]:
    key, data = os.urandom(32), b"constant time"
    tag = hmac_sign(key, "sha256", data)
    assert hmac_verify(key, "sha256", data, tag)
    late, early = late_and_early(tag)

    def verify(candidate: bytes) -> bool:
        return hmac_verify(key, "sha256", data, candidate)

    what = "hsm_symmetric.hmac_verify (the node's hmac_verify op); tag wrong"
    return [
        Target("hsm-hmac-verify", verify, fresh(late), fresh(early), f"{what} last / first"),
        # The negative control: the same class twice. It shows what the harness reports when
        # there is nothing to find (it found a flaw of the harness itself once).
        Target("null-hsm-hmac", verify, fresh(late), fresh(late), f"{what} last, twice", "null"),
    ]


def _session_token(runtime: Runtime) -> Target:
    trust = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        f'"Principal": {{"AWS": "arn:aws:iam::{ACCOUNT}:root"}}, "Action": "sts:AssumeRole"}}]}}'
    )
    role = runtime.roles.create_role(ACCOUNT, "constant-time", trust)
    creds = runtime.roles.create_session(role, "timing", 3600, "timing")
    akid, token = creds.access_key_id, creds.session_token
    runtime.identities.authenticate(akid, token)  # the right token is accepted

    def random_token() -> str:
        return secrets.token_urlsafe(96)[: len(token)]

    fixed = random_token()
    return Target(
        "session-token",
        _refused(lambda t: runtime.identities.authenticate(akid, t)),
        _fresh_text(fixed),
        random_token,
        "IdentityStore.authenticate; one fixed wrong token / random wrong tokens",
    )


def _imported_material(kms: Kms, ctx: RequestContext) -> Target:
    made = OPERATIONS["CreateKey"](kms, ctx, {"Origin": "EXTERNAL"})["KeyMetadata"]["KeyId"]
    wrapping = {"WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}
    params = OPERATIONS["GetParametersForImport"](kms, ctx, {"KeyId": made, **wrapping})
    public = load_der_public_key(params["PublicKey"])
    material = os.urandom(32)
    oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
    encrypted = public.encrypt(material, oaep)  # type: ignore[union-attr]
    OPERATIONS["ImportKeyMaterial"](
        kms,
        ctx,
        {
            "KeyId": made,
            "ImportToken": params["ImportToken"],
            "EncryptedKeyMaterial": encrypted,
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        },
    )
    rec = kms.resolve(ctx, made, "DescribeKey")
    with kms.engine.connect() as conn:
        known = lifecycle_repo.list_imported(conn, rec.key_id)
    assert _imported._matching(kms, rec, known, material) is not None
    late, early = late_and_early(material)
    return Target(
        "kms-imported-material",
        lambda m: _imported._matching(kms, rec, known, m),
        fresh(late),
        fresh(early),
        "ImportKeyMaterial's reimport check; material wrong in its last byte / its first",
    )


def _hsm_passwords() -> list[Target]:
    passwords = Passwords(FAST_ARGON2)
    stored = passwords.hash("right-password-1")
    assert passwords.verify(stored, "right-password-1")

    def random_password() -> str:
        return secrets.token_hex(8)

    fixed = random_password()
    return [
        Target(
            "hsm-password",
            lambda p: passwords.verify(stored, p),
            _fresh_text(fixed),
            random_password,
            "Passwords.verify (Argon2id 1/8 KiB/1); one fixed wrong password / random ones",
        ),
        # Not judged: the classes are two long-lived objects (the user's hash, the dummy) and
        # two code paths (``password_hash or self._dummy``); |t| ranged 2.9-11.8 at 10^6
        # samples, tens of ns at most, on a check of ~20 ms at the node's defaults. The login
        # operation also writes a known user's failure to the sealed store, and an unknown
        # user's not; bench/login_bench.py times both kinds of failed login.
        Target(
            "hsm-unknown-user",
            lambda h: passwords.verify(h, fixed),
            lambda: stored,
            lambda: None,
            "Passwords.verify; a known user's hash / none (unknown user: the dummy hash)",
            kind="info",
        ),
    ]


@contextlib.contextmanager
def real_targets(workdir: Path) -> Iterator[list[Target]]:
    """Every real comparison path, on a service composed in ``workdir`` (closed afterwards)."""
    config = Config(data_dir=workdir / "data", insecure_no_audit_trail=True)
    runtime = build(config)
    try:
        ensure_admin(runtime.config.data_dir, runtime.identities, runtime.roles, ACCOUNT, REGION)
        principal = runtime.identities.principal(
            runtime.identities.create_access_key(ACCOUNT, ADMIN_USER).access_key_id
        )
        assert principal is not None
        ctx = RequestContext(principal, REGION, "constant-time")
        yield [
            _sigv4(runtime),
            _verify_mac(runtime.kms, ctx),
            *_hsm_hmac(),
            _session_token(runtime),
            _imported_material(runtime.kms, ctx),
            *_hsm_passwords(),
        ]
    finally:
        runtime.close()
