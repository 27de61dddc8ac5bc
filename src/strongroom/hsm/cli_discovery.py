"""``hsm-cli --cluster-id``: find a cluster's HSMs through the cloudhsmv2 API (DescribeClusters),
with the usual AWS credential chain and ``--endpoint-url`` or ``AWS_ENDPOINT_URL``."""

from __future__ import annotations

import click

__all__ = ["NODE_PORT", "cluster_nodes"]

NODE_PORT = 2223


def cluster_nodes(cluster_id: str, endpoint_url: str | None, region: str | None) -> list[str]:
    """``ip:2223`` of every ACTIVE HSM of the cluster."""
    import boto3
    import botocore.exceptions

    try:
        client = boto3.client("cloudhsmv2", endpoint_url=endpoint_url, region_name=region)
        clusters = client.describe_clusters(Filters={"clusterIds": [cluster_id]})["Clusters"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise click.UsageError(f"cannot describe cluster {cluster_id}: {exc}") from None
    if not clusters:
        raise click.UsageError(f"cluster {cluster_id} not found")
    nodes = [f"{h['EniIp']}:{NODE_PORT}" for h in clusters[0]["Hsms"] if h["State"] == "ACTIVE"]
    if not nodes:
        raise click.UsageError(f"cluster {cluster_id} has no ACTIVE HSM")
    return nodes
