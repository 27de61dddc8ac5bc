"""``strongroom serve``: run the service (KMS API on one port)."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from strongroom.audit.writer_process import WriterProcess
from strongroom.bootstrap import PROFILE, ensure_admin, set_ca_bundle
from strongroom.crypto.self_test import SelfTestFailure, run_self_tests
from strongroom.crypto.server_cert import certificate_hosts, self_signed_server_certificate
from strongroom.files import replace_text
from strongroom.metrics.multiprocess import fresh_multiprocess_dir
from strongroom.monitoring.alarm_config import AlarmConfigError
from strongroom.server import (
    CONFIG_ENV,
    MAX_CONNECTIONS,
    Config,
    DataDirLocked,
    build,
    config_to_env,
    lock_data_dir,
)
from strongroom.storage.pg_deadline import DEADLINE_ENV, PG_STATEMENT_DEADLINE

__all__ = ["SELF_SIGNED_CERT", "SELF_SIGNED_KEY", "TLS12_CIPHERS", "self_signed_files", "serve"]

#: ``--tls-self-signed``: the certificate and key files in the data dir
SELF_SIGNED_CERT = "tls-self-signed.crt"
SELF_SIGNED_KEY = "tls-self-signed.key"

#: the TLS 1.2 cipher suites HTTPS offers (TLS 1.3's are all AEAD and forward-secret already)
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

#: testing and benchmarks only: lets ``--insecure-no-audit-trail`` through
NO_TRAIL_ENV = "STRONGROOM_TESTING_ALLOW_NO_TRAIL"


def _export(name: str, value: float) -> float:
    """An option the worker processes and the trail writer read from the environment."""
    os.environ[name] = repr(value)
    return value


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="STRONGROOM_HOST")
@click.option("--port", default=4599, show_default=True, type=int, envvar="STRONGROOM_PORT")
@click.option(
    "--data-dir",
    default="./.strongroom",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="STRONGROOM_DATA_DIR",
)
@click.option(
    "--account-id", default="111122223333", show_default=True, envvar="STRONGROOM_ACCOUNT_ID"
)
@click.option(
    "--database-url",
    default=None,
    envvar="STRONGROOM_DATABASE_URL",
    help="postgresql://... to use PostgreSQL (default: SQLite in the data dir)",
)
@click.option(
    "--scheduler-interval",
    default=60.0,
    show_default=True,
    type=float,
    envvar="STRONGROOM_SCHEDULER_INTERVAL",
    help="Seconds between scheduler passes (due deletions).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    envvar="STRONGROOM_WORKERS",
    help="Worker processes sharing the port (caches stay coherent through the database).",
)
@click.option(
    "--max-connections",
    default=MAX_CONNECTIONS,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    envvar="STRONGROOM_MAX_CONNECTIONS",
    help="Open connections each process keeps; one more is answered 503 ServiceUnavailable "
    "and closed (each holds at most a 16 KiB request head and a 64 KiB body).",
)
@click.option(
    "--pg-statement-deadline",
    default=PG_STATEMENT_DEADLINE,
    show_default=True,
    type=click.FloatRange(0, 3600),
    envvar=DEADLINE_ENV,
    callback=lambda _ctx, _param, value: _export(DEADLINE_ENV, value),
    help="PostgreSQL only: seconds a round trip to the database may take before its "
    "connection is closed and the call answers 503 (0: no limit).",
)
@click.option(
    "--insecure-open-access",
    is_flag=True,
    hidden=True,
    help="Benchmarks only: skip key policies, IAM policies and grants (a baseline).",
)
@click.option(
    "--insecure-no-audit-trail",
    is_flag=True,
    hidden=True,
    help="Benchmarks only: record no audit trail (the trail-off baseline); refused unless "
    "STRONGROOM_TESTING_ALLOW_NO_TRAIL=1.",
)
@click.option(
    "--alarms-config",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    envvar="STRONGROOM_ALARMS_CONFIG",
    help="Alarm definitions, JSON or YAML (see docs/monitoring.md).",
)
@click.option(
    "--tls-cert",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    envvar="STRONGROOM_TLS_CERT",
    help="Serve HTTPS: the server's certificate (PEM, with any intermediates after it).",
)
@click.option(
    "--tls-key",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    envvar="STRONGROOM_TLS_KEY",
    help="The private key of --tls-cert (PEM, unencrypted).",
)
@click.option(
    "--tls-self-signed",
    is_flag=True,
    envvar="STRONGROOM_TLS_SELF_SIGNED",
    help="Serve HTTPS with a certificate of its own, made on first start in the data dir; "
    "the data dir's aws CLI profile trusts it (ca_bundle).",
)
@click.option(
    "--clock-offset-file",
    default=None,
    envvar="STRONGROOM_CLOCK_OFFSET_FILE",
    hidden=True,
    help="Testing: a file holding seconds added to the domain clock.",
)
def serve(
    host: str,
    port: int,
    data_dir: Path,
    account_id: str,
    database_url: str | None,
    scheduler_interval: float,
    workers: int,
    max_connections: int,
    pg_statement_deadline: float,
    insecure_open_access: bool,
    insecure_no_audit_trail: bool,
    alarms_config: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_self_signed: bool,
    clock_offset_file: str | None,
) -> None:
    """Run Strongroom: the AWS KMS API on http://HOST:PORT/ (https with --tls-cert)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    _self_test()
    config = Config(
        data_dir=data_dir.resolve(),
        host=host,
        port=port,
        account_id=account_id,
        database_url=database_url,
        scheduler_interval=scheduler_interval,
        clock_offset_file=clock_offset_file,
        workers=workers,
        max_connections=max_connections,
        insecure_open_access=insecure_open_access,
        insecure_no_audit_trail=insecure_no_audit_trail,
        alarms_config=str(Path(alarms_config).resolve()) if alarms_config else None,
        tls_cert=str(Path(tls_cert).resolve()) if tls_cert else None,
        tls_key=str(Path(tls_key).resolve()) if tls_key else None,
    )
    config = _no_trail_only_for_tests(_with_tls(config, tls_self_signed))
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        lock = lock_data_dir(config.data_dir)
    except DataDirLocked as exc:
        _refuse(str(exc), 1)
    writer = None
    if not config.insecure_no_audit_trail:
        writer = WriterProcess(config.data_dir, config.database_url)
        config = dataclasses.replace(config, trail_socket=writer.socket)
        writer.start()  # it waits for the trail's tables, which build() makes on PostgreSQL
    try:
        runtime = build(config)
        if writer is not None:
            writer.wait_ready()
    except (AlarmConfigError, RuntimeError) as exc:
        if writer is not None:
            writer.stop()
        _refuse(f"{'--alarms-config: ' if isinstance(exc, AlarmConfigError) else ''}{exc}", 2)
    ensure_admin(config.data_dir, runtime.identities, runtime.roles, account_id, "us-east-1")
    set_ca_bundle(
        config.data_dir, Path(config.tls_cert) if tls_self_signed and config.tls_cert else None
    )
    _banner(config, tls_self_signed)
    options = _uvicorn_options(config)
    if workers > 1:
        runtime.close()
        os.environ[CONFIG_ENV] = config_to_env(config)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_multiprocess_dir(config.data_dir))
        uv_config = uvicorn.Config(
            "strongroom.server:worker_app", factory=True, workers=workers, **options
        )
    else:
        uv_config = uvicorn.Config(runtime.app, **options)
    server = uvicorn.Server(uv_config)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was installed before it: make that one end the process with status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    try:
        if workers > 1:
            sock = uv_config.bind_socket()
            Multiprocess(uv_config, sockets=[sock]).run()
        else:
            server.run()
    finally:
        if writer is not None:
            writer.stop()  # after the last call was answered
        lock.close()
        click.echo("Strongroom stopped.")


def _self_test() -> None:
    """The cryptographic self-tests (:mod:`strongroom.crypto.self_test`), before anything else."""
    try:
        run_self_tests()
    except SelfTestFailure as exc:
        _refuse(f"cryptographic self-test failed ({exc}); not serving", 3)


def _no_trail_only_for_tests(config: Config) -> Config:
    if config.insecure_no_audit_trail and os.environ.get(NO_TRAIL_ENV) != "1":
        _refuse(
            "--insecure-no-audit-trail is for benchmarks and tests only: the audit trail cannot "
            f"be turned off by configuration (a benchmark sets {NO_TRAIL_ENV}=1)",
            2,
        )
    return config


def _refuse(problem: str, status: int) -> NoReturn:
    click.echo(f"strongroom serve: {problem}", err=True)
    sys.exit(status)


def _exit_cleanly(signum: int, frame: object) -> None:
    del signum, frame
    sys.exit(0)


def _uvicorn_options(config: Config) -> dict[str, Any]:
    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "loop": "uvloop",
        "http": "strongroom.api.http_protocol:EdgeProtocol",
        "proxy_headers": False,
        "server_header": False,
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        "limit_concurrency": config.max_connections,  # connections (EdgeProtocol)
    }
    if config.tls_cert:
        # TLS 1.2 at least (Python's server default), and only forward-secret AEAD suites in it
        options |= {
            "ssl_certfile": config.tls_cert,
            "ssl_keyfile": config.tls_key,
            "ssl_ciphers": TLS12_CIPHERS,
        }
    return options


def _with_tls(config: Config, self_signed: bool) -> Config:
    """``config`` with --tls-self-signed's files in place; refuse TLS options that cannot
    serve HTTPS."""
    if self_signed and (config.tls_cert or config.tls_key):
        _refuse("--tls-self-signed or --tls-cert/--tls-key, not both", 2)
    if self_signed:
        config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert, key = self_signed_files(config.data_dir, config.host)
        config = dataclasses.replace(config, tls_cert=str(cert), tls_key=str(key))
    if problem := _tls_problem(config):
        _refuse(problem, 2)
    return config


def _tls_problem(config: Config) -> str:
    """Why --tls-cert and --tls-key cannot serve HTTPS ('' if they can, or are not given)."""
    if bool(config.tls_cert) != bool(config.tls_key):
        return "--tls-cert and --tls-key go together"
    if not config.tls_cert:
        return ""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            return "--tls-key is not the private key of --tls-cert's certificate"
        return "--tls-cert/--tls-key: not a PEM certificate and an unencrypted PEM private key"
    except OSError as exc:
        return f"--tls-cert/--tls-key: {exc.strerror or exc}"
    return ""


def self_signed_files(data_dir: Path, host: str) -> tuple[Path, Path]:
    """``--tls-self-signed``'s certificate and key in the data dir: made on first start, and
    made again should the certificate not name the host ``serve`` listens on (on every
    address: the machine's host name)."""
    cert, key = data_dir / SELF_SIGNED_CERT, data_dir / SELF_SIGNED_KEY
    wildcard = host in {"0.0.0.0", "::", ""}
    wanted = {"127.0.0.1", "localhost", socket.gethostname() if wildcard else host}
    if cert.exists() and key.exists() and wanted <= certificate_hosts(cert.read_bytes()):
        return cert, key
    cert_pem, key_pem = self_signed_server_certificate(sorted(wanted))
    replace_text(key, key_pem.decode("ascii"), mode=0o600)
    replace_text(cert, cert_pem.decode("ascii"))
    return cert, key


def _tls_hint(config: Config, self_signed: bool) -> str:
    """What the banner says of trusting the HTTPS certificate ('' over plain HTTP)."""
    if self_signed:
        hint = f"the profile trusts the self-signed certificate: ca_bundle = {config.tls_cert}"
        if os.environ.get("AWS_CA_BUNDLE"):
            hint += (
                "; AWS_CA_BUNDLE is set here, and it takes precedence over a profile's "
                "ca_bundle: unset it, or set it to that file"
            )
        return f"({hint})\n"
    if config.tls_cert:
        return (
            "(over HTTPS they must trust the certificate's issuer: the aws CLI's --ca-bundle, "
            "or AWS_CA_BUNDLE, names its certificate)\n"
        )
    return ""


def _banner(config: Config, self_signed: bool = False) -> None:
    endpoint = f"{config.scheme}://{config.host}:{config.port}"
    rel = config.data_dir
    click.echo(
        f"Strongroom is serving the AWS KMS API at {endpoint} (account {config.account_id}).\n"
        f"Data: {rel} ({'PostgreSQL' if config.database_url else 'SQLite'})\n"
        "Use it with the aws CLI or boto3:\n"
        f"  export AWS_SHARED_CREDENTIALS_FILE={rel}/credentials AWS_CONFIG_FILE={rel}/config "
        f"AWS_PROFILE={PROFILE}\n"
        f"  aws kms create-key --endpoint-url {endpoint}\n" + _tls_hint(config, self_signed),
    )
    sys.stdout.flush()
