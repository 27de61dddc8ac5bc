"""``strongroom serve --database-url postgresql://...``: the same service, state in PostgreSQL."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.conftest import running_server
from tests.storage.conftest import PgServer


def test_serve_on_postgresql_keeps_keys_across_a_restart(
    pg_server: PgServer, tmp_path: Path
) -> None:
    url = pg_server.create_database()
    data_dir = tmp_path / "data"

    with running_server(data_dir, "--database-url", url) as server:
        kms = server.client()
        key_id = kms.create_key(Description="on postgres")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/pg", TargetKeyId=key_id)
        kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "db", "TagValue": "pg"}])
        blob = kms.encrypt(KeyId="alias/pg", Plaintext=b"durable", EncryptionContext={"a": "b"})[
            "CiphertextBlob"
        ]
        # Acknowledged is committed: kill without a clean shutdown.
        server.stop(signal.SIGKILL)

    # The state is in PostgreSQL, not in a SQLite file beside the root key.
    assert not (data_dir / "strongroom.db").exists()
    with psycopg.connect(url) as conn:
        assert conn.execute(
            "SELECT state FROM kms_keys WHERE key_id = %s", (key_id,)
        ).fetchall() == [("Enabled",)]
        assert conn.execute(
            "SELECT alias_name FROM kms_aliases WHERE key_id = %s", (key_id,)
        ).fetchall() == [("alias/pg",)]
        (wrapped,) = conn.execute(
            "SELECT material_wrapped FROM kms_key_materials WHERE key_id = %s", (key_id,)
        ).fetchone() or (b"",)
        assert len(wrapped) > 32  # stored wrapped, never as the bare 32-byte key

    with running_server(data_dir, "--database-url", url) as server:
        kms = server.client()
        back = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})
        assert back["Plaintext"] == b"durable"
        assert back["KeyId"].endswith(f":key/{key_id}")
        assert kms.describe_key(KeyId="alias/pg")["KeyMetadata"]["Description"] == "on postgres"
        assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "db", "TagValue": "pg"}]
        again = kms.encrypt(KeyId=key_id, Plaintext=b"after restart")["CiphertextBlob"]
        assert kms.decrypt(CiphertextBlob=again)["Plaintext"] == b"after restart"


def test_nul_characters_are_refused_as_invalid_input_on_postgresql(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """PostgreSQL's text cannot hold U+0000: a request carrying one is a ValidationException
    (it was a 500), nothing of it is stored, and the service goes on."""
    url = pg_server.create_database()
    with running_server(tmp_path / "data", "--database-url", url) as server:
        kms = server.client()
        key_id = kms.create_key(Description="ok")["KeyMetadata"]["KeyId"]
        calls: list[Callable[[], Any]] = [
            lambda: kms.create_key(Description="a\x00b"),
            lambda: kms.update_key_description(KeyId=key_id, Description="a\x00b"),
            lambda: kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "k\x00", "TagValue": "v"}]),
            lambda: kms.untag_resource(KeyId=key_id, TagKeys=["k\x00"]),
            lambda: kms.disconnect_custom_key_store(CustomKeyStoreId="cks-\x00"),
        ]
        for call in calls:
            with pytest.raises(ClientError) as err:
                call()
            assert err.value.response["Error"]["Code"] == "ValidationException"
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [key_id]
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "ok"
        assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []
        assert "Traceback" not in server.log()


def test_key_last_usage_is_kept_in_postgresql(pg_server: PgServer, tmp_path: Path) -> None:
    """GetKeyLastUsage on PostgreSQL: the trail's batches upsert each key's last use there
    (migration 11's table), and a later use replaces an earlier one."""
    url = pg_server.create_database()
    with running_server(tmp_path / "data", "--database-url", url) as server:
        kms = server.client()
        meta = kms.create_key()["KeyMetadata"]
        assert kms.get_key_last_usage(KeyId=meta["KeyId"])["KeyLastUsage"] == {}
        blob = kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"pg")["CiphertextBlob"]
        decrypted = kms.decrypt(CiphertextBlob=blob)
        out = kms.get_key_last_usage(KeyId=meta["KeyId"])
        assert out["KeyLastUsage"]["Operation"] == "Decrypt"
        assert out["KeyLastUsage"]["KmsRequestId"] == decrypted["ResponseMetadata"]["RequestId"]
        assert out["TrackingStartDate"] == meta["CreationDate"]
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT operation, event_id FROM audit_key_usage WHERE key_arn = %s", (meta["Arn"],)
        ).fetchall()
    assert rows == [("Decrypt", out["KeyLastUsage"]["CloudTrailEventId"])]
