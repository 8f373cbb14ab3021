"""The warehouse connection (DuckDB file by default) and atomic table replacement."""

from __future__ import annotations

from pathlib import Path

import duckdb

from cdp.config import Settings


def connect(settings: Settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    path: Path = settings.resolved_paths.warehouse
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


def replace_table(con: duckdb.DuckDBPyConnection, qualified_name: str, select_sql: str,
                  params: list | None = None) -> None:
    """Create or replace `schema.table` from a query in one transaction.

    Readers see either the old table or the new one, never a half-written table.
    `qualified_name` is an identifier chosen by code, never by data.
    """
    schema = qualified_name.split(".")[0] if "." in qualified_name else None
    con.execute("begin transaction")
    try:
        if schema:
            con.execute(f"create schema if not exists {schema}")
        con.execute(f"create or replace table {qualified_name} as {select_sql}", params or [])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
