"""``strongroom audit ...``: verify, read and export the audit trail and the HSM audit logs."""

from __future__ import annotations

import calendar
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import Engine

from strongroom.audit.hsm_logs import read_hsm_log
from strongroom.audit.journal import JournalDamaged, catch_up
from strongroom.audit.query import events_since, tail
from strongroom.audit.store import ChainBroken, TrailStore, open_trail_engine
from strongroom.audit.verify import verify_trail
from strongroom.cli import DATA_DIR_OPTION, DATABASE_URL_OPTION
from strongroom.crypto.audit_sign import TrailVerifier, load_or_create_signer
from strongroom.node import load_or_create_node_id
from strongroom.storage.engine import open_engine
from strongroom.storage.migrations import apply_migrations

__all__ = ["audit"]

F = TypeVar("F", bound=Callable[..., Any])


def _common(func: F) -> F:
    func = DATA_DIR_OPTION(func)
    func = DATABASE_URL_OPTION(func)
    return func


def _engine(data_dir: Path, database_url: str | None) -> Engine:
    if database_url is None and not (data_dir / "strongroom.db").exists():
        raise click.ClickException(f"no Strongroom database in {data_dir}")
    if database_url is not None:
        apply_migrations(open_engine(database_url))
    engine = open_trail_engine(data_dir, database_url)
    if database_url is None:
        # a running serve's latest calls may still be in its writer's journal only
        try:
            signer, node = load_or_create_signer(data_dir), load_or_create_node_id(data_dir)
            catch_up(TrailStore(engine, signer, node), data_dir)
        except ChainBroken as exc:
            raise click.ClickException(
                f"FAILED: the audit journal (audit.journal.*) does not continue the trail: {exc}"
            ) from None
        except JournalDamaged as exc:
            raise click.ClickException(f"FAILED: the audit journal: {exc}") from None
    return engine


def _since(text: str) -> float:
    """An ISO 8601 UTC time (2026-01-31T12:00:00Z, or a date) or epoch seconds."""
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(time.strptime(text, fmt)))
        except ValueError:
            continue
    try:
        return float(text)
    except ValueError:
        raise click.BadParameter(f"not a time: {text!r}") from None


@click.group("audit")
def audit() -> None:
    """The audit trail: verify it, read it, export it; the HSMs' audit logs."""


@audit.command("verify")
@_common
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM of the trail's public key (default: the data directory's trail key).",
)
@click.option(
    "--expect-digest",
    default=None,
    metavar="N:HASH",
    help="A digest kept elsewhere (as printed by an earlier verify): the trail must still "
    "hold it, which catches a tail cut off together with its digests.",
)
def verify(
    data_dir: Path, database_url: str | None, public_key: Path | None, expect_digest: str | None
) -> None:
    """Check the hash chain and every signed digest; name the first bad record."""
    if public_key is not None:
        key = TrailVerifier.from_pem(public_key.read_bytes())
    else:
        key = load_or_create_signer(data_dir).verifier()
    store = TrailStore(_engine(data_dir, database_url))
    report = verify_trail(store, key)
    if report.ok and expect_digest is not None:
        number, _, wanted = expect_digest.partition(":")
        if not (number.isdigit() and wanted):
            raise click.BadParameter("expected N:HASH", param_hint="--expect-digest")
        found = {d.seq: d.hash for d in store.digests()}.get(int(number))
        if found != wanted:
            what = "is missing" if found is None else "differs"
            click.echo(f"FAILED: digest {number} kept elsewhere {what}: the trail was cut "
                       "or rewritten", err=True)  # fmt: skip
            sys.exit(1)
    if report.ok:
        click.echo(f"OK: {report.entries} records, {report.digests} signed digests verified")
        if report.last_digest is not None:
            last, hashed = report.last_digest
            click.echo(f"last digest {last}:{hashed} (keep it elsewhere; --expect-digest)")
        return
    click.echo(f"FAILED: first bad record {report.first_bad_seq}: {report.problem}", err=True)
    sys.exit(1)


@audit.command("public-key")
@click.option(
    "--data-dir",
    default="./.strongroom",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="STRONGROOM_DATA_DIR",
)
def public_key(data_dir: Path) -> None:
    """Print the trail's public key (PEM) for verifying elsewhere."""
    click.echo(load_or_create_signer(data_dir).public_pem().decode().rstrip())


@audit.command("tail")
@_common
@click.option("-n", "--lines", default=20, show_default=True, type=click.IntRange(1, 10000))
def tail_cmd(data_dir: Path, database_url: str | None, lines: int) -> None:
    """Print the last events, one JSON object a line (oldest first)."""
    for row in tail(_engine(data_dir, database_url), lines):
        click.echo(row.body)


@audit.command("export")
@_common
@click.option("--since", "since", required=True, help="ISO 8601 UTC time or epoch seconds.")
@click.option("--intents", is_flag=True, help="Include the intent entries of the chain.")
def export(data_dir: Path, database_url: str | None, since: str, intents: bool) -> None:
    """Export events from a time on as JSON lines (oldest first)."""
    for row in events_since(_engine(data_dir, database_url), _since(since), intents):
        click.echo(row.body)


@audit.command("hsm")
@_common
@click.option("--cluster-id", required=True)
@click.option("--hsm-id", required=True)
@click.option("--from-seq", default=0, show_default=True, type=click.IntRange(0))
def hsm(
    data_dir: Path, database_url: str | None, cluster_id: str, hsm_id: str, from_seq: int
) -> None:
    """Print one HSM's collected audit log (gapless by the HSM's sequence number)."""
    for body in read_hsm_log(_engine(data_dir, database_url), cluster_id, hsm_id, from_seq):
        click.echo(body)
