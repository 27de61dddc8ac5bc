"""AssumeRole's session tags (``Tags``, ``TransitiveTagKeys``) as AWS has them: at most 50 tags,
keys of 1-128 and values of 0-256 characters, unique regardless of case, none beginning with
``aws:``; transitive keys must name given tags. In a chained session the caller's transitive
tags carry over and may not be given again with another value. The session's tags are its
``aws:PrincipalTag/<key>`` condition keys."""

from __future__ import annotations

import re

from strongroom.errors import AwsError
from strongroom.iam.principal import Principal

__all__ = ["MAX_TAGS", "SessionTags", "session_tags"]

MAX_TAGS = 50
#: AWS's [\p{L}\p{Z}\p{N}_.:/=+\-@]: letters, digits, space separators (no control characters)
_CHARS = r"[\w .:/=+\-@\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_KEY = re.compile(_CHARS + "{1,128}")
_VALUE = re.compile(_CHARS + "{0,256}")

SessionTags = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]


def _invalid(message: str) -> AwsError:
    return AwsError("ValidationError", message)


def _members(params: dict[str, str], name: str) -> dict[int, dict[str, str]]:
    """``Name.member.N[.Field]`` query parameters, by N."""
    out: dict[int, dict[str, str]] = {}
    prefix = f"{name}.member."
    for param, value in params.items():
        if not param.startswith(prefix):
            continue
        index, _, field = param[len(prefix) :].partition(".")
        if not index.isdigit():
            raise _invalid(f"Malformed parameter {param}")
        out.setdefault(int(index), {})[field] = value
    return out


def session_tags(caller: Principal, params: dict[str, str]) -> SessionTags:
    """(tags, transitive tag keys) of the new session: the caller's transitive ones, then the
    request's."""
    given: dict[str, str] = {}
    for _, member in sorted(_members(params, "Tags").items()):
        key, value = member.get("Key"), member.get("Value")
        if key is None or value is None:
            raise _invalid("Each session tag needs a Key and a Value.")
        if not _KEY.fullmatch(key) or key.lower().startswith("aws:"):
            raise _invalid(f"Session tag key {key!r} is not valid.")
        if not _VALUE.fullmatch(value):
            raise _invalid(f"The value of session tag {key!r} is not valid.")
        if key.lower() in {k.lower() for k in given}:
            raise _invalid(f"Session tag key {key!r} is given more than once.")
        given[key] = value
    transitive = [m.get("") or "" for _, m in sorted(_members(params, "TransitiveTagKeys").items())]
    lowered = {k.lower() for k in given}
    for key in transitive:
        if key.lower() not in lowered:
            raise _invalid(f"Transitive tag key {key!r} names no session tag of this request.")
    inherited = dict(caller.session_tags)
    inherited_keys = {k.lower() for k in caller.transitive_tag_keys}
    for key in given:
        if key.lower() in inherited_keys:
            raise _invalid(
                f"Session tag {key!r} is a transitive tag of the calling session; it cannot "
                "be given again."
            )
    tags = {k: v for k, v in inherited.items() if k.lower() in inherited_keys} | given
    if len(tags) > MAX_TAGS:
        raise _invalid(f"A session has at most {MAX_TAGS} tags.")
    keys = tuple(dict.fromkeys([*caller.transitive_tag_keys, *transitive]))
    return tuple(sorted(tags.items())), keys
