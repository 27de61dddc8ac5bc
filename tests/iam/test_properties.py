"""Property tests: the evaluator against an independent reference model, and AWS's invariants.

Together the properties below run 18,000 generated policy/request pairs (deterministic:
``derandomize=True``). Hypothesis draws a seed per example and the policy and request are built
from it with :class:`random.Random` (drawing each element through Hypothesis costs ~5 ms an
example; a seed keeps 18,000 examples well inside the time budget; a failure prints the case).
The reference model is written separately from the engine, with :func:`fnmatch.fnmatchcase` for
wildcards and plain set logic for principals and conditions.
"""

from __future__ import annotations

import fnmatch
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.iam.policy import Caller, Effect, Policy, RequestFacts, evaluate, parse_policy
from strongroom.iam.policy.evaluate import applies
from strongroom.iam.policy.matching import ArnPattern, Glob
from strongroom.iam.policy.variables import parse_template

A, B = "111122223333", "444455556666"
ROLE = f"arn:aws:iam::{A}:role/ops/Deployer"
CALLERS = [
    Caller(f"arn:aws:iam::{A}:root", A, "Root"),
    Caller(f"arn:aws:iam::{A}:user/bob", A, "User", username="bob", userid="AIDABOB"),
    Caller(f"arn:aws:iam::{A}:user/alice", A, "User", username="alice"),
    Caller(f"arn:aws:sts::{A}:assumed-role/Deployer/s1", A, "AssumedRole", ROLE, userid="AROA:s1"),
    Caller(f"arn:aws:iam::{B}:user/eve", B, "User", username="eve"),
    Caller(f"arn:aws:iam::{B}:root", B, "Root"),
    Caller("ec2.amazonaws.com", "", "Service"),
]
AWS_NAMES = [
    A, B, f"arn:aws:iam::{A}:root", f"arn:aws:iam::{B}:root", f"arn:aws:iam::{A}:user/bob",
    f"arn:aws:iam::{B}:user/eve", ROLE, f"arn:aws:sts::{A}:assumed-role/Deployer/s1",
    f"arn:aws:sts::{A}:assumed-role/Deployer/s2",
]  # fmt: skip
SERVICES = ["ec2.amazonaws.com", "s3.amazonaws.com"]
ACTION_PATTERNS = [
    "*", "kms:*", "kms:Encrypt", "KMS:decrypt", "kms:*crypt", "kms:Re*", "kms:?ncrypt",
    "kms:GenerateDataKey*", "sts:*", "kms:Schedule?eyDeletion",
]  # fmt: skip
ACTIONS = [
    "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair", "kms:ScheduleKeyDeletion", "sts:AssumeRole",
]  # fmt: skip
KEYS = [f"arn:aws:kms:us-east-1:{A}:key/k1", f"arn:aws:kms:us-east-1:{A}:key/k2"]
RESOURCES = [*KEYS, f"arn:aws:kms:eu-west-1:{B}:key/k1"]
RESOURCE_PATTERNS = [
    "*", *KEYS, f"arn:aws:kms:*:{A}:key/*", f"arn:aws:kms:us-east-1:{B}:key/*",
    f"arn:aws:kms:us-east-?:{A}:key/k?", "arn:aws:kms:*:*:*", "arn:aws:kms:*:*:alias/*",
]  # fmt: skip


def _values(ctx: dict[str, tuple[str, ...]], key: str) -> tuple[str, ...]:
    return ctx.get(key, ())


# Each condition: (JSON, reference predicate over the lower-cased request context).
CONDITIONS: list[tuple[dict[str, Any], Callable[[dict[str, tuple[str, ...]]], bool]]] = [
    ({"StringEquals": {"kms:EncryptionContext:App": "x"}},
     lambda c: "x" in _values(c, "kms:encryptioncontext:app")),
    ({"StringNotEquals": {"kms:EncryptionContext:app": "x"}},
     lambda c: "x" not in _values(c, "kms:encryptioncontext:app")),
    ({"StringEqualsIfExists": {"KMS:EncryptionContext:APP": ["x", "z"]}},
     lambda c: not _values(c, "kms:encryptioncontext:app")
     or bool({"x", "z"} & set(_values(c, "kms:encryptioncontext:app")))),
    ({"StringLike": {"aws:username": "b*"}},
     lambda c: any(v.startswith("b") for v in _values(c, "aws:username"))),
    ({"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["App", "Stage"]}},
     lambda c: all(v in ("App", "Stage") for v in _values(c, "kms:encryptioncontextkeys"))),
    ({"ForAnyValue:StringLike": {"kms:EncryptionContextKeys": "S*"}},
     lambda c: any(v.startswith("S") for v in _values(c, "kms:encryptioncontextkeys"))),
    ({"Null": {"kms:EncryptionContextKeys": "false"}},
     lambda c: bool(_values(c, "kms:encryptioncontextkeys"))),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
     lambda c: any(v.startswith("10.") for v in _values(c, "aws:sourceip"))),
    ({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}},
     lambda c: not any(v.startswith(("10.", "192.168.")) for v in _values(c, "aws:sourceip"))),
    ({"StringEquals": {"kms:CallerAccount": A}}, lambda c: A in _values(c, "kms:calleraccount")),
    ({"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}},
     lambda c: bool(_values(c, "aws:username"))
     and _values(c, "aws:username")[0] in _values(c, "kms:encryptioncontext:owner")),
]  # fmt: skip


@dataclass(frozen=True)
class Case:
    statements: list[dict[str, Any]]
    refs: list[list[Callable[[dict[str, tuple[str, ...]]], bool]]]
    facts: RequestFacts


def _some(rnd: random.Random, pool: list[str], max_size: int = 3) -> list[str]:
    return rnd.sample(pool, rnd.randint(1, min(max_size, len(pool))))


def _principal(rnd: random.Random) -> Any:
    shape = rnd.randrange(4)
    if shape == 0:
        return "*"
    if shape == 1:
        return {"AWS": _some(rnd, [*AWS_NAMES, "*"])}
    if shape == 2:
        return {"Service": _some(rnd, SERVICES, 2)}
    return {"AWS": _some(rnd, AWS_NAMES), "Service": _some(rnd, SERVICES, 1)}


def _conditions(rnd: random.Random) -> tuple[dict[str, dict[str, Any]], list[Any]]:
    condition: dict[str, dict[str, Any]] = {}
    refs = []
    for index in rnd.sample(range(len(CONDITIONS)), rnd.choice([0, 0, 1, 2])):
        block, ref = CONDITIONS[index]
        for op, keys in block.items():
            if op in condition and {k.lower() for k in keys} & {k.lower() for k in condition[op]}:
                continue
            condition.setdefault(op, {}).update(keys)
            refs.append(ref)
    return condition, refs


def make_statement(rnd: random.Random) -> tuple[dict[str, Any], list[Any]]:
    """A random resource-policy statement and the reference predicates of its conditions."""
    out: dict[str, Any] = {"Effect": rnd.choice(["Allow", "Deny"])}
    out[rnd.choice(["Principal", "Principal", "NotPrincipal"])] = _principal(rnd)
    if rnd.randrange(20):  # rarely omit: KMS accepts it, the statement never applies
        out[rnd.choice(["Action", "Action", "NotAction"])] = _some(rnd, ACTION_PATTERNS)
    if rnd.randrange(20):
        out[rnd.choice(["Resource", "Resource", "NotResource"])] = _some(rnd, RESOURCE_PATTERNS, 2)
    condition, refs = _conditions(rnd)
    if condition:
        out["Condition"] = condition
    return out, refs


def make_request(rnd: random.Random) -> RequestFacts:
    """A random request: caller, action, resource, encryption context and source IP."""
    names = rnd.sample(["App", "app", "Stage", "owner"], rnd.randrange(4))
    pairs = {name: rnd.choice(["x", "y", "bob"]) for name in names}
    ctx: dict[str, tuple[str, ...]] = {f"kms:EncryptionContext:{k}": (v,) for k, v in pairs.items()}
    if pairs or rnd.randrange(2):
        ctx["kms:EncryptionContextKeys"] = tuple(pairs)
    if rnd.randrange(2):
        ctx["aws:SourceIp"] = (rnd.choice(["10.1.2.3", "192.168.0.9", "203.0.113.5"]),)
    caller = rnd.choice(CALLERS)
    return RequestFacts(rnd.choice(ACTIONS), rnd.choice(RESOURCES), caller, ctx)


def make_case(seed: int, min_size: int = 1) -> Case:
    rnd = random.Random(seed)
    drawn = [make_statement(rnd) for _ in range(rnd.randint(min_size, 6))]
    return Case([s for s, _ in drawn], [r for _, r in drawn], make_request(rnd))


SEEDS = st.integers(min_value=0, max_value=2**64 - 1)
cases = SEEDS.map(make_case)
statements = SEEDS.map(lambda seed: make_statement(random.Random(seed)))
requests = SEEDS.map(lambda seed: make_request(random.Random(seed)))


def _parse(stmts: list[dict[str, Any]]) -> Policy:
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": stmts}), kind="resource")


# ---- the reference model --------------------------------------------------------------------


def _ref_names(principal: Any) -> set[str]:
    if principal == "*":
        return {"*"}
    names = {f"svc:{s}" for s in principal.get("Service", [])}
    for name in principal.get("AWS", []):
        names.add(f"arn:aws:iam::{name}:root" if name.isdigit() else name)
    return names


def _chain(caller: Caller) -> list[str]:
    if caller.type == "Service":
        return [f"svc:{caller.arn}"]
    root = f"arn:aws:iam::{caller.account_id}:root"
    return (
        [root]
        + ([caller.role_arn] if caller.role_arn else [])
        + ([caller.arn] if caller.type != "Root" else [])
    )


def _ref_principal(s: dict[str, Any], caller: Caller) -> int:
    """0: no match, 1: through the account, 2: direct."""
    if "NotPrincipal" in s:
        names = _ref_names(s["NotPrincipal"])
        return 2 if "*" not in names and any(i not in names for i in _chain(caller)) else 0
    names, chain = _ref_names(s["Principal"]), _chain(caller)
    if (
        "*" in names
        or any(i in names for i in chain[1:])
        or (caller.type in ("Root", "Service") and chain[0] in names)
    ):
        return 2
    return 1 if chain[0] in names else 0


def _ref_resource(pattern: str, value: str) -> bool:
    if pattern == "*":
        return True
    p, v = pattern.split(":", 5), value.split(":", 5)
    return len(p) == len(v) == 6 and all(
        fnmatch.fnmatchcase(x, y) for x, y in zip(v, p, strict=True)
    )


def _ref_applies(s: dict[str, Any], refs: list[Any], f: RequestFacts) -> int:
    acts, ress = s.get("Action", s.get("NotAction")), s.get("Resource", s.get("NotResource"))
    if acts is None or ress is None:
        return 0
    if any(fnmatch.fnmatchcase(f.action.lower(), a.lower()) for a in acts) == ("NotAction" in s):
        return 0
    if any(_ref_resource(r, f.resource) for r in ress) == ("NotResource" in s):
        return 0
    ctx: dict[str, tuple[str, ...]] = {}
    if f.principal.type != "Service":
        ctx["kms:calleraccount"] = (f.principal.account_id,)
    if f.principal.type == "User" and f.principal.username:
        ctx["aws:username"] = (f.principal.username,)
    for key, values in f.context.items():  # keys differing in case are one key: merge values
        merged = ctx.get(key.lower(), ())
        ctx[key.lower()] = merged + tuple(v for v in values if v not in merged)
    return _ref_principal(s, f.principal) if all(ref(ctx) for ref in refs) else 0


def _reference(case: Case) -> tuple[Effect, bool]:
    found = [
        (s["Effect"], _ref_applies(s, r, case.facts))
        for s, r in zip(case.statements, case.refs, strict=True)
    ]
    if any(e == "Deny" and m for e, m in found):
        return Effect.DENY, False
    best = max((m for e, m in found if e == "Allow"), default=0)
    return (Effect.ALLOW, best == 1) if best else (Effect.NONE, False)


def _outcome(p: Policy, f: RequestFacts) -> tuple[Effect, bool]:
    d = evaluate(p, f, match_principal=True)
    return d.effect, d.delegated


def examples(count: int) -> settings:
    """Deterministic settings for ``count`` generated examples."""
    return settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


@examples(6000)
@given(cases)
def test_decision_equals_the_reference_model(case: Case) -> None:
    assert _outcome(_parse(case.statements), case.facts) == _reference(case)


@examples(2000)
@given(cases)
def test_explicit_deny_wins_and_no_allow_means_none(case: Case) -> None:
    p = _parse(case.statements)
    hits = [
        (s.deny, applies(s, case.facts, match_principal=True)) for s in p.statements if s.effective
    ]
    effect = evaluate(p, case.facts, match_principal=True).effect
    if any(deny and m for deny, m in hits):
        assert effect is Effect.DENY
    elif any(m for _, m in hits):
        assert effect is Effect.ALLOW
    else:
        assert effect is Effect.NONE


@examples(2000)
@given(SEEDS.map(lambda seed: make_case(seed, 2)), st.randoms(use_true_random=False))
def test_statement_order_never_matters(case: Case, rnd: Any) -> None:
    shuffled = list(case.statements)
    rnd.shuffle(shuffled)
    assert _outcome(_parse(shuffled), case.facts) == _outcome(_parse(case.statements), case.facts)


@examples(2000)
@given(cases, statements)
def test_adding_a_deny_never_turns_a_deny_into_an_allow(
    case: Case, extra: tuple[dict[str, Any], Any]
) -> None:
    deny = {**extra[0], "Effect": "Deny"}
    before = evaluate(_parse(case.statements), case.facts, match_principal=True).effect
    after = evaluate(_parse([*case.statements, deny]), case.facts, match_principal=True).effect
    assert after is not Effect.ALLOW or before is Effect.ALLOW
    assert before is not Effect.DENY or after is Effect.DENY


@examples(2000)
@given(statements, requests)
def test_not_elements_are_complements(drawn: tuple[dict[str, Any], Any], f: RequestFacts) -> None:
    base = {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
    s = drawn[0]
    actions = s.get("Action", s.get("NotAction", ["kms:*"]))
    resources = s.get("Resource", s.get("NotResource", ["*"]))
    principal = s.get("Principal", s.get("NotPrincipal"))

    def hit(**elements: Any) -> bool:
        stmt = {k: v for k, v in {**base, **elements}.items() if v is not None}
        return evaluate(_parse([stmt]), f, match_principal=True).allowed

    assert hit(Action=actions) is not hit(Action=None, NotAction=actions)
    assert hit(Resource=resources) is not hit(Resource=None, NotResource=resources)
    # NotPrincipal is the complement of Principal identity by identity along the caller's chain.
    names = _ref_names(principal)
    per_identity = [
        hit(Principal=_exact(i)) for i in _chain(f.principal) if i in names or "*" in names
    ]
    excluded_all = "*" in names or len(per_identity) == len(_chain(f.principal))
    assert hit(Principal=None, NotPrincipal=principal) is not excluded_all


def _exact(identity: str) -> Any:
    return {"Service": identity[4:]} if identity.startswith("svc:") else {"AWS": identity}


wild_text = st.text(alphabet="ab:*?/", max_size=12)
plain_text = st.text(alphabet="ab:/", max_size=12)


@examples(2000)
@given(wild_text, plain_text)
def test_wildcards_match_like_fnmatch(pattern: str, value: str) -> None:
    assert Glob(pattern).match(value) is fnmatch.fnmatchcase(value, pattern)
    arn = ArnPattern.compile(parse_template(pattern, variables=True))
    assert arn.matches(value, {}) is _ref_resource(pattern, value)


NEGATIONS = [
    ("StringEquals", "StringNotEquals", ["x", "y"]),
    ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", ["X"]),
    ("StringLike", "StringNotLike", ["x*", "?y"]),
    ("NumericEquals", "NumericNotEquals", ["5", "7"]),
    ("DateEquals", "DateNotEquals", ["1000"]),
    ("IpAddress", "NotIpAddress", ["10.0.0.0/8"]),
    ("ArnLike", "ArnNotLike", ["arn:aws:iam::*:user/x*"]),
]
request_values = st.lists(
    st.sampled_from(
        [
            "x",
            "X",
            "xy",
            "yy",
            "5",
            "7",
            "4.5",
            "1000",
            "999",
            "10.2.3.4",
            "11.0.0.1",
            "arn:aws:iam::1:user/xa",
            "arn:aws:iam::1:role/x",
        ]
    ),
    max_size=3,
)


@examples(1000)
@given(st.sampled_from(NEGATIONS), request_values)
def test_negated_operators_are_complements(
    pair: tuple[str, str, list[str]], values: list[str]
) -> None:
    positive, negative, policy_values = pair
    f = RequestFacts("kms:Encrypt", KEYS[0], CALLERS[1], {"custom:k": tuple(values)})

    def hit(op: str) -> bool:
        stmt = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "*",
            "Resource": "*",
            "Condition": {op: {"custom:k": policy_values}},
        }
        return evaluate(_parse([stmt]), f, match_principal=True).allowed

    assert hit(positive) is not hit(negative)


@examples(1000)
@given(SEEDS)
def test_the_remembered_prefilter_changes_no_decision(seed: int) -> None:
    """One parsed policy answering many requests agrees with a fresh parse for each."""
    rnd = random.Random(seed)
    statements = [make_statement(rnd)[0] for _ in range(rnd.randint(1, 6))]
    shared = _parse(statements)
    for _ in range(8):
        f = make_request(rnd)
        assert _outcome(shared, f) == _outcome(_parse(statements), f)
