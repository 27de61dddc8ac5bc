"""Prometheus metrics of ``serve`` (the CloudWatch role): requests, latencies, key counts."""
