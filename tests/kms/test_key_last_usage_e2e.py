"""GetKeyLastUsage through boto3 against a real server: a key's last successful cryptographic
call, named by the eventID and requestID of its record in the audit trail."""

from __future__ import annotations

import base64
import datetime as dt
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Server, error_code, running_server
from tests.kms.access_support import Env, access_env, denied, identity, identity_statement


def _usage(kms: Any, key: str) -> dict[str, Any]:
    out = kms.get_key_last_usage(KeyId=key)
    out.pop("ResponseMetadata")
    return dict(out)


def _event(server: Server, event_id: str) -> dict[str, Any]:
    ct = server.client("cloudtrail")
    found = ct.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": event_id}]
    )
    (event,) = found["Events"]
    return dict(json.loads(event["CloudTrailEvent"]))


def _request_id(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["RequestId"])


def test_a_new_key_is_unused_and_tracked_since_its_creation(kms: Any) -> None:
    meta = kms.create_key(Description="fresh")["KeyMetadata"]
    out = _usage(kms, meta["KeyId"])
    assert out == {
        "KeyId": meta["KeyId"],
        "KeyLastUsage": {},
        "KeyCreationDate": meta["CreationDate"],
        "TrackingStartDate": meta["CreationDate"],  # created after tracking began
    }
    assert _usage(kms, meta["Arn"])["KeyId"] == meta["KeyId"]  # a key ARN works too


def test_the_last_successful_call_names_its_trail_event(server: Server, kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]["Arn"]
    enc = kms.encrypt(KeyId=key, Plaintext=b"used", EncryptionContext={"purpose": "usage"})
    use = _usage(kms, key)["KeyLastUsage"]
    assert use["Operation"] == "Encrypt"
    assert use["KmsRequestId"] == _request_id(enc)
    event = _event(server, use["CloudTrailEventId"])
    assert (event["eventName"], event["requestID"]) == ("Encrypt", _request_id(enc))
    assert event["resources"][0]["ARN"] == key
    now = dt.datetime.now(dt.UTC)
    assert now - dt.timedelta(seconds=30) < use["Timestamp"] <= now

    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"purpose": "usage"})
    assert _usage(kms, key)["KeyLastUsage"]["KmsRequestId"] == _request_id(dec)
    after_decrypt = _usage(kms, key)["KeyLastUsage"]
    assert after_decrypt["Operation"] == "Decrypt"

    # failed calls, dry runs and calls that are not cryptographic leave it as it is
    with pytest.raises(ClientError) as wrong:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"purpose": "x"})
    assert error_code(wrong) == "InvalidCiphertextException"
    with pytest.raises(ClientError) as dry:
        kms.encrypt(KeyId=key, Plaintext=b"x", DryRun=True)
    assert error_code(dry) == "DryRunOperationException"
    kms.describe_key(KeyId=key)
    kms.get_key_last_usage(KeyId=key)
    assert _usage(kms, key)["KeyLastUsage"] == after_decrypt

    # an encryption context naming errorCode is still a success
    ok = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext={"errorCode": "1"})
    use = _usage(kms, key)["KeyLastUsage"]
    assert (use["Operation"], use["KmsRequestId"]) == ("GenerateDataKey", _request_id(ok))


def test_reencrypt_counts_for_both_keys_and_its_event_names_both(server: Server, kms: Any) -> None:
    source = kms.create_key()["KeyMetadata"]["Arn"]
    destination = kms.create_key()["KeyMetadata"]["Arn"]
    blob = kms.encrypt(KeyId=source, Plaintext=b"move me")["CiphertextBlob"]
    moved = kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=destination)
    first, second = _usage(kms, source)["KeyLastUsage"], _usage(kms, destination)["KeyLastUsage"]
    assert first == second
    assert (first["Operation"], first["KmsRequestId"]) == ("ReEncrypt", _request_id(moved))
    event = _event(server, first["CloudTrailEventId"])
    assert [r["ARN"] for r in event["resources"]] == [source, destination]  # CloudTrail's order


def test_asymmetric_and_hmac_operations_and_failed_verifications(kms: Any) -> None:
    signer = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    algorithm = "ECDSA_SHA_256"
    sig = kms.sign(KeyId=signer, Message=b"m", SigningAlgorithm=algorithm)["Signature"]
    assert _usage(kms, signer)["KeyLastUsage"]["Operation"] == "Sign"
    kms.verify(KeyId=signer, Message=b"m", Signature=sig, SigningAlgorithm=algorithm)
    verified = _usage(kms, signer)["KeyLastUsage"]
    assert verified["Operation"] == "Verify"
    with pytest.raises(ClientError) as bad:
        kms.verify(KeyId=signer, Message=b"other", Signature=sig, SigningAlgorithm=algorithm)
    assert error_code(bad) == "KMSInvalidSignatureException"
    assert _usage(kms, signer)["KeyLastUsage"] == verified

    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
    kms.generate_mac(KeyId=mac_key["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
    assert _usage(kms, mac_key["KeyId"])["KeyLastUsage"]["Operation"] == "GenerateMac"


def test_every_key_state_answers_and_aliases_and_unknown_keys_do_not(kms: Any) -> None:
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.encrypt(KeyId=key, Plaintext=b"x")
    kms.create_alias(AliasName="alias/last-usage", TargetKeyId=key)
    kms.disable_key(KeyId=key)
    assert _usage(kms, key)["KeyLastUsage"]["Operation"] == "Encrypt"
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert _usage(kms, key)["KeyLastUsage"]["Operation"] == "Encrypt"
    with pytest.raises(ClientError) as alias:
        kms.get_key_last_usage(KeyId="alias/last-usage")  # "Alias names are not supported"
    assert error_code(alias) == "NotFoundException"
    with pytest.raises(ClientError) as missing:
        kms.get_key_last_usage(KeyId="11111111-2222-3333-4444-555555555555")
    assert error_code(missing) == "NotFoundException"


def test_a_replica_tracks_its_own_use(kms: Any, server: Server) -> None:
    primary = kms.create_key(MultiRegion=True)["KeyMetadata"]
    replica = kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion="eu-west-1")
    replica_arn = replica["ReplicaKeyMetadata"]["Arn"]
    blob = kms.encrypt(KeyId=primary["Arn"], Plaintext=b"mr")["CiphertextBlob"]
    assert _usage(kms, primary["Arn"])["KeyLastUsage"]["Operation"] == "Encrypt"
    west = server.client(region="eu-west-1")
    assert _usage(west, replica_arn)["KeyLastUsage"] == {}
    west.decrypt(CiphertextBlob=blob, KeyId=replica_arn)
    assert _usage(west, replica_arn)["KeyLastUsage"]["Operation"] == "Decrypt"
    assert _usage(kms, primary["Arn"])["KeyLastUsage"]["Operation"] == "Encrypt"


def test_the_record_survives_a_kill_and_the_call_leaves_nothing_secret(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as srv:
        kms = srv.client()
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.encrypt(KeyId=key, Plaintext=b"kill-canary-7d1f")
        before = _usage(kms, key)
        srv.stop(signal.SIGKILL)
    with running_server(tmp_path / "data") as srv:
        kms = srv.client()
        assert _usage(kms, key) == before
        ct = srv.client("cloudtrail")
        events = ct.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "GetKeyLastUsage"}]
        )["Events"]
        record = json.loads(events[0]["CloudTrailEvent"])
        assert record["requestParameters"] == {"keyId": key}
        assert record["readOnly"] is True
        assert record["resources"][0]["ARN"].endswith(f":key/{key}")
    trail = (tmp_path / "data" / "audit.db").read_bytes()
    assert b"kill-canary-7d1f" not in trail
    assert base64.b64encode(b"kill-canary-7d1f") not in trail


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with access_env(tmp_path_factory.mktemp("last-usage")) as environment:
        yield environment


def test_the_caller_needs_kms_get_key_last_usage(env: Env) -> None:
    key = env.key()["Arn"]
    encrypt_only = env.user("usage-none", identity(identity_statement("Allow", "kms:Encrypt")))
    reader = env.user(
        "usage-reader", identity(identity_statement("Allow", "kms:GetKeyLastUsage", key))
    )
    encrypt_only.client().encrypt(KeyId=key, Plaintext=b"x")
    message = denied(lambda: encrypt_only.client().get_key_last_usage(KeyId=key))
    assert "kms:GetKeyLastUsage" in message
    assert reader.client().get_key_last_usage(KeyId=key)["KeyLastUsage"]["Operation"] == "Encrypt"


def test_two_workers_see_each_other_s_calls(tmp_path: Path) -> None:
    """With ``--workers 2`` a call answered by one worker is what the other reports: each
    reader ingests the trail writer's journal first."""
    with running_server(tmp_path / "data", "--workers", "2") as srv:
        key = srv.client().create_key()["KeyMetadata"]["KeyId"]
        for round_ in range(12):
            kms = srv.client()  # a new connection: either worker may answer either call
            done = kms.encrypt(KeyId=key, Plaintext=b"w%d" % round_)
            use = srv.client().get_key_last_usage(KeyId=key)["KeyLastUsage"]
            assert use["KmsRequestId"] == _request_id(done), round_
