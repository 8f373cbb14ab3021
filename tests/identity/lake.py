"""Hand-made raw-lake batches for identity tests: exact control over every identity field.

Rows are written the way ingestion writes them (typed columns plus lineage, a load-log entry per
batch), so `identity.resolve` reads them through its normal path.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.config import Settings
from cdp.lake import LOAD_LOG_SCHEMA, load_log_path, raw_path

_ARROW = {"string": pa.string(), "integer": pa.int64(), "decimal": pa.decimal128(18, 2),
          "boolean": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us")}


def write_batch(settings: Settings, channel: str, rows: list[dict[str, Any]],
                ingested_at: datetime = datetime(2025, 1, 2, 3, 4, 5)) -> str:
    """Write `rows` (native column names; missing columns are null) as one committed batch."""
    spec = settings.channel(channel)
    batch_id = hashlib.sha256(
        (channel + json.dumps(rows, default=str) + ingested_at.isoformat()).encode()).hexdigest()
    fields = [pa.field(name, _ARROW[col.type]) for name, col in spec.columns.items()]
    fields += [pa.field("_batch_id", pa.string()), pa.field("_source_file", pa.string()),
               pa.field("_row_number", pa.int64()), pa.field("_ingested_at", pa.timestamp("us"))]
    schema = pa.schema(fields)
    data: dict[str, list[Any]] = {f.name: [] for f in schema}
    for number, row in enumerate(rows, start=1):
        unknown = set(row) - set(spec.columns)
        assert not unknown, f"{channel} has no column(s) {unknown}"
        full = {name: row.get(name) for name in spec.columns}
        if spec.event_time and full[spec.event_time] is None:
            full[spec.event_time] = datetime(2024, 6, 1, 12, 0)
        full.update(_batch_id=batch_id, _source_file=f"{channel}/test.csv",
                    _row_number=number, _ingested_at=ingested_at)
        for name, value in full.items():
            data[name].append(value)
    table = pa.table(data, schema=schema)
    load_date = date(2025, 1, 2)
    target = raw_path(settings, channel, load_date, batch_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target)
    log = {name: [None] for name in LOAD_LOG_SCHEMA.names}
    log.update(batch_id=[batch_id], channel=[channel], file=[f"{channel}/test.csv"],
               status=["loaded"], rows_received=[len(rows)], rows_loaded=[len(rows)],
               rows_quarantined=[0], load_date=[load_date], loaded_at=[ingested_at],
               raw_file=[str(target)])
    log_file = load_log_path(settings, batch_id)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(log, schema=LOAD_LOG_SCHEMA), log_file)
    return batch_id
