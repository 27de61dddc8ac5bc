"""Who is calling: an IAM user, or a role session made by AssumeRole."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a verified signature stands for."""

    account_id: str
    kind: str  # "User" or "AssumedRole"
    name: str  # the user name, or the role name
    unique_id: str  # AIDA... for users; AROA...:<session> for role sessions
    access_key_id: str
    session_name: str | None = None
    expiration: float | None = None
    #: an AssumeRole session's inline session policy (its permissions are at most that)
    session_policy: str | None = None
    #: an AssumeRole session's source identity (``aws:SourceIdentity``), kept through chaining
    source_identity: str | None = None
    #: an AssumeRole session's tags (``aws:PrincipalTag/<key>``), and which are transitive
    session_tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()

    @property
    def arn(self) -> str:
        if self.kind == "AssumedRole":
            return f"arn:aws:sts::{self.account_id}:assumed-role/{self.name}/{self.session_name}"
        return f"arn:aws:iam::{self.account_id}:user/{self.name}"

    @property
    def identity_arn(self) -> str:
        """The IAM identity whose policies apply: the user, or the session's role."""
        if self.kind == "AssumedRole":
            return f"arn:aws:iam::{self.account_id}:role/{self.name}"
        return self.arn

    @property
    def user_name(self) -> str:
        return self.name
