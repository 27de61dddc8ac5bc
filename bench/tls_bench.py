"""Benchmark what HTTPS costs: Encrypt through ``serve`` over HTTP and over TLS, side by side.

In one run, with authz_bench.py's machinery (servers on free loopback ports, requests
pre-signed with SigV4 and replayed by wrk with ``wrk_replay.lua``, CPU accounting), two servers:

* (a) ``strongroom serve`` over plain HTTP;
* (b) ``strongroom serve --tls-cert --tls-key`` with a fresh self-signed P-256 certificate
  (made by ``openssl req``, as the README shows): wrk keeps its connections open, so this is
  the cost of TLS records on a warm connection, not of handshakes.

The loads are interleaved (a, b, a, b, ...) for ``--rounds`` rounds and the median round of each
is reported with the ratio b/a. Needs wrk (built with OpenSSL, as Debian's is), openssl and the
bench extra. See bench/README.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from authz_bench import finish, kms_client, run_rounds, strongroom, variant_args, variant_settings
from kms_bench import wrk_binary
from kms_report import LoadResult, rounds_table

LABELS = {"a-http": "(a) HTTP", "b-https": "(b) HTTPS (TLS 1.3)"}


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, made as the README's HTTPS section shows."""
    openssl = shutil.which("openssl")
    if openssl is None:
        sys.exit("tls_bench.py needs openssl (Debian: apt-get install openssl)")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def report(rounds: dict[str, list[LoadResult]]) -> list[str]:
    lines, medians, per_cpu = rounds_table(rounds, LABELS, 22)
    ratio = medians["b-https"] / medians["a-http"]
    cpu_ratio = per_cpu["b-https"] / per_cpu["a-http"]
    return [*lines, "", f"b/a = {ratio:.2f} req/s ({cpu_ratio:.2f} per server CPU-second)"]


def main(argv: list[str] | None = None) -> int:
    args = variant_args(argv, __doc__.split("\n\n")[0])
    wrk_binary()
    settings = variant_settings(args)
    print(
        f"Encrypt (32 bytes, 2-pair encryption context) over HTTP and HTTPS: "
        f"wrk -t{settings.threads} -c{settings.connections} -d{settings.duration}s x "
        f"{args.rounds} interleaved rounds, serve --workers {settings.workers}"
    )
    with tempfile.TemporaryDirectory(prefix="tls-bench-") as tmp:
        workdir = Path(tmp)
        cert, key = self_signed(workdir)
        os.environ["AWS_CA_BUNDLE"] = str(cert)  # boto3 (creating the keys) trusts it
        tls = ("--tls-cert", str(cert), "--tls-key", str(key))
        with (
            strongroom(settings, workdir / "http.log", "http") as http,
            strongroom(settings, workdir / "https.log", "https", *tls) as https,
        ):
            https.scheme = "https"
            plan = [
                ("a-http", http, kms_client(http).create_key()["KeyMetadata"]["KeyId"]),
                ("b-https", https, kms_client(https).create_key()["KeyMetadata"]["KeyId"]),
            ]
            rounds = run_rounds(plan, LABELS, settings, args.rounds, workdir)
    return finish(args, "tls_bench", rounds, report(rounds))


if __name__ == "__main__":
    sys.exit(main())
