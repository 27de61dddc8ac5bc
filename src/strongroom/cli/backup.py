"""``strongroom backup`` and ``strongroom restore``: a data directory's state, copied
consistently while ``serve`` runs, and put back into a new directory (:mod:`strongroom.backup`)."""

from __future__ import annotations

from pathlib import Path

import click

from strongroom.backup import BackupError
from strongroom.backup import backup as make_backup
from strongroom.backup import restore as put_back
from strongroom.cli import DATA_DIR_OPTION, DATABASE_URL_OPTION

__all__ = ["backup", "restore"]


@click.command()
@DATA_DIR_OPTION
@DATABASE_URL_OPTION
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
def backup(data_dir: Path, database_url: str | None, out: Path) -> None:
    """Back up the data directory into the new directory OUT, also while serve runs: the
    key store and the audit trail (consistent snapshots), the root key, the trail's signing
    key, the credentials, and every HSM's sealed store. OUT holds every secret the data
    directory does: keep it as you keep the data directory."""
    if database_url is not None:
        raise click.ClickException(
            "with --database-url the key store and the trail are in that database: back it up "
            "with PostgreSQL's tools (pg_dump), and the data directory's root.key, "
            "audit-signing.key and hsms/ with serve stopped"
        )
    try:
        files = make_backup(data_dir, out)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up {len(files)} files from {data_dir} into {out}")


@click.command()
@DATA_DIR_OPTION
@click.argument("source", type=click.Path(file_okay=False, exists=True, path_type=Path))
def restore(data_dir: Path, source: Path) -> None:
    """Restore the backup SOURCE into --data-dir, which must be new or empty. Every file is
    checked against the backup's manifest first. Start serve on it afterwards."""
    try:
        files = put_back(source, data_dir)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {len(files)} files from {source} into {data_dir}")
