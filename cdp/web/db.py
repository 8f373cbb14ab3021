"""Read-only access to the warehouse for the explorer and the report.

Every request opens its own read-only DuckDB connection and closes it at once: DuckDB lets a
writer in only when no reader holds the file, so a long-lived connection would block `cdp run`.
While a pipeline step holds the write lock, reads fail fast with `WarehouseUnavailable` (the app
shows a "try again" page, never a traceback).

Table names are chosen by code; values always go in as parameters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from cdp.config import Settings
from cdp.errors import CdpError
from cdp.warehouse import connect


class WarehouseUnavailable(CdpError):
    """The warehouse cannot be read right now (missing, or locked by a writer)."""


@contextlib.contextmanager
def read_warehouse(settings: Settings) -> Iterator[Reader]:
    """A `Reader` over a fresh read-only connection, closed on exit."""
    path = settings.resolved_paths.warehouse
    if not path.exists():
        raise WarehouseUnavailable(
            f"there is no warehouse at {path} yet: run `cdp run` (or `cdp resolve` and "
            "`cdp build`) first")
    try:
        con = connect(settings, read_only=True)
    except duckdb.ConnectionException:
        # This process already holds the database open for writing (in `cdp run`, dbt's
        # connection outlives the build step); DuckDB then only hands out connections of the
        # same kind. Joining it takes no new lock, and everything here only reads.
        con = connect(settings, read_only=False)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseUnavailable(
                "the warehouse is being written by another process (a pipeline run?); "
                "this page will work again when it finishes, so try again in a minute"
            ) from None
        raise WarehouseUnavailable(f"cannot open the warehouse {path}: "
                                   f"{str(exc).splitlines()[0]}") from None
    try:
        yield Reader(con)
    finally:
        con.close()


def plain(value: Any) -> Any:
    """JSON- and template-friendly: decimals as floats, dates as they are."""
    if isinstance(value, Decimal):
        return float(value)
    return value


class Reader:
    """Small helpers over one connection: rows as dicts, table existence."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._tables: set[tuple[str, str]] | None = None

    def has(self, schema: str, table: str) -> bool:
        if self._tables is None:
            self._tables = {(s, t) for s, t in self.con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "union all select schema_name, view_name from duckdb_views()").fetchall()}
        return (schema, table) in self._tables

    def rows(self, sql: str, params: list | None = None) -> list[dict[str, Any]]:
        cursor = self.con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [{k: plain(v) for k, v in zip(names, row, strict=True)}
                for row in cursor.fetchall()]

    def one(self, sql: str, params: list | None = None) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: list | None = None) -> Any:
        row = self.con.execute(sql, params or []).fetchone()
        return plain(row[0]) if row else None

    def erased_ids(self) -> set[str]:
        """Customers erased on request (`identity.erased_customers`; absent = nobody)."""
        if not self.has("identity", "erased_customers"):
            return set()
        return {r[0] for r in self.con.execute(
            "select distinct customer_id from identity.erased_customers "
            "where customer_id is not null").fetchall()}


def when(value: date | datetime | None) -> str:
    """A date or timestamp as text people read (minutes, no seconds)."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()
