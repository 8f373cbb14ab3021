"""The DuckDB engine: an in-memory DuckDB database holds the working tables of one run.

Results reach the warehouse through `cdp.warehouse` (see `identity.store`), so a failed run never
leaves half-written identity tables behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cdp.config import Settings

# DuckDB would take 80% of RAM; the pipeline is sized to stay well below that (see benchmarks).
DEFAULT_MEMORY_LIMIT = "4GB"
MEMORY_LIMIT_ENV = "CDP_IDENTITY_MEMORY_LIMIT"


class DuckDBEngine:
    name = "duckdb"

    def __init__(self, settings: Settings) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="cdp-identity-"))
        self.con = duckdb.connect(":memory:")
        self.con.execute("set memory_limit = ?",
                         [os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)])
        self.con.execute("set temp_directory = ?", [str(self._tmp)])
        self.con.execute("set preserve_insertion_order = false")
        self.con.execute("set threads = ?", [os.cpu_count() or 1])

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, list(params or []))

    def create_table(self, name: str, select_sql: str,
                     params: Sequence[Any] | None = None, *, single_use: bool = False) -> None:
        # always a table (`single_use` is for engines whose tables cost a job each)
        self.con.execute(f'create or replace table "{name}" as {select_sql}', list(params or []))

    def drop_table(self, name: str) -> None:
        self.con.execute(f'drop table if exists "{name}"')

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        rows = self.con.execute(sql, list(params or [])).fetchall()
        return rows[0][0] if rows else None

    def to_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        return self.con.sql(sql, params=list(params or [])).to_arrow_table()

    def from_arrow(self, name: str, table: pa.Table) -> None:
        view = f"__arrow_{name}"
        self.con.register(view, table)
        try:
            self.con.execute(f'create or replace table "{name}" as select * from "{view}"')
        finally:
            self.con.unregister(view)

    def register_parquet(self, name: str, files: Sequence[Path]) -> None:
        self.con.read_parquet([str(f) for f in files], union_by_name=True).create_view(
            name, replace=True)

    def columns(self, name: str) -> list[str]:
        return list(self.con.table(name).columns)

    def map_distinct(self, name: str, select_sql: str, columns: Sequence[str],
                     fn: Callable[..., tuple[Any, ...]], out_schema: pa.Schema) -> None:
        cols = ", ".join(f'"{c}"' for c in columns)
        distinct = self.to_arrow(f"select distinct {cols} from ({select_sql}) as s")
        inputs = [distinct.column(c).to_pylist() for c in columns]
        outputs = [fn(*values) for values in zip(*inputs, strict=True)]
        out_columns = {c: distinct.column(c) for c in columns}
        for i, field in enumerate(out_schema):
            out_columns[field.name] = pa.array([o[i] for o in outputs], type=field.type)
        self.from_arrow(name, pa.table(out_columns))

    def splink_db_api(self) -> Any:
        from splink import DuckDBAPI

        return DuckDBAPI(self.con)

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
