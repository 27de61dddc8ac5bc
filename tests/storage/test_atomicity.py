"""All-or-nothing state changes through the real KMS operations and identity store.

The service is composed by ``server.build`` exactly as ``serve`` does it; a
:class:`~tests.storage.conftest.FaultInjector` on its engine fails the Nth matching statement.
Every test then checks the database *and* the service's own reads (which go through its caches).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from strongroom.bootstrap import ensure_admin
from strongroom.clock import ManualClock
from strongroom.errors import AwsError
from strongroom.iam.identities import Principal
from strongroom.kms.ops.registry import OPERATIONS
from strongroom.kms.service import RequestContext
from strongroom.server import Config, build
from strongroom.storage import engine as engine_module
from strongroom.storage import kms_repo
from strongroom.storage.schema import aliases, key_materials, keys, tags
from tests.storage.conftest import T0, FaultInjector, FaultyService, PgServer

ACCOUNT = "111122223333"
REGION = "us-east-1"
DAY = 86_400.0
CTX = RequestContext(Principal(ACCOUNT, "User", "admin", "AIDATEST", "AKIATEST"), REGION, "req-1")


def call(svc: FaultyService, operation: str, **req: Any) -> dict[str, Any]:
    return OPERATIONS[operation](svc.runtime.kms, CTX, req)


def aws_error(svc: FaultyService, operation: str, **req: Any) -> str:
    with pytest.raises(AwsError) as exc:
        call(svc, operation, **req)
    return exc.value.code


def rows(svc: FaultyService, table: Any, key_id: str | None = None) -> list[Any]:
    query = select(table) if key_id is None else select(table).where(table.c.key_id == key_id)
    with svc.runtime.kms.engine.connect() as conn:
        return list(conn.execute(query).all())


def new_key(svc: FaultyService, **req: Any) -> str:
    return str(call(svc, "CreateKey", **req)["KeyMetadata"]["KeyId"])


def state(svc: FaultyService, key_id: str) -> str:
    return str(call(svc, "DescribeKey", KeyId=key_id)["KeyMetadata"]["KeyState"])


def fails(faults: FaultInjector, pattern: str, nth: int = 1) -> Any:
    faults.fail_on(pattern, nth)
    return pytest.raises(OperationalError, match="injected fault")


def test_the_fault_injector_fails_exactly_the_nth_matching_statement(
    faulty_service: FaultyService,
) -> None:
    svc = faulty_service
    svc.faults.fail_on(r"^INSERT INTO kms_keys", nth=3)
    first, second = new_key(svc), new_key(svc)
    assert not svc.faults.fired
    with pytest.raises(OperationalError, match="injected fault"):
        new_key(svc)
    assert svc.faults.fired
    third = new_key(svc)  # fires once, then lets statements through
    assert sorted(r.key_id for r in rows(svc, keys)) == sorted([first, second, third])


def test_create_key_with_tags_failing_on_the_tag_insert_leaves_no_key(
    faulty_service: FaultyService,
) -> None:
    svc = faulty_service
    kept = new_key(svc, Tags=[{"TagKey": "team", "TagValue": "a"}])
    with fails(svc.faults, r"^INSERT INTO kms_tags"):
        call(svc, "CreateKey", Description="half", Tags=[{"TagKey": "team", "TagValue": "b"}])
    assert svc.faults.fired
    # The key and material rows were written in that transaction before the tags failed.
    assert any(s.startswith("INSERT INTO kms_key_materials") for s in svc.faults.statements)
    assert [r.key_id for r in rows(svc, keys)] == [kept]
    assert [r.key_id for r in rows(svc, key_materials)] == [kept]
    assert [(r.key_id, r.tag_value) for r in rows(svc, tags)] == [(kept, "a")]
    assert [k["KeyId"] for k in call(svc, "ListKeys")["Keys"]] == [kept]


def test_create_alias_failing_leaves_no_alias(faulty_service: FaultyService) -> None:
    svc = faulty_service
    key_id = new_key(svc)
    with fails(svc.faults, r"^INSERT INTO kms_aliases"):
        call(svc, "CreateAlias", AliasName="alias/app", TargetKeyId=key_id)
    assert rows(svc, aliases) == []
    assert call(svc, "ListAliases")["Aliases"] == []
    assert aws_error(svc, "Encrypt", KeyId="alias/app", Plaintext=b"x") == "NotFoundException"
    # Nothing was left half-made that would block a retry.
    call(svc, "CreateAlias", AliasName="alias/app", TargetKeyId=key_id)
    assert call(svc, "DescribeKey", KeyId="alias/app")["KeyMetadata"]["KeyId"] == key_id


def test_schedule_key_deletion_failing_leaves_the_key_enabled(
    faulty_service: FaultyService,
) -> None:
    svc = faulty_service
    key_id = new_key(svc)
    blob = call(svc, "Encrypt", KeyId=key_id, Plaintext=b"before")["CiphertextBlob"]
    assert state(svc, key_id) == "Enabled"  # the key record is now cached
    with fails(svc.faults, r"^UPDATE kms_keys"):
        call(svc, "ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    (row,) = rows(svc, keys, key_id)
    assert (row.state, row.deletion_date, row.pending_window_days) == ("Enabled", None, None)
    assert state(svc, key_id) == "Enabled"
    assert "DeletionDate" not in call(svc, "DescribeKey", KeyId=key_id)["KeyMetadata"]
    assert call(svc, "Decrypt", CiphertextBlob=blob)["Plaintext"] == b"before"
    assert aws_error(svc, "CancelKeyDeletion", KeyId=key_id) == "KMSInvalidStateException"


def test_failed_writes_leave_cached_reads_at_the_old_state(faulty_service: FaultyService) -> None:
    svc = faulty_service
    first, second = new_key(svc), new_key(svc)
    call(svc, "CreateAlias", AliasName="alias/app", TargetKeyId=first)
    first_arn = call(svc, "DescribeKey", KeyId=first)["KeyMetadata"]["Arn"]
    # Warm the key, material and alias caches.
    assert call(svc, "Encrypt", KeyId="alias/app", Plaintext=b"p")["KeyId"] == first_arn

    with fails(svc.faults, r"^UPDATE kms_keys"):
        call(svc, "DisableKey", KeyId=first)
    assert state(svc, first) == "Enabled"
    assert call(svc, "Encrypt", KeyId=first, Plaintext=b"p")["KeyId"] == first_arn

    with fails(svc.faults, r"^UPDATE kms_aliases"):
        call(svc, "UpdateAlias", AliasName="alias/app", TargetKeyId=second)
    assert call(svc, "Encrypt", KeyId="alias/app", Plaintext=b"p")["KeyId"] == first_arn

    with fails(svc.faults, r"^DELETE FROM kms_aliases"):
        call(svc, "DeleteAlias", AliasName="alias/app")
    assert call(svc, "Encrypt", KeyId="alias/app", Plaintext=b"p")["KeyId"] == first_arn

    call(svc, "TagResource", KeyId=first, Tags=[{"TagKey": "a", "TagValue": "1"}])
    with fails(svc.faults, r"^INSERT INTO kms_tags"):
        call(svc, "TagResource", KeyId=first, Tags=[{"TagKey": "a", "TagValue": "2"}])
    # put_tags deleted the old value before the insert failed; the rollback restores it.
    assert call(svc, "ListResourceTags", KeyId=first)["Tags"] == [{"TagKey": "a", "TagValue": "1"}]


def _doomed_key(svc: FaultyService, name: str) -> tuple[str, bytes]:
    key_id = new_key(svc, Tags=[{"TagKey": "name", "TagValue": name}])
    call(svc, "CreateAlias", AliasName=f"alias/{name}", TargetKeyId=key_id)
    blob = call(svc, "Encrypt", KeyId=key_id, Plaintext=name.encode())["CiphertextBlob"]
    call(svc, "ScheduleKeyDeletion", KeyId=key_id, PendingWindowInDays=7)
    return key_id, blob


def _intact(svc: FaultyService, key_id: str, name: str) -> None:
    assert [r.state for r in rows(svc, keys, key_id)] == ["PendingDeletion"]
    assert len(rows(svc, key_materials, key_id)) == 1
    assert [r.alias_name for r in rows(svc, aliases, key_id)] == [f"alias/{name}"]
    assert [(r.tag_key, r.tag_value) for r in rows(svc, tags, key_id)] == [("name", name)]


def _gone(svc: FaultyService, key_id: str) -> None:
    for table in (keys, key_materials, aliases, tags):
        assert rows(svc, table, key_id) == []
    assert aws_error(svc, "DescribeKey", KeyId=key_id) == "NotFoundException"


def test_a_deletion_pass_failing_mid_way_leaves_the_key_intact_and_a_later_pass_deletes_it(
    faulty_service: FaultyService,
) -> None:
    svc = faulty_service
    doomed = {name: _doomed_key(svc, name) for name in ("one", "two")}
    svc.clock.advance(8 * DAY)
    with svc.runtime.kms.engine.connect() as conn:
        order = kms_repo.due_deletions(conn, svc.clock.now())
    assert sorted(order) == sorted(key_id for key_id, _ in doomed.values())
    name_of = {key_id: name for name, (key_id, _) in doomed.items()}
    failing, done = order

    # The first key's transaction fails after its aliases and tags were deleted; the pass
    # logs it and goes on, so the second key is still deleted in the same pass.
    svc.faults.fail_on(r"^DELETE FROM kms_key_materials", 1)
    svc.runtime.scheduler.run_once()
    assert svc.faults.fired
    _gone(svc, done)
    _intact(svc, failing, name_of[failing])
    listed = call(svc, "ListAliases", KeyId=failing)["Aliases"]
    assert [a["AliasName"] for a in listed] == [f"alias/{name_of[failing]}"]

    svc.runtime.scheduler.run_once()
    _gone(svc, failing)
    assert rows(svc, keys) == rows(svc, aliases) == rows(svc, tags) == []


def test_after_a_failed_deletion_pass_the_material_still_decrypts(
    faulty_service: FaultyService,
) -> None:
    svc = faulty_service
    key_id, blob = _doomed_key(svc, "precious")
    svc.clock.advance(8 * DAY)
    svc.faults.fail_on(r"^DELETE FROM kms_keys", 1)
    svc.runtime.scheduler.run_once()  # logs the failure; the next pass would retry
    assert svc.faults.fired
    _intact(svc, key_id, "precious")
    call(svc, "CancelKeyDeletion", KeyId=key_id)
    call(svc, "EnableKey", KeyId=key_id)
    assert call(svc, "Decrypt", CiphertextBlob=blob)["Plaintext"] == b"precious"
    assert call(svc, "Encrypt", KeyId="alias/precious", Plaintext=b"x")["KeyId"].endswith(key_id)


def test_create_access_key_failing_leaves_no_key(faulty_service: FaultyService) -> None:
    svc = faulty_service
    ids = svc.runtime.identities
    ids.create_user(ACCOUNT, "alice")
    good = ids.create_access_key(ACCOUNT, "alice")
    with fails(svc.faults, r"^INSERT INTO iam_access_keys"):
        ids.create_access_key(ACCOUNT, "alice")
    assert [k.access_key_id for k in ids.list_access_keys(ACCOUNT, "alice")] == [good.access_key_id]
    assert ids.lookup_secret(good.access_key_id) == good.secret_access_key


def test_delete_access_key_failing_keeps_the_key_usable(faulty_service: FaultyService) -> None:
    svc = faulty_service
    ids = svc.runtime.identities
    ids.create_user(ACCOUNT, "alice")
    pair = ids.create_access_key(ACCOUNT, "alice")
    assert ids.lookup_secret(pair.access_key_id) == pair.secret_access_key  # cached
    with fails(svc.faults, r"^DELETE FROM iam_access_keys"):
        ids.delete_access_key(ACCOUNT, pair.access_key_id)
    assert ids.lookup_secret(pair.access_key_id) == pair.secret_access_key
    found = ids.principal(pair.access_key_id)
    assert found is not None
    assert (found.account_id, found.kind, found.name, found.access_key_id) == (
        ACCOUNT, "User", "alice", pair.access_key_id)  # fmt: skip
    ids.delete_access_key(ACCOUNT, pair.access_key_id)
    assert ids.lookup_secret(pair.access_key_id) is None


# -- two service instances on one database ---------------------------------------------------------


@pytest.mark.parametrize(
    "database",
    [
        "sqlite",
        "postgresql",
    ],
)
def test_a_state_change_on_one_instance_does_not_undo_anothers(
    database: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two ``serve`` processes sharing a database (and root key) must not lose each other's writes.

    ``ChangeMonitor``'s time bound is frozen so the outcome does not depend on machine speed.
    """
    database_url = None
    if database == "postgresql":
        pg: PgServer = request.getfixturevalue("pg_server")
        database_url = request.getfixturevalue("pg_session_url")
        pg.reset_schema(database_url)
    monkeypatch.setattr(engine_module, "time", SimpleNamespace(monotonic=lambda: 1_000.0))
    config = Config(data_dir=tmp_path / "data", database_url=database_url)
    first, second = build(config, clock=ManualClock(T0)), build(config, clock=ManualClock(T0))
    ensure_admin(first.config.data_dir, first.identities, first.roles, ACCOUNT, REGION)
    try:
        key_id = OPERATIONS["CreateKey"](first.kms, CTX, {})["KeyMetadata"]["KeyId"]
        assert OPERATIONS["DescribeKey"](first.kms, CTX, {"KeyId": key_id})  # cached on `first`
        scheduled = OPERATIONS["ScheduleKeyDeletion"](
            second.kms, CTX, {"KeyId": key_id, "PendingWindowInDays": 7}
        )
        with contextlib.suppress(AwsError):  # refusing is fine; undoing the deletion is not
            OPERATIONS["UpdateKeyDescription"](
                first.kms, CTX, {"KeyId": key_id, "Description": "renamed"}
            )
        with second.kms.engine.connect() as conn:
            rec = kms_repo.get_key(conn, key_id)
        assert rec is not None
        assert (rec.state.value, rec.deletion_date) == (
            "PendingDeletion",
            scheduled["DeletionDate"],
        )
    finally:
        first.kms.engine.dispose()
        second.kms.engine.dispose()
