"""Writing identity outputs to the warehouse and reading them back (for evaluate / explain)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.io import atomic_path
from cdp.warehouse import connect

SCHEMA = "identity"
# Replaced by every full run. The tables that outlive runs (id registry, history, overrides, run
# log) are `identity.state.PERSISTENT`: never replaced, updated in the same transaction.
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


@contextmanager
def transaction(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write warehouse connection inside one transaction: committed when the block ends,
    rolled back (nothing written) when it raises."""
    con = _connect(settings, read_only=False)
    try:
        con.execute("begin transaction")
        try:
            con.execute(f"create schema if not exists {SCHEMA}")
            yield con
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.close()


def write_tables(settings: Settings, tables: dict[str, pa.Table],
                 persist: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> None:
    """Replace the identity tables in one transaction: readers see the previous run's tables or
    this run's, never a mix (a crash mid-write leaves the previous good state). `persist`, when
    given, updates the tables that outlive runs (ids, history, run log) in that same
    transaction."""
    with transaction(settings) as con:
        for name, table in tables.items():
            replace_from_arrow(con, name, table)
        if persist is not None:
            persist(con)


def replace_from_arrow(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """`identity.<name>` replaced by an Arrow table (inside the caller's transaction)."""
    view = f"__new_{name}"
    con.register(view, table)
    try:
        con.execute(f'create or replace table {SCHEMA}."{name}" as select * from "{view}"')
    finally:
        con.unregister(view)


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = ?", [SCHEMA, name]).fetchall()[0][0])


def open_warehouse_if_any(settings: Settings) -> duckdb.DuckDBPyConnection | None:
    """A read-only warehouse connection, or None when there is no warehouse yet."""
    if not settings.resolved_paths.warehouse.exists():
        return None
    return _connect(settings, read_only=True)


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
