"""CloudHSM control-plane rules (cloudhsm.md §1), through boto3 against a real server whose
HSMs are real node processes: FIPS-only hsm1.medium, regional clusters, reserved and repeated
tag keys, NextToken and filter checks, CreateHsm's IpAddress, InitializeCluster's certificates.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import random
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.cloudhsm.conftest import (
    ADMIN_PW,
    describe,
    hsm_cli,
    new_cluster,
    wait_cluster,
    wait_for,
)
from tests.conftest import Server

SUBNETS = ["subnet-0000000a", "subnet-0000000b"]


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def refused(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    return code(exc)


def test_hsm1_medium_clusters_run_in_fips_mode_only(hsm: Any) -> None:
    assert (
        refused(hsm.create_cluster, HsmType="hsm1.medium", SubnetIds=SUBNETS, Mode="NON_FIPS")
        == "CloudHsmInvalidRequestException"
    )
    cluster = hsm.create_cluster(HsmType="hsm1.medium", SubnetIds=SUBNETS)["Cluster"]
    assert cluster["Mode"] == "FIPS"
    hsm.delete_cluster(ClusterId=cluster["ClusterId"])


def test_clusters_are_regional(hsm: Any, hsm_server: Server) -> None:
    west = hsm_server.client("cloudhsmv2", region="us-west-2")
    cid = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=SUBNETS)["Cluster"]["ClusterId"]
    assert cid not in [c["ClusterId"] for c in west.describe_clusters()["Clusters"]]
    assert west.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"] == []
    calls = [
        (west.create_hsm, {"ClusterId": cid, "AvailabilityZone": "us-east-1a"}),
        (west.modify_cluster, {"ClusterId": cid}),
        (west.list_tags, {"ResourceId": cid}),
        (west.tag_resource, {"ResourceId": cid, "TagList": [{"Key": "k", "Value": "v"}]}),
        (west.delete_cluster, {"ClusterId": cid}),
        (west.initialize_cluster, {"ClusterId": cid, "SignedCert": "x", "TrustAnchor": "y"}),
    ]
    for call, kwargs in calls:
        assert refused(call, **kwargs) == "CloudHsmResourceNotFoundException", call
    assert describe(hsm, cid)["TagList"] == []
    # nor can another region's custom key store name it
    kms_west = hsm_server.client("kms", region="us-west-2")
    store = {
        "CustomKeyStoreName": "west",
        "TrustAnchorCertificate": "x",
        "KeyStorePassword": "kmsuser-pass",
    }
    missing = refused(kms_west.create_custom_key_store, CloudHsmClusterId=cid, **store)
    assert missing == "CloudHsmClusterNotFoundException"
    hsm.delete_cluster(ClusterId=cid)


def test_reserved_and_repeated_tag_keys_are_tag_errors(hsm: Any) -> None:
    for tags in (
        [{"Key": "aws:owner", "Value": "x"}],
        [{"Key": "AWS:Owner", "Value": "x"}],
        [{"Key": "team", "Value": "a"}, {"Key": "team", "Value": "b"}],
    ):
        assert (
            refused(hsm.create_cluster, HsmType="hsm2m.medium", SubnetIds=SUBNETS, TagList=tags)
            == "CloudHsmTagException"
        ), tags
    cid = hsm.create_cluster(
        HsmType="hsm2m.medium", SubnetIds=SUBNETS, TagList=[{"Key": "team", "Value": "a"}]
    )["Cluster"]["ClusterId"]
    for tags in (
        [{"Key": "aws:cloudformation:stack-name", "Value": "x"}],
        [{"Key": "env", "Value": "a"}, {"Key": "env", "Value": "b"}],
    ):
        assert refused(hsm.tag_resource, ResourceId=cid, TagList=tags) == "CloudHsmTagException"
    assert (
        refused(hsm.untag_resource, ResourceId=cid, TagKeyList=["aws:owner"])
        == "CloudHsmTagException"
    )
    assert hsm.list_tags(ResourceId=cid)["TagList"] == [{"Key": "team", "Value": "a"}]
    hsm.delete_cluster(ClusterId=cid)


def test_next_tokens_and_filters_are_checked(hsm: Any, hsm_server: Server) -> None:
    empty = hsm_server.client("cloudhsmv2", region="eu-west-1")  # no cluster, no backup there
    minus_one = base64.urlsafe_b64encode(b"-1").decode()
    for token in (minus_one, "@@@", base64.urlsafe_b64encode(b"001").decode(), "5"):
        assert refused(empty.describe_clusters, NextToken=token) == (
            "CloudHsmInvalidRequestException"
        ), token
        assert refused(empty.describe_backups, NextToken=token) == (
            "CloudHsmInvalidRequestException"
        ), token
    for call in (empty.describe_clusters, empty.describe_backups):
        assert refused(call, Filters={"nope": ["x"]}) == "CloudHsmInvalidRequestException"
    tags = [{"Key": f"k{i}", "Value": str(i)} for i in range(3)]
    cid = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=SUBNETS, TagList=tags)["Cluster"][
        "ClusterId"
    ]
    first = hsm.list_tags(ResourceId=cid, MaxResults=2)
    rest = hsm.list_tags(ResourceId=cid, MaxResults=2, NextToken=first["NextToken"])
    assert first["TagList"] + rest["TagList"] == tags and "NextToken" not in rest
    for token in ("zz", "2", minus_one):
        assert refused(hsm.list_tags, ResourceId=cid, NextToken=token) == (
            "CloudHsmInvalidRequestException"
        ), token
    hsm.delete_cluster(ClusterId=cid)


def _free_ip(network: str) -> str:
    net = ipaddress.IPv4Network(network)
    while True:
        ip = str(net[random.randint(2, net.num_addresses - 2)])
        with socket.socket() as sock:
            try:
                sock.bind((ip, 2223))
            except OSError:
                continue
            return ip


def test_create_hsm_ip_address_is_a_free_address_of_the_zone_subnet(hsm: Any) -> None:
    cid = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=SUBNETS)["Cluster"]["ClusterId"]
    wait_cluster(hsm, cid, "UNINITIALIZED")
    zone_b_ip = _free_ip("127.80.0.0/12")
    for ip in ("10.1.2.3", zone_b_ip, "127.64.0.0", "999.1.1.1"):
        assert (
            refused(hsm.create_hsm, ClusterId=cid, AvailabilityZone="us-east-1a", IpAddress=ip)
            == "CloudHsmInvalidRequestException"
        ), ip
    ip = _free_ip("127.64.0.0/12")
    first = hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1a", IpAddress=ip)["Hsm"]
    assert (first["EniIp"], first["SubnetId"]) == (ip, "subnet-0000000a")
    assert (
        refused(hsm.create_hsm, ClusterId=cid, AvailabilityZone="us-east-1a", IpAddress=ip)
        == "CloudHsmInvalidRequestException"
    )
    second = hsm.create_hsm(ClusterId=cid, AvailabilityZone="us-east-1b")["Hsm"]
    assert ipaddress.IPv4Address(second["EniIp"]) in ipaddress.IPv4Network("127.80.0.0/12")
    cluster = wait_cluster(hsm, cid, "UNINITIALIZED", 2)
    assert sorted(h["HsmId"] for h in cluster["Hsms"]) == sorted(
        [first["HsmId"], second["HsmId"]]
    )  # both came up where they were put: none was replaced
    assert hsm.delete_hsm(ClusterId=cid, EniIp=ip)["HsmId"] == first["HsmId"]
    assert hsm.delete_hsm(ClusterId=cid, EniId=second["EniId"])["HsmId"] == second["HsmId"]
    wait_for(lambda: describe(hsm, cid)["Hsms"], lambda h: h == [])
    hsm.delete_cluster(ClusterId=cid)


def _ca_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def _certificate(
    key: rsa.RSAPrivateKey,
    subject: x509.Name,
    public_key: Any,
    issuer: x509.Name,
    *,
    days: tuple[int, int] = (-1, 30),
    ca: bool = False,
) -> str:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _malformed_basic_constraints(pem: str) -> str:
    """The certificate with its Basic Constraints value made unparseable (its signature no
    longer matters: parsing fails first)."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    at = der.index(bytes.fromhex("30030101ff"))
    bad = der[:at] + bytes.fromhex("30030401ff") + der[at + 5 :]
    body = base64.encodebytes(bad).decode()
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"


def test_initialize_refuses_expired_or_malformed_certificates(hsm: Any) -> None:
    cid = new_cluster(hsm, ("a",))
    wait_cluster(hsm, cid, "UNINITIALIZED", 1)
    csr = x509.load_pem_x509_csr(
        wait_for(lambda: describe(hsm, cid)["Certificates"].get("ClusterCsr"), bool).encode()
    )
    key, name = _ca_key(), x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Customer CA")])
    anchor = _certificate(key, name, key.public_key(), name, ca=True)
    signed = _certificate(key, csr.subject, csr.public_key(), name)
    expired = _certificate(key, csr.subject, csr.public_key(), name, days=(-10, -1))
    old_anchor = _certificate(key, name, key.public_key(), name, days=(-10, -1), ca=True)
    for cert, trust in (
        (expired, anchor),
        (signed, old_anchor),
        (signed, _malformed_basic_constraints(anchor)),
    ):
        assert (
            refused(hsm.initialize_cluster, ClusterId=cid, SignedCert=cert, TrustAnchor=trust)
            == "CloudHsmInvalidRequestException"
        )
    assert describe(hsm, cid)["State"] == "UNINITIALIZED"
    hsm.initialize_cluster(ClusterId=cid, SignedCert=signed, TrustAnchor=anchor)
    wait_cluster(hsm, cid, "INITIALIZED", 1)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl on PATH")
def test_a_version_1_root_without_extensions_is_a_trust_anchor(
    hsm: Any, hsm_server: Server, tmp_path: Path
) -> None:
    """AWS requires Basic Constraints only of a trust anchor that uses X.509 v3 extensions; a v1
    root, as ``openssl x509 -req -signkey`` makes it, initializes and activates a cluster."""
    cid = new_cluster(hsm, ("a",))
    wait_cluster(hsm, cid, "UNINITIALIZED", 1)
    csr = wait_for(lambda: describe(hsm, cid)["Certificates"].get("ClusterCsr"), bool)
    (tmp_path / "cluster.csr").write_text(csr)
    ca_key, ca_csr, ca_crt = (str(tmp_path / n) for n in ("ca.key", "ca.csr", "customerCA.crt"))
    _openssl("genrsa", "-out", ca_key, "2048")
    _openssl("req", "-new", "-key", ca_key, "-subj", "/CN=Customer CA", "-out", ca_csr)
    _openssl("x509", "-req", "-in", ca_csr, "-signkey", ca_key, "-days", "30", "-out", ca_crt)
    anchor = Path(ca_crt).read_text()
    assert x509.load_pem_x509_certificate(anchor.encode()).version is x509.Version.v1
    signed = tmp_path / "cluster.crt"
    _openssl(
        "x509", "-req", "-in", str(tmp_path / "cluster.csr"), "-CA", ca_crt, "-CAkey", ca_key,
        "-CAcreateserial", "-days", "30", "-out", str(signed),
    )  # fmt: skip
    hsm.initialize_cluster(ClusterId=cid, SignedCert=signed.read_text(), TrustAnchor=anchor)
    wait_cluster(hsm, cid, "INITIALIZED", 1)
    status, out, err = hsm_cli(
        hsm_server, cid, Path(ca_crt), "cluster", "activate", "--password", ADMIN_PW
    )
    assert status == 0, (out, err)
    wait_cluster(hsm, cid, "ACTIVE", 1)
