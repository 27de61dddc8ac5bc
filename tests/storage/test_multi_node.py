"""Several ``serve`` nodes sharing one PostgreSQL database (strongroom/node.py): each has a data
directory of its own and the first node's ``root.key`` and ``audit-signing.key``; what one node
does, the others see; both nodes' writers append to one trail that ``audit verify`` passes from
either data directory; a node given another root key or trail key refuses to start."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import text

from strongroom.node import NODE_ID_FILE
from strongroom.storage.engine import open_engine
from tests.cloudhsm.conftest import new_cluster, wait_cluster
from tests.conftest import STRONGROOM, free_port, running_server
from tests.memscan import descendants
from tests.storage.conftest import PgServer

SHARED = ("root.key", "audit-signing.key")


@pytest.fixture
def database(pg_server: PgServer) -> Iterator[str]:
    yield pg_server.create_database()


def _join(first: Path, data: Path, *, skip: str = "") -> Path:
    """A new node's data directory holding the first node's shared secrets (less ``skip``)."""
    data.mkdir(mode=0o700)
    for name in SHARED:
        if name != skip:
            shutil.copy2(first / name, data / name)
    return data


def _refused(data: Path, url: str) -> str:
    """The message of a node that refuses to start."""
    done = subprocess.run(
        [STRONGROOM, "serve", "--port", str(free_port()), "--data-dir", str(data),
         "--database-url", url],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    return done.stderr


def _eventually(check: Any, seconds: float = 5.0) -> None:
    """Caches on PostgreSQL live up to a second: what another node wrote shows within it."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "another node's write did not show"
        time.sleep(0.2)


def _verify(data: Path, url: str) -> str:
    done = subprocess.run(
        [STRONGROOM, "audit", "verify", "--data-dir", str(data), "--database-url", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("OK: "), (done.stdout, done.stderr)
    return done.stdout


def test_two_nodes_share_keys_and_one_verifiable_trail(
    pg_server: PgServer, database: str, tmp_path: Path
) -> None:
    a_dir = tmp_path / "a"
    with running_server(a_dir, "--database-url", database) as a:
        b_dir = _join(a_dir, tmp_path / "b")
        with running_server(b_dir, "--database-url", database) as b:
            ka, kb = a.client(), b.client()
            key = ka.create_key()["KeyMetadata"]["KeyId"]
            blob = ka.encrypt(KeyId=key, Plaintext=b"one node")["CiphertextBlob"]
            assert kb.decrypt(CiphertextBlob=blob)["Plaintext"] == b"one node"
            kb.create_alias(AliasName="alias/shared", TargetKeyId=key)
            _eventually(
                lambda: any(x["AliasName"] == "alias/shared" for x in ka.list_aliases()["Aliases"])
            )

            def work(i: int) -> None:  # each key made on one node and used on the other
                here, there = (ka, kb) if i % 2 else (kb, ka)
                made = here.create_key()["KeyMetadata"]["KeyId"]
                for _ in range(5):
                    sealed = here.encrypt(KeyId=made, Plaintext=b"x")["CiphertextBlob"]
                    assert there.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"x"
                    there.encrypt(KeyId=key, Plaintext=b"y")

            with ThreadPoolExecutor(6) as pool:
                list(pool.map(work, range(24)))
            kb.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
            _eventually(
                lambda: ka.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
            )
            with pytest.raises(ClientError) as info:
                ka.encrypt(KeyId=key, Plaintext=b"z")
            assert info.value.response["Error"]["Code"] == "KMSInvalidStateException"
        nodes = {(d / NODE_ID_FILE).read_text() for d in (a_dir, b_dir)}
        assert len(nodes) == 2
    # both writers signed digests into the one chain, each node's epochs its own
    engine = pg_server.track(open_engine(database))
    with engine.connect() as conn:
        bodies = conn.execute(text("SELECT body FROM audit_digests ORDER BY seq")).scalars()
        signed = {msgspec.json.decode(body).get("node") for body in bodies}
    assert signed == nodes, signed
    assert _verify(a_dir, database) == _verify(b_dir, database)


def test_a_node_with_other_secrets_refuses_to_start(database: str, tmp_path: Path) -> None:
    first = tmp_path / "first"
    with running_server(first, "--database-url", database) as server:
        server.client().create_key()
        own_root = _join(first, tmp_path / "own-root", skip="root.key")
        assert "root-key is not the one the database was made with" in _refused(own_root, database)
        own_trail_key = _join(first, tmp_path / "own-trail-key", skip="audit-signing.key")
        assert "trail-signing-key is not the one" in _refused(own_trail_key, database)
        assert not (own_root / "credentials").exists()  # nothing was made for it


def _hsm_nodes(pid: int) -> list[int]:
    """The HSM node processes among ``pid``'s descendants."""
    return [
        child
        for child in descendants(pid)
        if b"hsm-node" in Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
    ]


def test_only_the_first_node_runs_the_cloudhsm_clusters(database: str, tmp_path: Path) -> None:
    """The HSMs' data lives in the data directory of the node that runs them: another node
    serves the CloudHSM API from the database and starts no HSM of its own."""
    a_dir = tmp_path / "a"
    with running_server(a_dir, "--database-url", database) as a:
        assert a.proc is not None
        cid = new_cluster(a.client("cloudhsmv2"), ("a",))
        hsm_id = wait_cluster(a.client("cloudhsmv2"), cid, "UNINITIALIZED", 1)["Hsms"][0]["HsmId"]
        assert len(_hsm_nodes(a.proc.pid)) == 1
        b_dir = _join(a_dir, tmp_path / "b")
        with running_server(b_dir, "--database-url", database) as b:
            assert b.proc is not None
            seen = wait_cluster(b.client("cloudhsmv2"), cid, "UNINITIALIZED", 1)
            assert [h["HsmId"] for h in seen["Hsms"]] == [hsm_id]
            time.sleep(1.5)  # several control passes of a node that would run it
            assert _hsm_nodes(b.proc.pid) == []
            assert not (b_dir / "hsms" / hsm_id).exists()
            assert "run on node-" in b.log()
            assert "collecting the audit log" not in b.log()  # that is the host's work too
        assert len(_hsm_nodes(a.proc.pid)) == 1
