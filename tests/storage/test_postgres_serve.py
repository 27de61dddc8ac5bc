"""``strongroom serve --database-url postgresql://...``: the same service, state in PostgreSQL."""

from __future__ import annotations

import signal
from pathlib import Path

import psycopg

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
