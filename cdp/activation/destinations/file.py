"""File: one CSV or Parquet file per batch (by default one per segment, operation and run):
`{path}/{destination}/{segment}/{time}-{add|remove}-{batch}.{csv|parquet}` with columns
operation, reason and the configured fields. Written atomically; a batch resent after a crash
rewrites the same file, so nothing is exported twice."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cdp.activation.config import FileDestination, expand_path
from cdp.activation.destinations.base import Adapter, Batch, BatchResult
from cdp.activation.payload import generic_keys
from cdp.config import Settings
from cdp.io import atomic_path


class FileAdapter(Adapter):
    config: FileDestination

    def __init__(self, config: FileDestination, settings: Settings) -> None:
        super().__init__(config, settings)
        self.keys = generic_keys(config.fields, settings.default_region)

    def path(self, batch: Batch) -> object:
        stamp = batch.created_at.strftime("%Y%m%dT%H%M%SZ")
        folder = expand_path(self.config.path, self.settings) / self.name / batch.segment
        return folder / f"{stamp}-{batch.operation}-{batch.batch_id[:12]}.{self.config.format}"

    def send(self, batch: Batch) -> BatchResult:
        columns: dict[str, list] = {
            "operation": [batch.operation] * len(batch),
            "reason": batch.reasons,
        }
        records = batch.records([k.name for k in self.keys])
        for key in self.keys:
            columns[key.name] = [row[key.name] for row in records]
        table = pa.table({name: pa.array(values, pa.string())
                          for name, values in columns.items()})
        with atomic_path(self.path(batch)) as tmp:  # type: ignore[arg-type]
            if self.config.format == "csv":
                pacsv.write_csv(table, tmp)
            else:
                pq.write_table(table, tmp)
        return BatchResult.ok(len(batch))
