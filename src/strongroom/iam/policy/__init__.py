"""The IAM policy engine: parse, validate and evaluate policy documents as AWS does.

Pure code: no I/O, no SQL, no HTTP. Modules:

* :mod:`.document` — JSON → typed, precompiled :class:`Policy` (``parse_policy``);
* :mod:`.principals` — Principal / NotPrincipal;
* :mod:`.matching` — wildcard and ARN patterns for Action, Resource and conditions;
* :mod:`.conditions` — condition operators, ``IfExists``, set operators, Null;
* :mod:`.variables` — policy variables and their escapes;
* :mod:`.values` — numbers, dates, booleans, base64 and IP ranges;
* :mod:`.facts` — the caller and the request context;
* :mod:`.evaluate` — decisions (``evaluate``).
"""

from strongroom.iam.policy.decision import Decision, Effect
from strongroom.iam.policy.document import (
    Policy,
    PolicyKind,
    Statement,
    parse_policy,
    principal_arns,
)
from strongroom.iam.policy.errors import PolicyError
from strongroom.iam.policy.evaluate import evaluate
from strongroom.iam.policy.facts import Caller, CallerType, RequestFacts, global_keys

__all__ = [
    "Caller",
    "CallerType",
    "Decision",
    "Effect",
    "Policy",
    "PolicyError",
    "PolicyKind",
    "RequestFacts",
    "Statement",
    "evaluate",
    "global_keys",
    "parse_policy",
    "principal_arns",
]
