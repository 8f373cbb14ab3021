"""Helpers for the ingestion tests: land files, read the lake back with DuckDB, check counts."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb

from cdp import lake
from cdp.config import Settings

WEB_HEADER = "order_id,ordered_at,order_total,first_name,last_name,customer_email,item_count"


def land(settings: Settings, channel: str, name: str, content: str | bytes,
         encoding: str = "utf-8") -> Path:
    """Write one landing file for `channel` (folder taken from the channel's path glob)."""
    folder = settings.resolved_paths.landing / settings.channel(channel).path.split("/")[0]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def web_row(order_id: str, first_name: str = "Ayşe", total: str = "10.50",
            ordered_at: str = "2024-03-01T10:00:00", email: str = "a@example.com",
            items: str = "1", last_name: str = "Yılmaz") -> str:
    return f"{order_id},{ordered_at},{total},{first_name},{last_name},{email},{items}"


def web_csv(*rows: str, header: str = WEB_HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def good_web_rows(n: int, prefix: str = "W") -> list[str]:
    return [web_row(f"{prefix}{i:04d}") for i in range(n)]


def query(sql: str, params: list[Any] | None = None) -> list[tuple]:
    with duckdb.connect() as con:
        return con.execute(sql, params or []).fetchall()


def raw_rows(settings: Settings, channel: str, columns: str = "*",
             order: str = "_source_file, _row_number") -> list[tuple]:
    if not list(lake.raw_dir(settings, channel).glob("*/*.parquet")):
        return []
    return query(f"select {columns} from read_parquet(?) order by {order}",
                 [lake.raw_glob(settings, channel)])


def quarantine_rows(settings: Settings, channel: str,
                    columns: str = "_row_number, _reason, _column") -> list[tuple]:
    if not list(lake.quarantine_dir(settings, channel).glob("*/*.parquet")):
        return []
    return query(f"select {columns} from read_parquet(?) order by _source_file, _row_number",
                 [lake.quarantine_glob(settings, channel)])


def log_rows(settings: Settings, channel: str | None = None) -> list[dict[str, Any]]:
    rows = lake.read_load_log(settings).to_pylist()
    return [r for r in rows if channel is None or r["channel"] == channel]


def assert_reconciled(settings: Settings) -> None:
    """Per batch: received = loaded + quarantined, and the lake holds exactly those rows."""
    for entry in log_rows(settings):
        assert entry["status"] == "loaded"
        assert entry["rows_received"] == entry["rows_loaded"] + entry["rows_quarantined"]
        batch, channel = entry["batch_id"], entry["channel"]
        in_raw = query("select count(*) from read_parquet(?) where _batch_id = ?",
                       [lake.raw_glob(settings, channel), batch]) if entry["raw_file"] else [(0,)]
        in_q = (query("select count(*) from read_parquet(?) where _batch_id = ?",
                      [lake.quarantine_glob(settings, channel), batch])
                if entry["quarantine_file"] else [(0,)])
        assert in_raw[0][0] == entry["rows_loaded"], entry["file"]
        assert in_q[0][0] == entry["rows_quarantined"], entry["file"]
        # Every received row number appears exactly once across raw + quarantine.
        numbers = []
        for glob, present in ((lake.raw_glob(settings, channel), entry["raw_file"]),
                              (lake.quarantine_glob(settings, channel),
                               entry["quarantine_file"])):
            if present:
                numbers += [r[0] for r in query(
                    "select _row_number from read_parquet(?) where _batch_id = ?", [glob, batch])]
        assert sorted(numbers) == list(range(1, entry["rows_received"] + 1)), entry["file"]


def lake_snapshot(settings: Settings) -> dict[str, str]:
    """Every file and folder under the lake with a hash of its bytes (folders: 'dir'); the lake
    lock `_meta/lake.lock` (taken by every ingest, see cdp.erasure.lock) is not data."""
    root = settings.resolved_paths.lake
    if not root.exists():
        return {}
    lock = root / "_meta" / "lake.lock"
    return {
        p.relative_to(root).as_posix():
            "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p != lock and not (p.is_dir() and {*p.rglob("*")} <= {lock})
    }
