"""First start: the administrator identity and the AWS CLI files that use it.

``<data-dir>/credentials`` (shared-credentials format) and ``<data-dir>/config`` both carry a
profile ``strongroom``; credentials are written with mode 0600.
"""

from __future__ import annotations

import os
from pathlib import Path

from strongroom.files import replace_text
from strongroom.iam.identities import AccessKeyPair, IdentityStore
from strongroom.iam.roles import RoleStore

__all__ = [
    "ADMIN_POLICY",
    "ADMIN_POLICY_DOCUMENT",
    "ADMIN_USER",
    "PROFILE",
    "ensure_admin",
    "set_ca_bundle",
]

ADMIN_USER = "admin"
PROFILE = "strongroom"


ADMIN_POLICY = "AdministratorAccess"
ADMIN_POLICY_DOCUMENT = (
    '{"Version": "2012-10-17", "Statement": [{"Sid": "AdministratorAccess", '
    '"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
)


def ensure_admin(
    data_dir: Path, identities: IdentityStore, roles: RoleStore, account_id: str, region: str
) -> bool:
    """Create the admin user (with an identity policy allowing everything, as an account's
    administrators have), an access key and the CLI files unless they exist and still work.

    Returns True when new credentials were written.
    """
    if all(u.user_name != ADMIN_USER for u in identities.list_users(account_id)):
        identities.create_user(account_id, ADMIN_USER)
    if ADMIN_POLICY not in roles.list_policies("user", account_id, ADMIN_USER):
        roles.put_policy("user", account_id, ADMIN_USER, ADMIN_POLICY, ADMIN_POLICY_DOCUMENT)
    creds = data_dir / "credentials"
    if creds.exists() and _credentials_valid(creds, identities):
        return False
    pair = identities.create_access_key(account_id, ADMIN_USER)
    _write_files(data_dir, pair, region)
    return True


def _credentials_valid(path: Path, identities: IdentityStore) -> bool:
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        if name.strip() == "aws_access_key_id":
            return identities.lookup_secret(value.strip()) is not None
    return False


def _write_files(data_dir: Path, pair: AccessKeyPair, region: str) -> None:
    creds = data_dir / "credentials"
    text = (
        f"[{PROFILE}]\n"
        f"aws_access_key_id = {pair.access_key_id}\n"
        f"aws_secret_access_key = {pair.secret_access_key}\n"
    )
    fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    (data_dir / "config").write_text(
        f"[profile {PROFILE}]\nregion = {region}\noutput = json\n", encoding="utf-8"
    )


def set_ca_bundle(data_dir: Path, ca_bundle: Path | None) -> None:
    """Point the profile in ``<data-dir>/config`` at ``ca_bundle`` (the certificate that
    ``serve --tls-self-signed`` made: the aws CLI, boto3 and the Encryption SDK using the profile
    then trust it), or drop the ``ca_bundle`` line again. Other lines stay as they are."""
    config = data_dir / "config"
    if not config.exists():
        return
    text = config.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.partition("=")[0].strip() != "ca_bundle"]
    if ca_bundle is not None:
        lines.append(f"ca_bundle = {ca_bundle}")
    new = "\n".join(lines) + "\n"
    if new != text:  # the file is the user's too: written only when the line changes
        replace_text(config, new)
