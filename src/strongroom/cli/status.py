"""``strongroom status``: a one-screen health view of a running Strongroom.

It asks the service, as any client would: ``GET /metrics`` (version, key counts, HSM health,
alarm states), STS GetCallerIdentity (the account), cloudhsmv2 DescribeClusters (clusters and
HSMs by AZ and state) and KMS DescribeCustomKeyStores (connection states). Credentials come from
``<data-dir>/credentials`` (profile ``strongroom``) if that file exists, else from the usual
AWS configuration. Exit status 1 if the service is unreachable, 2 if an alarm is firing.
"""

from __future__ import annotations

import ssl
import sys
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
from botocore.config import Config as BotoConfig
from botocore.session import Session
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from strongroom.bootstrap import PROFILE
from strongroom.monitoring.alarms import read_states
from strongroom.monitoring.loop import ALARM_STATES_FILE

__all__ = ["status"]

Samples = dict[str, list[tuple[dict[str, str], float]]]


def _scrape(endpoint: str, ca_bundle: str | None) -> Samples:
    context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
    url = f"{endpoint}/metrics"
    with urllib.request.urlopen(url, timeout=10, context=context) as resp:  # noqa: S310
        text = resp.read().decode()
    out: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name].append((dict(s.labels), s.value))
    return out


def _session(data_dir: Path | None, region: str) -> Session:
    session = Session()
    creds = None if data_dir is None else data_dir / "credentials"
    if creds is not None and creds.exists():
        session.set_config_variable("credentials_file", str(creds))
        session.set_config_variable("config_file", str(data_dir / "config"))  # type: ignore[operator]
        session.set_config_variable("profile", PROFILE)
    session.set_config_variable("region", region)
    return session


def _clients(session: Session, endpoint: str, region: str, ca_bundle: str | None) -> dict[str, Any]:
    cfg = BotoConfig(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=15)
    return {
        name: session.create_client(
            name, region_name=region, endpoint_url=endpoint, config=cfg, verify=ca_bundle
        )
        for name in ("sts", "kms", "cloudhsmv2")
    }


def _service(console: Console, endpoint: str, metrics: Samples, clients: dict[str, Any]) -> None:
    version = next((lab["version"] for lab, _ in metrics.get("strongroom_build_info", [])), "?")
    try:
        account = clients["sts"].get_caller_identity()["Account"]
    except Exception as exc:  # the view still shows what it can
        account = f"unknown ({type(exc).__name__})"
    console.print(
        f"[bold]Strongroom[/] {version} at {endpoint}: [green]reachable[/]; account {account}"
    )


def _keys(console: Console, metrics: Samples) -> None:
    table = Table(title="KMS keys", title_justify="left")
    for col in ("State", "Key spec", "Count"):
        table.add_column(col)
    rows = sorted(metrics.get("strongroom_kms_keys", []), key=lambda r: sorted(r[0].items()))
    for labels, value in rows:
        table.add_row(labels["state"], labels["key_spec"], f"{value:g}")
    console.print(table if rows else "KMS keys: none")


def _clusters(console: Console, metrics: Samples, hsm_client: Any) -> None:
    health = {lab["hsm_id"]: v for lab, v in metrics.get("HsmUnhealthy", [])}
    clusters = hsm_client.describe_clusters()["Clusters"]
    if not clusters:
        console.print("Clusters: none")
        return
    table = Table(title="Clusters and HSMs", title_justify="left")
    for col in ("Cluster", "State", "AZ", "HSM", "HSM state", "ENI IP", "Health"):
        table.add_column(col)
    for c in clusters:
        hsms = sorted(c.get("Hsms", []), key=lambda h: (h["AvailabilityZone"], h["HsmId"]))
        if not hsms:
            table.add_row(c["ClusterId"], c["State"], "", "", "", "", "")
        for i, h in enumerate(hsms):
            bad = health.get(h["HsmId"])
            mark = "" if bad is None else ("[red]UNHEALTHY[/]" if bad else "[green]ok[/]")
            table.add_row(
                c["ClusterId"] if i == 0 else "", c["State"] if i == 0 else "",
                h["AvailabilityZone"], h["HsmId"], h["State"], h.get("EniIp", ""), mark,
            )  # fmt: skip
    console.print(table)


def _stores(console: Console, kms: Any) -> None:
    stores = kms.describe_custom_key_stores()["CustomKeyStores"]
    if not stores:
        console.print("Custom key stores: none")
        return
    table = Table(title="Custom key stores", title_justify="left")
    for col in ("Name", "Id", "Cluster", "Connection state"):
        table.add_column(col)
    for s in stores:
        state = s["ConnectionState"]
        if s.get("ConnectionErrorCode"):
            state += f" ({s['ConnectionErrorCode']})"
        table.add_row(
            s["CustomKeyStoreName"], s["CustomKeyStoreId"], s.get("CloudHsmClusterId", ""), state
        )
    console.print(table)


def _alarms(console: Console, metrics: Samples, data_dir: Path | None) -> int:
    alarms = metrics.get("strongroom_alarm_firing", [])
    firing = [lab["alarm"] for lab, v in alarms if v]
    states = read_states(data_dir / ALARM_STATES_FILE) if data_dir is not None else {}
    if not firing:
        console.print(f"Alarms: {len(alarms)} defined, [green]none firing[/]")
        return 0
    console.print(f"Alarms: [red]{len(firing)} firing[/] of {len(alarms)}")
    for name in firing:
        reason = states.get(name, {}).get("reason", "")
        console.print(f"  [red]ALARM[/] {name}" + (f": {reason}" if reason else ""))
    return 2


@click.command("status")
@click.option("--endpoint-url", default="http://127.0.0.1:4599", show_default=True,
              envvar="AWS_ENDPOINT_URL")  # fmt: skip
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="STRONGROOM_DATA_DIR",
    help="Use this data directory's credentials (and its alarm reasons).",
)
@click.option("--region", default="us-east-1", show_default=True, envvar="AWS_DEFAULT_REGION")
@click.option(
    "--ca-bundle",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    envvar="AWS_CA_BUNDLE",
    help="Over HTTPS: the certificate(s) to trust for the endpoint (as the aws CLI's).",
)
def status(endpoint_url: str, data_dir: Path | None, region: str, ca_bundle: str | None) -> None:
    """One screen: service, keys, clusters and HSMs, key stores, firing alarms."""
    console = Console(width=max(100, Console().width))
    endpoint = endpoint_url.rstrip("/")
    session = _session(data_dir, region)
    # as the aws CLI: --ca-bundle, else AWS_CA_BUNDLE, else the profile's ca_bundle (the one
    # serve --tls-self-signed writes)
    ca_bundle = ca_bundle or session.get_config_variable("ca_bundle")
    try:
        metrics = _scrape(endpoint, ca_bundle)
    except OSError as exc:
        console.print(f"[bold]Strongroom[/] at {endpoint}: [red]unreachable[/] ({exc})")
        sys.exit(1)
    clients = _clients(session, endpoint, region, ca_bundle)
    _service(console, endpoint, metrics, clients)
    _keys(console, metrics)
    try:
        _clusters(console, metrics, clients["cloudhsmv2"])
        _stores(console, clients["kms"])
    except Exception as exc:  # e.g. credentials not allowed to describe
        console.print(f"[yellow]could not read: {exc}[/]")
    sys.exit(_alarms(console, metrics, data_dir))
