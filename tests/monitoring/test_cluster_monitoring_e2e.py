"""HSM audit logs, node metrics and the HsmUnhealthy alarm against a real server and real nodes.

The tests run in file order on one cluster: the alarm test replaces an HSM and the last test
restarts ``serve`` (and so every node).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

from tests.audit.conftest import audit_cli
from tests.cloudhsm.conftest import ADMIN_PW, describe, hsm_cli, wait_cluster, wait_for
from tests.conftest import STRONGROOM, free_port
from tests.monitoring.conftest import ALICE_PW, Env, env, scrape

__all__ = ["env"]

ALICE = {"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": f"alice:{ALICE_PW}"}


def hsm_log(e: Env, hsm_id: str) -> list[dict[str, Any]]:
    out = audit_cli(e.server.data_dir, "hsm", "--cluster-id", e.cluster_id, "--hsm-id", hsm_id)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def gapless(records: list[dict[str, Any]]) -> bool:
    return [r["seq"] for r in records] == list(range(len(records)))


def test_hsm_audit_logs_are_collected_gapless_per_hsm(env: Env) -> None:
    bad = {"CLOUDHSM_ROLE": "crypto-user", "CLOUDHSM_PIN": "alice:wrong-password-1"}
    rc, out, err = hsm_cli(env.server, env.cluster_id, env.anchor, "key", "list", env=bad)
    assert rc != 0, (out, err)
    rc, out, err = hsm_cli(
        env.server, env.cluster_id, env.anchor,
        "key", "generate-symmetric", "aes", "--label", "mon", "--key-length-bytes", "32",
        env=ALICE,
    )  # fmt: skip
    assert rc == 0, (out, err)
    hsms = [h["HsmId"] for h in describe(env.hsm, env.cluster_id)["Hsms"]]

    def failed_login_seen() -> bool:  # on the node the client tried (logins are per node)
        return any(
            r["opcode"].startswith("CN_LOGIN") and r["code"] != 0 and r["user"] == "alice"
            for hsm_id in hsms
            for r in hsm_log(env, hsm_id)
        )

    wait_for(failed_login_seen, bool, 30)
    for hsm_id in hsms:
        records = hsm_log(env, hsm_id)
        assert gapless(records), [r["seq"] for r in records]
        assert records[0]["opcode"].startswith("CN_INIT_TOKEN")
        assert {r["hsmId"] for r in records} == {hsm_id}
        assert any(r["opcode"].startswith("CN_CREATE_USER") for r in records)
        text = json.dumps(records)
        assert ALICE_PW not in text and ADMIN_PW not in text and "wrong-password" not in text
    # each stream starts at seq 0 and can be read from any point
    first = describe(env.hsm, env.cluster_id)["Hsms"][0]["HsmId"]
    resumed = audit_cli(env.server.data_dir, "hsm", "--cluster-id", env.cluster_id,
                        "--hsm-id", first, "--from-seq", "3")  # fmt: skip
    assert json.loads(resumed.stdout.splitlines()[0])["seq"] == 3


def test_each_node_serves_cloudwatch_metrics(env: Env) -> None:
    hsms = describe(env.hsm, env.cluster_id)["Hsms"]
    for h in hsms:
        samples = scrape(f"http://{h['EniIp']}:2224/metrics")
        value = {name: rows[0][1] for name, rows in samples.items()}
        assert all(rows[0][0] == {"hsm_id": h["HsmId"]} for rows in samples.values())
        assert value["HsmUnhealthy"] == 0
        assert value["HsmUsersMax"] == 1024
        assert value["HsmUsersAvailable"] == 1024 - 3  # admin, app_user, alice
        assert value["HsmKeysTokenOccupied"] >= 1  # the key "mon", replicated
        assert value["HsmKeysSessionOccupied"] == 0
        assert value["HsmSessionCount"] >= 1  # the collector's session
        # counters (cumulative to date); prometheus_client's parser names their samples *_total
        assert value["InterfaceEth2OctetsInput_total"] > 0
        assert value["InterfaceEth2OctetsOutput_total"] > 0
    serve = scrape(f"{env.server.endpoint}/metrics")
    unhealthy = {lab["hsm_id"]: v for lab, v in serve["HsmUnhealthy"]}
    assert unhealthy == {h["HsmId"]: 0 for h in hsms}
    zones = {lab["availability_zone"] for lab, v in serve["strongroom_cloudhsm_hsms"] if v}
    assert zones == {"us-east-1a", "us-east-1b"}
    stores = {lab["connection_state"]: v for lab, v in serve["strongroom_kms_custom_key_stores"]}
    assert set(stores) >= {"CONNECTED", "DISCONNECTED", "FAILED"}
    assert serve["strongroom_alarm_firing"] == [({"alarm": "hsm-unhealthy"}, 0.0)]


def status(e: Env, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STRONGROOM, "status", "--endpoint-url", endpoint or e.server.endpoint,
         "--data-dir", str(e.server.data_dir)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "COLUMNS": "160"},
    )  # fmt: skip


def test_status_shows_one_screen_of_health(env: Env) -> None:
    kms = env.server.client()
    kms.create_key(Description="status")
    store = kms.create_custom_key_store(
        CustomKeyStoreName="mon-store",
        CloudHsmClusterId=env.cluster_id,
        TrustAnchorCertificate=env.anchor.read_text(),
        KeyStorePassword="kmsuser-pass-1",
    )["CustomKeyStoreId"]
    out = status(env)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "reachable" in text and "111122223333" in text
    assert "Enabled" in text and "SYMMETRIC_DEFAULT" in text
    assert env.cluster_id in text and "us-east-1a" in text and "us-east-1b" in text
    for h in describe(env.hsm, env.cluster_id)["Hsms"]:
        assert h["HsmId"] in text
    assert "ok" in text and "UNHEALTHY" not in text
    assert store in text and "DISCONNECTED" in text
    assert "none firing" in text
    assert "kmsuser-pass-1" not in text
    down = status(env, f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 1 and "unreachable" in down.stdout


def test_hsm_unhealthy_alarm_fires_on_a_killed_node_and_clears_when_replaced(env: Env) -> None:
    victim = describe(env.hsm, env.cluster_id)["Hsms"][0]
    pid = int((env.server.data_dir / "hsms" / victim["HsmId"] / "node.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(env.hook.states, lambda s: "ALARM" in s, 30)
    message = env.hook.messages[0]
    assert message["AlarmName"] == "hsm-unhealthy" and message["OldStateValue"] == "OK"
    assert message["Trigger"]["MetricName"] == "HsmUnhealthy"
    wait_for(env.hook.states, lambda s: s[-1:] == ["OK"], 60)
    after = wait_cluster(env.hsm, env.cluster_id, "ACTIVE", 2)
    assert victim["HsmId"] not in {h["HsmId"] for h in after["Hsms"]}
    tail = audit_cli(env.server.data_dir, "tail", "-n", "500").stdout
    events = [json.loads(x) for x in tail.splitlines()]
    changes = [e for e in events if e.get("eventName") == "AlarmStateChange"]
    assert [c["serviceEventDetails"]["NewStateValue"] for c in changes] == ["ALARM", "OK"]
    assert {c["eventSource"] for c in changes} == {"monitoring.amazonaws.com"}
    assert "alarm hsm-unhealthy: OK -> ALARM" in env.server.log()
    assert audit_cli(env.server.data_dir, "verify").returncode == 0


def test_hsm_log_stream_survives_a_node_restart(env: Env) -> None:
    hsm_id = describe(env.hsm, env.cluster_id)["Hsms"][-1]["HsmId"]
    before = hsm_log(env, hsm_id)
    assert before
    reboot = before[-1]["reboot"]
    env.server.stop()
    time.sleep(0.5)
    env.server.start()  # serve restarts its nodes: the reboot counter rises
    wait_for(lambda: any(r["reboot"] > reboot for r in hsm_log(env, hsm_id)), bool, 40)
    after = hsm_log(env, hsm_id)
    assert gapless(after)
    assert after[: len(before)] == before
    boot = next(r for r in after if r["reboot"] > reboot)
    assert boot["opcode"].startswith("CN_INIT_DONE") and boot["reboot"] == reboot + 1
