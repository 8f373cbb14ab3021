"""Writing identity outputs to the warehouse and reading them back (for evaluate / explain)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.io import atomic_path
from cdp.warehouse import connect

SCHEMA = "identity"
TABLES = ("identity_records", "identity_links", "identity_clusters", "golden_profiles",
          "identity_identifiers")


def artefacts_dir(settings: Settings) -> Path:
    return settings.resolved_paths.artefacts / "identity"


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _connect(settings: Settings, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return connect(settings, read_only=read_only)
    except duckdb.IOException as exc:  # typically another process holds the write lock
        raise CdpError(f"cannot open the warehouse {settings.resolved_paths.warehouse}: "
                       f"{str(exc).splitlines()[0]}") from exc


def write_tables(settings: Settings, tables: dict[str, pa.Table]) -> None:
    """Replace the identity tables in one transaction: readers see the previous run's tables or
    this run's, never a mix (a crash mid-write leaves the previous good state)."""
    con = _connect(settings, read_only=False)
    try:
        con.execute("begin transaction")
        try:
            con.execute(f"create schema if not exists {SCHEMA}")
            for name, table in tables.items():
                view = f"__new_{name}"
                con.register(view, table)
                con.execute(f'create or replace table {SCHEMA}."{name}" as select * from "{view}"')
                con.unregister(view)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
    finally:
        con.close()


def open_identity(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A read-only warehouse connection that has identity tables, or a clear error."""
    path = settings.resolved_paths.warehouse
    if not path.exists():
        raise CdpError(f"no warehouse at {path}: run `cdp resolve` first")
    con = _connect(settings, read_only=True)
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = 'identity_clusters'", [SCHEMA]).fetchall()[0][0]
    if not found:
        con.close()
        raise CdpError(f"the warehouse {path} has no identity tables: run `cdp resolve` first")
    return con
