"""Writing rows to one Parquet file in bounded chunks, so a large file never sits in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

CHUNK_ROWS = 50_000
CHUNK_CHARS = 64 << 20  # flush early when rows carry large text (a quarantined 10 MB field)


class ChunkedParquetWriter:
    """Collect rows; write a row group every `chunk_rows` rows or ~64 MB of text.

    Rows are tuples of the schema's columns minus `constants` (columns with one value for the
    whole file, such as the batch id), in schema order. The file is created on the first flush:
    a writer that received no row leaves no file.
    """

    def __init__(self, path: Path, schema: pa.Schema, constants: dict[str, Any],
                 chunk_rows: int = CHUNK_ROWS) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._constants = constants
        self._varying = [f for f in schema if f.name not in constants]
        self._chunk_rows = chunk_rows
        self._pending: list[tuple[Any, ...]] = []
        self._chars = 0
        self._writer: pq.ParquetWriter | None = None

    def add(self, row: tuple[Any, ...], chars: int = 0) -> None:
        self._pending.append(row)
        self.rows += 1
        self._chars += chars
        if len(self._pending) >= self._chunk_rows or self._chars >= CHUNK_CHARS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        size = len(self._pending)
        columns = dict(zip((f.name for f in self._varying), zip(*self._pending, strict=True),
                           strict=True))
        arrays = [
            pa.array([self._constants[f.name]] * size, type=f.type) if f.name in self._constants
            else pa.array(columns[f.name], type=f.type)
            for f in self.schema
        ]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self._writer.write_table(table)
        self._pending = []
        self._chars = 0

    def close(self) -> bool:
        """Write what is left; True when the file exists (at least one row)."""
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            return True
        return False
