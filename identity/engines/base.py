"""What an identity engine must offer the engine-neutral pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa


class Engine(Protocol):
    """A SQL engine holding the pipeline's working tables (temporary, per run)."""

    name: str

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run one statement."""

    def create_table(self, name: str, select_sql: str,
                     params: Sequence[Any] | None = None, *, single_use: bool = False) -> None:
        """Create (or replace) working table `name` from a query. `single_use`: one later
        query reads it, so an engine may leave it a view that query computes."""

    def drop_table(self, name: str) -> None:
        """Forget a working table."""

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """The first column of the first row of a query."""

    def to_arrow(self, sql: str, params: Sequence[Any] | None = None) -> pa.Table:
        """A query's result as an Arrow table (for Python-side work on small results)."""

    def from_arrow(self, name: str, table: pa.Table) -> None:
        """Store an Arrow table as working table `name`."""

    def register_parquet(self, name: str, files: Sequence[Path]) -> None:
        """A view `name` over Parquet files, columns unified by name."""

    def columns(self, name: str) -> list[str]:
        """Column names of a working table or view."""

    def map_distinct(self, name: str, select_sql: str, columns: Sequence[str],
                     fn: Callable[..., tuple[Any, ...]], out_schema: pa.Schema) -> None:
        """Working table `name`: each distinct row of `columns` from `select_sql` with the outputs
        of `fn(*values)` appended (a Python function applied once per distinct value)."""

    def splink_db_api(self) -> Any:
        """Splink's database API bound to the working tables."""

    def close(self) -> None:
        """Release the engine's resources."""
