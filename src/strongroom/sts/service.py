"""STS: GetCallerIdentity and AssumeRole over the AWS Query protocol, as boto3's sts client
speaks it (form-encoded ``Action=...&Version=2011-06-15``, XML answers, SigV4 service ``sts``)."""

from __future__ import annotations

import json
import re
import time
from typing import Any
from xml.sax.saxutils import escape

from strongroom.api.app import QueryService
from strongroom.api.sigv4 import SignedIdentity
from strongroom.errors import AwsError
from strongroom.iam.authorize import Authorizer
from strongroom.iam.identities import IdentityStore
from strongroom.iam.policy import PolicyError, global_keys, parse_policy
from strongroom.iam.principal import Principal
from strongroom.iam.roles import RoleStore
from strongroom.storage.iam_repo import SessionAttributes
from strongroom.sts.session_tags import session_tags

__all__ = ["sts_service"]

_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
_ROLE_ARN = re.compile(r"arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})")
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}")
_SOURCE_IDENTITY = re.compile(r"[\w+=,.@-]{2,64}")
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}")
# Query services answer authentication failures with their own codes (and 403).
_QUERY_CODES = {
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "ExpiredTokenException": ("ExpiredToken", 400),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "AccessDeniedException": ("AccessDenied", 403),
}
_CHAINED_MAX = 3600
_POLICY_MAX = 2048  # characters of an inline session policy


def _validation(value: str, member: str, constraint: str) -> AwsError:
    return AwsError(
        "ValidationError",
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}",
    )


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _xml(action: str, result: str, request_id: str) -> bytes:
    return (
        f'<{action}Response xmlns="{_NS}">\n'
        f"  <{action}Result>\n{result}  </{action}Result>\n"
        f"  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n"
        f"  </ResponseMetadata>\n</{action}Response>\n"
    ).encode()


def _render_error(err: AwsError, request_id: str) -> tuple[bytes, int]:
    code, status = _QUERY_CODES.get(err.code, (err.code, err.status))
    kind = "Receiver" if status >= 500 else "Sender"
    body = (
        f'<ErrorResponse xmlns="{_NS}">\n  <Error>\n    <Type>{kind}</Type>\n'
        f"    <Code>{escape(code)}</Code>\n    <Message>{escape(err.message)}</Message>\n"
        f"  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
    )
    return body.encode(), status


def _caller_identity(who: Principal, request_id: str) -> bytes:
    result = (
        f"    <Arn>{escape(who.arn)}</Arn>\n    <UserId>{escape(who.unique_id)}</UserId>\n"
        f"    <Account>{who.account_id}</Account>\n"
    )
    return _xml("GetCallerIdentity", result, request_id)


class _Sts:
    def __init__(
        self, identities: IdentityStore, roles: RoleStore, authz: Authorizer, secure: bool
    ) -> None:
        self._identities = identities
        self._roles = roles
        self._authz = authz
        self._secure = secure

    def call(
        self, action: str, params: dict[str, str], who: SignedIdentity, ip: str, rid: str
    ) -> bytes:
        principal = self._identities.authenticate(who.access_key_id, who.session_token)
        if action == "GetCallerIdentity":
            return _caller_identity(principal, rid)
        if action == "AssumeRole":
            keys = global_keys(ip, who.region, self._secure, time.time())
            return self._assume_role(principal, params, keys, rid)
        raise AwsError("InvalidAction", f"Could not find operation {action} for version 2011-06-15")

    def _assume_role(
        self, caller: Principal, params: dict[str, str], keys: dict[str, tuple[str, ...]], rid: str
    ) -> bytes:
        role_arn, session_name = params.get("RoleArn", ""), params.get("RoleSessionName", "")
        if not role_arn:
            raise _validation("null", "roleArn", "Member must not be null")
        if not _SESSION_NAME.fullmatch(session_name):
            raise _validation(
                session_name, "roleSessionName",
                "Member must satisfy regular expression pattern: [\\w+=,.@-]* and length 2-64",
            )  # fmt: skip
        duration = _duration(params.get("DurationSeconds"))
        external_id = params.get("ExternalId")
        if external_id is not None and not _EXTERNAL_ID.fullmatch(external_id):
            raise _validation(external_id, "externalId", "Member must have length 2-1224")
        _refuse_unsupported(params)
        session_policy = _session_policy(params)
        source = _source_identity(caller, params.get("SourceIdentity"))
        tags, transitive = session_tags(caller, params)
        match = _ROLE_ARN.fullmatch(role_arn)
        role = None if match is None else self._roles.get_role(match.group(1), match.group(2))
        context: dict[str, Any] = dict(keys)
        if external_id is not None:
            context["sts:ExternalId"] = (external_id,)
        if source is not None:
            context["sts:SourceIdentity"] = (source,)
        self._authz.check_assume_role(caller, role_arn, role, context)
        if source is not None:  # the trust policy must also let the caller set it
            self._authz.check_assume_role(
                caller, role_arn, role, context, action="sts:SetSourceIdentity"
            )
        if tags:  # and tag the session
            tagging = dict(context) | {f"aws:RequestTag/{k}": (v,) for k, v in tags}
            tagging["aws:TagKeys"] = tuple(k for k, _ in tags)
            self._authz.check_assume_role(caller, role_arn, role, tagging, action="sts:TagSession")
        assert role is not None  # check_assume_role denies a missing role
        limit = _CHAINED_MAX if caller.kind == "AssumedRole" else role.max_session_duration
        if duration > limit:
            raise AwsError(
                "ValidationError",
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role"
                if caller.kind == "User"
                else "The requested DurationSeconds exceeds the 1 hour session limit for roles "
                "assumed by role chaining.",
            )
        extra = SessionAttributes(session_policy, source, tags, transitive)
        creds = self._roles.create_session(role, session_name, duration, caller.arn, extra)
        session_arn = f"arn:aws:sts::{role.account_id}:assumed-role/{role.role_name}/{session_name}"
        result = (
            "    <Credentials>\n"
            f"      <AccessKeyId>{creds.access_key_id}</AccessKeyId>\n"
            f"      <SecretAccessKey>{creds.secret_access_key}</SecretAccessKey>\n"
            f"      <SessionToken>{creds.session_token}</SessionToken>\n"
            f"      <Expiration>{_iso(creds.expiration)}</Expiration>\n"
            "    </Credentials>\n"
            "    <AssumedRoleUser>\n"
            f"      <AssumedRoleId>{role.role_id}:{escape(session_name)}</AssumedRoleId>\n"
            f"      <Arn>{escape(session_arn)}</Arn>\n"
            "    </AssumedRoleUser>\n"
            + (f"    <SourceIdentity>{escape(source)}</SourceIdentity>\n" if source else "")
            + f"    <PackedPolicySize>{_packed_size(session_policy)}</PackedPolicySize>\n"
        )
        return _xml("AssumeRole", result, rid)


#: AssumeRole members Strongroom does not implement: refused rather than ignored, since each
#: would change what the session may do or what its requests carry
_UNSUPPORTED = (
    "PolicyArns",
    "SerialNumber",
    "TokenCode",
    "ProvidedContexts",
)


def _refuse_unsupported(params: dict[str, str]) -> None:
    """ValidationError for an AssumeRole member of :data:`_UNSUPPORTED`."""
    for name in params:
        if name.split(".", 1)[0] in _UNSUPPORTED:
            member = name.split(".", 1)[0]
            raise AwsError(
                "ValidationError",
                f"{member} is not supported by Strongroom's AssumeRole; an inline session "
                "policy (Policy), SourceIdentity and session tags (Tags) are.",
            )


def _session_policy(params: dict[str, str]) -> str | None:
    """AssumeRole's inline session policy (checked as an identity policy), or None."""
    policy = params.get("Policy")
    if policy is None:
        return None
    if not 1 <= len(policy) <= _POLICY_MAX:
        raise AwsError(
            "ValidationError",
            "1 validation error detected: Value at 'policy' failed to satisfy constraint: "
            f"Member must have length between 1 and {_POLICY_MAX}",
        )
    try:
        parse_policy(policy, kind="identity")
    except PolicyError as exc:
        raise AwsError("MalformedPolicyDocument", str(exc)) from None
    return policy


def _source_identity(caller: Principal, given: str | None) -> str | None:
    """The new session's source identity: the one given, or the calling session's, which a
    chained session keeps and may not change (AWS: set once, kept through role chaining)."""
    if given is not None:
        if not _SOURCE_IDENTITY.fullmatch(given) or given.lower().startswith("aws:"):
            raise _validation(
                given, "sourceIdentity",
                "Member must satisfy regular expression pattern: [\\w+=,.@-]* and length 2-64, "
                "and must not begin with aws:",
            )  # fmt: skip
        if caller.source_identity is not None and given != caller.source_identity:
            raise AwsError(
                "AccessDenied",
                "The source identity of a session cannot be changed in role chaining.",
                403,
            )
        return given
    return caller.source_identity


def _packed_size(policy: str | None) -> int:
    """PackedPolicySize: the session policy's share of its limit, in percent."""
    if policy is None:
        return 0
    return max(1, round(100 * len(json.dumps(json.loads(policy), separators=(",", ":"))) / 2048))


def _duration(raw: str | None) -> int:
    if raw is None:
        return 3600
    try:
        value = int(raw)
    except ValueError:
        raise _validation(raw, "durationSeconds", "Member must be a number") from None
    if value < 900:
        raise _validation(
            raw, "durationSeconds", "Member must have value greater than or equal to 900"
        )
    if value > 43_200:
        raise _validation(
            raw, "durationSeconds", "Member must have value less than or equal to 43200"
        )
    return value


def sts_service(
    identities: IdentityStore, roles: RoleStore, authz: Authorizer, secure_transport: bool = False
) -> QueryService:
    """STS as a :class:`~strongroom.api.app.QueryService` (signing name ``sts``);
    ``secure_transport``: the endpoint is HTTPS (``aws:SecureTransport`` in trust policies)."""
    return QueryService("sts", _Sts(identities, roles, authz, secure_transport).call, _render_error)
