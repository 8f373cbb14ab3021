"""Where things live in the lake: raw, quarantine and the load log. One place for every path.

Layout (see DESIGN.md):

    {lake}/raw/<channel>/load_date=YYYY-MM-DD/<batch_id>.parquet         accepted rows, typed
    {lake}/quarantine/<channel>/load_date=YYYY-MM-DD/<batch_id>.parquet  rejected rows, verbatim
    {lake}/_meta/load_log/<batch_id>.parquet                             one row per batch

A batch counts as committed only when its load-log entry exists (`ingest` writes it last). A
crash can leave raw/quarantine files of an uncommitted batch behind until the next `cdp ingest`
of that channel sweeps them; readers that must never see them use `committed_raw_files`.

Globs are strings for DuckDB's `read_parquet`. Because the folders are named `load_date=...`,
DuckDB adds a `load_date` column (hive partitioning) unless told `hive_partitioning = false`.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.config import Settings
from cdp.errors import CdpError

# Channel names become folder names: keep them to characters that are safe in paths and globs.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

LOAD_LOG_SCHEMA = pa.schema([
    ("batch_id", pa.string()),
    ("channel", pa.string()),
    ("file", pa.string()),             # path relative to the landing directory
    ("file_bytes", pa.int64()),
    ("format", pa.string()),
    ("status", pa.string()),           # "loaded" (failed batches write nothing; see ONBOARDING.md)
    ("rows_received", pa.int64()),
    ("rows_loaded", pa.int64()),
    ("rows_quarantined", pa.int64()),
    ("quarantine_reasons", pa.string()),  # JSON object: reason -> rows
    ("load_date", pa.date32()),
    ("raw_file", pa.string()),         # relative to the lake; null when no row was loaded
    ("quarantine_file", pa.string()),  # relative to the lake; null when nothing was rejected
    ("loaded_at", pa.timestamp("us")),  # UTC
    ("seconds", pa.float64()),
    # rows of people erased by `cdp forget`, dropped at ingest (received = loaded + quarantined
    # + erased); null in entries written before erasure existed
    ("rows_erased", pa.int64()),
])


def _checked(channel: str) -> str:
    if not _SAFE_NAME.match(channel):
        raise CdpError(f"channel name {channel!r} is not usable as a folder name")
    return channel


def raw_dir(settings: Settings, channel: str) -> Path:
    return settings.resolved_paths.raw / _checked(channel)


def quarantine_dir(settings: Settings, channel: str) -> Path:
    return settings.resolved_paths.quarantine / _checked(channel)


def load_log_dir(settings: Settings) -> Path:
    return settings.resolved_paths.meta / "load_log"


def raw_glob(settings: Settings, channel: str) -> str:
    """Every raw Parquet file of a channel, e.g. `{lake}/raw/web_orders/*/*.parquet`."""
    return str(raw_dir(settings, channel) / "*" / "*.parquet")


def quarantine_glob(settings: Settings, channel: str) -> str:
    """Every quarantine Parquet file of a channel."""
    return str(quarantine_dir(settings, channel) / "*" / "*.parquet")


def load_log_glob(settings: Settings) -> str:
    """Every load-log entry (one Parquet file per committed batch)."""
    return str(load_log_dir(settings) / "*.parquet")


def partition(load_date: date) -> str:
    return f"load_date={load_date.isoformat()}"


def raw_path(settings: Settings, channel: str, load_date: date, batch_id: str) -> Path:
    return raw_dir(settings, channel) / partition(load_date) / f"{batch_id}.parquet"


def quarantine_path(settings: Settings, channel: str, load_date: date, batch_id: str) -> Path:
    return quarantine_dir(settings, channel) / partition(load_date) / f"{batch_id}.parquet"


def load_log_path(settings: Settings, batch_id: str) -> Path:
    return load_log_dir(settings) / f"{batch_id}.parquet"


def read_load_log(settings: Settings) -> pa.Table:
    """The whole load log as an Arrow table (empty, with its schema, when nothing was loaded).

    DuckDB queries it directly: `con.sql("select * from log")` with `log = read_load_log(s)`.
    """
    files = sorted(load_log_dir(settings).glob("*.parquet"))
    if not files:
        return LOAD_LOG_SCHEMA.empty_table()
    return pa.concat_tables([_read_entry(path) for path in files])


def _read_entry(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise CdpError(f"load-log entry {path} is unreadable ({type(exc).__name__}); restore "
                       f"it, or delete it and that batch's raw/quarantine files to reload it"
                       ) from None
    # Entries written by an older version may lack newer columns: those read as null.
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in LOAD_LOG_SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=LOAD_LOG_SCHEMA)


def committed_batches(settings: Settings, channel: str | None = None) -> dict[str, str]:
    """batch_id -> channel for every committed batch (of one channel, when given)."""
    log = read_load_log(settings)
    pairs = zip(log.column("batch_id").to_pylist(), log.column("channel").to_pylist(),
                log.column("status").to_pylist(), strict=True)
    return {
        batch: owner for batch, owner, status in pairs
        if status == "loaded" and (channel is None or owner == channel)
    }


def committed_raw_files(settings: Settings, channel: str) -> list[Path]:
    """The channel's raw files that belong to committed batches (never a crashed leftover)."""
    committed = committed_batches(settings, channel)
    return sorted(p for p in raw_dir(settings, channel).glob("*/*.parquet") if p.stem in committed)
