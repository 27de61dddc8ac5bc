"""``serve --tls-cert --tls-key``: the API over real HTTPS, as AWS KMS is only reachable.

boto3 and the aws CLI trust the test's own CA (``verify`` / ``--ca-bundle``) and reach KMS and
CloudTrail; a client that does not trust it gets no answer; ``aws:SecureTransport`` is true
over HTTPS and false over HTTP; each call's trail record has CloudTrail's ``tlsDetails``;
``--workers 2`` serves HTTPS too; unusable certificate options stop ``serve`` with a message.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_encryption_sdk
import boto3
import botocore.session
import pytest
from aws_encryption_sdk.key_providers.kms import StrictAwsKmsMasterKeyProvider
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, SSLError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strongroom.crypto.server_cert import certificate_hosts
from tests.conftest import (
    ACCOUNT,
    AWS_CLI,
    REGION,
    STRONGROOM,
    Server,
    free_port,
    running_server,
)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA and a server certificate it issued for 127.0.0.1 and localhost."""
    base = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Strongroom test CA"))
        .issuer_name(_name("Strongroom test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": base / "ca.pem", "cert": base / "server.pem", "key": base / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(_pem(key))
    paths["key"].chmod(0o600)
    return paths


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory, pki: dict[str, Path]) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("tls") / "data"
    tls = ("--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]))
    with running_server(data, *tls) as srv:
        yield srv


def _url(server: Server) -> str:
    return f"https://127.0.0.1:{server.port}"


def _client(server: Server, service: str, verify: str | bool) -> Any:
    akid, secret = server.credentials()
    return boto3.client(
        service,
        endpoint_url=_url(server),
        region_name=REGION,
        aws_access_key_id=akid,
        aws_secret_access_key=secret,
        verify=verify,
        config=BotoConfig(retries={"max_attempts": 1}),
    )


def test_boto3_over_https_and_tls_details_in_the_trail(https: Server, pki: dict[str, Path]) -> None:
    assert f"serving the AWS KMS API at {_url(https)}" in https.log()
    kms = _client(https, "kms", str(pki["ca"]))
    key = kms.create_key(Description="over https")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"tls")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"tls"
    trail = _client(https, "cloudtrail", str(pki["ca"]))
    attrs = [{"AttributeKey": "EventName", "AttributeValue": "Decrypt"}]
    events = trail.lookup_events(LookupAttributes=attrs)["Events"]
    record = json.loads(events[0]["CloudTrailEvent"])
    details = record["tlsDetails"]
    assert details["tlsVersion"] == "TLSv1.3"
    assert details["cipherSuite"].startswith("TLS_")
    assert details["clientProvidedHostHeader"] == f"127.0.0.1:{https.port}"
    assert list(record)[-1] == "tlsDetails"  # after eventCategory, where CloudTrail puts it


def test_tls12_client_gets_a_forward_secret_aead_suite(https: Server) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", https.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.2"
        cipher = tls.cipher()
        assert cipher is not None and cipher[0].startswith("ECDHE-") and "GCM" in cipher[0]
    # a TLS 1.2 client offering only suites without forward secrecy finds none in common
    weak = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    weak.check_hostname = False
    weak.verify_mode = ssl.CERT_NONE
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("AES128-GCM-SHA256:AES256-SHA")
    with (
        socket.create_connection(("127.0.0.1", https.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
    ):
        weak.wrap_socket(raw, server_hostname="127.0.0.1")


def test_untrusted_and_plain_clients_get_no_answer(https: Server, pki: dict[str, Path]) -> None:
    with pytest.raises(SSLError):
        _client(https, "kms", True).list_keys()  # the system's trust store lacks the test CA
    with socket.create_connection(("127.0.0.1", https.port), timeout=10) as plain:
        plain.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" not in plain.recv(4096)  # a TLS alert or a closed connection
    assert _client(https, "kms", str(pki["ca"])).list_keys()["Keys"] is not None  # still up


_SECURE_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Root",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "HttpsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["kms:Encrypt", "kms:Decrypt"],
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ],
}


def test_secure_transport_condition(https: Server, server: Server, pki: dict[str, Path]) -> None:
    policy = json.dumps(_SECURE_ONLY)
    kms = _client(https, "kms", str(pki["ca"]))
    key = kms.create_key(Policy=policy)["KeyMetadata"]["KeyId"]
    assert kms.encrypt(KeyId=key, Plaintext=b"x")["KeyId"].endswith(key)
    plain = server.client()  # the shared plain-HTTP server of the other end-to-end tests
    plain_key = plain.create_key(Policy=policy)["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as denied:
        plain.encrypt(KeyId=plain_key, Plaintext=b"x")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "explicit deny in a resource-based policy" in denied.value.response["Error"]["Message"]


def test_aws_cli_and_status_with_ca_bundle(
    https: Server, pki: dict[str, Path], tmp_path: Path
) -> None:
    base = [AWS_CLI, "kms", "--endpoint-url", _url(https)]
    env = https.cli_env()
    (tmp_path / "p.bin").write_bytes(b"cli over tls")
    encrypt = [*base, "encrypt", "--key-id", _client(https, "kms", str(pki["ca"])).create_key()[
        "KeyMetadata"]["KeyId"], "--plaintext", f"fileb://{tmp_path / 'p.bin'}"]  # fmt: skip
    untrusted = subprocess.run(
        encrypt, env=env, check=False, capture_output=True, text=True, timeout=60
    )
    assert untrusted.returncode != 0 and "SSL" in untrusted.stderr
    trusted = subprocess.run(
        [*encrypt, "--ca-bundle", str(pki["ca"])], check=False, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    status = subprocess.run(
        [STRONGROOM, "status", "--endpoint-url", _url(https), "--data-dir", str(https.data_dir),
         "--ca-bundle", str(pki["ca"])],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert status.returncode == 0, status.stdout + status.stderr
    assert "reachable" in status.stdout and "unreachable" not in status.stdout


def test_two_workers_serve_https(tmp_path: Path, pki: dict[str, Path]) -> None:
    tls = ("--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]))
    with running_server(tmp_path / "data", "--workers", "2", *tls) as srv:
        kms = _client(srv, "kms", str(pki["ca"]))
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        for _ in range(6):  # a new connection each time: both workers get some
            fresh = _client(srv, "kms", str(pki["ca"]))
            blob = fresh.encrypt(KeyId=key, Plaintext=b"w")["CiphertextBlob"]
            assert fresh.decrypt(CiphertextBlob=blob)["Plaintext"] == b"w"


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("cert only", "--tls-cert and --tls-key go together"),
        ("swapped", "--tls-cert/--tls-key: not a PEM certificate and an unencrypted PEM"),
        ("other key", "--tls-key is not the private key of --tls-cert's certificate"),
    ],
)
def test_unusable_tls_options_stop_serve(
    tmp_path: Path, pki: dict[str, Path], which: str, message: str
) -> None:
    other = tmp_path / "other.key"
    other.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    args = {
        "cert only": ["--tls-cert", str(pki["cert"])],
        "swapped": ["--tls-cert", str(pki["key"]), "--tls-key", str(pki["cert"])],
        "other key": ["--tls-cert", str(pki["cert"]), "--tls-key", str(other)],
    }[which]
    proc = subprocess.run(
        [STRONGROOM, "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "d"),
         *args],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"strongroom serve: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr


def _https_only_role(server: Server, tmp_path: Path) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            }
        ],
    }
    policy = tmp_path / f"trust-{server.port}.json"
    policy.write_text(json.dumps(trust))
    name = f"https-only-{server.port}"
    made = subprocess.run(
        [STRONGROOM, "iam", "create-role", name, "--trust-policy", str(policy),
         "--data-dir", str(server.data_dir)],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def test_trust_policy_secure_transport(
    https: Server, server: Server, pki: dict[str, Path], tmp_path: Path
) -> None:
    role = _https_only_role(https, tmp_path)
    sts = _client(https, "sts", str(pki["ca"]))
    creds = sts.assume_role(RoleArn=role, RoleSessionName="tls")["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    plain_role = _https_only_role(server, tmp_path)
    with pytest.raises(ClientError) as denied:
        server.client("sts").assume_role(RoleArn=plain_role, RoleSessionName="plain")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


def test_encryption_sdk_over_https(
    https: Server, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Encryption SDK builds its own KMS clients: AWS_ENDPOINT_URL and AWS_CA_BUNDLE, the
    way a user points it at an HTTPS endpoint, are all it needs."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", _url(https))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(pki["ca"]))
    arn = _client(https, "kms", str(pki["ca"])).create_key()["KeyMetadata"]["Arn"]
    akid, secret = https.credentials()
    session = botocore.session.Session()
    session.set_credentials(akid, secret)
    session.set_config_variable("region", REGION)
    provider = StrictAwsKmsMasterKeyProvider(key_ids=[arn], botocore_session=session)
    client = aws_encryption_sdk.EncryptionSDKClient()
    ciphertext, _ = client.encrypt(source=b"sdk over tls", key_provider=provider)
    assert client.decrypt(source=ciphertext, key_provider=provider)[0] == b"sdk over tls"


def _profile_env(data_dir: Path) -> dict[str, str]:
    """The environment of a user who only set the data dir's profile (no CA options)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {
        "AWS_SHARED_CREDENTIALS_FILE": str(data_dir / "credentials"),
        "AWS_CONFIG_FILE": str(data_dir / "config"),
        "AWS_PROFILE": "strongroom",
    }


def test_self_signed_certificate_trusted_through_the_profile(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data, "--tls-self-signed") as srv:
        cert = data / "tls-self-signed.crt"
        assert (data / "tls-self-signed.key").stat().st_mode & 0o077 == 0
        assert f"ca_bundle = {cert}" in (data / "config").read_text()
        assert certificate_hosts(cert.read_bytes()) >= {"127.0.0.1", "localhost"}
        first = cert.read_bytes()
        env = _profile_env(data)
        cli = subprocess.run(
            [AWS_CLI, "kms", "create-key", "--endpoint-url", _url(srv)],
            check=False, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        status = subprocess.run(
            [STRONGROOM, "status", "--endpoint-url", _url(srv), "--data-dir", str(data)],
            check=False, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert status.returncode == 0 and "reachable" in status.stdout, status.stdout
        # boto3 with the profile (and nothing else) trusts it too
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                if name.startswith("AWS_"):
                    patch.setenv(name, value)
            patch.delenv("AWS_CA_BUNDLE", raising=False)
            session = boto3.Session(profile_name="strongroom", region_name=REGION)
            assert session.client("kms", endpoint_url=_url(srv)).list_keys()["Keys"]
    # a restart keeps the certificate; plain HTTP again drops the profile's ca_bundle line,
    # and only that line (the file is the user's too)
    with (data / "config").open("a") as config:
        config.write("cli_pager =\n")
    with running_server(data, "--tls-self-signed", env={"AWS_CA_BUNDLE": "/elsewhere"}) as srv:
        assert cert.read_bytes() == first
        # an AWS_CA_BUNDLE would win over the profile's ca_bundle: serve says so
        assert "AWS_CA_BUNDLE is set here, and it takes precedence" in srv.log()
    with running_server(data):
        text = (data / "config").read_text()
        assert "ca_bundle" not in text and "cli_pager =\n" in text and "region = " in text


def test_self_signed_and_own_certificate_exclude_each_other(
    tmp_path: Path, pki: dict[str, Path]
) -> None:
    proc = subprocess.run(
        [STRONGROOM, "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "d"),
         "--tls-self-signed", "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"])],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "strongroom serve: --tls-self-signed or --tls-cert/--tls-key, not both" in proc.stderr
