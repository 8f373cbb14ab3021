"""Lake path helpers and the load-log reader that other steps build on."""

from __future__ import annotations

import pytest

from cdp import lake
from cdp.errors import CdpError
from cdp.ingest import ingest
from tests.ingest.helpers import good_web_rows, land, query, web_csv


def test_globs_follow_the_documented_layout(settings) -> None:
    root = settings.resolved_paths.lake
    assert lake.raw_glob(settings, "web_orders") == f"{root}/raw/web_orders/*/*.parquet"
    assert lake.quarantine_glob(settings, "carts") == f"{root}/quarantine/carts/*/*.parquet"
    assert lake.load_log_glob(settings) == f"{root}/_meta/load_log/*.parquet"
    with pytest.raises(CdpError, match="not usable as a folder name"):
        lake.raw_glob(settings, "../etc")


def test_load_log_reads_empty_then_one_row_per_batch(settings) -> None:
    empty = lake.read_load_log(settings)
    assert empty.num_rows == 0 and empty.schema == lake.LOAD_LOG_SCHEMA
    land(settings, "web_orders", "a.csv", web_csv(*good_web_rows(2)))
    land(settings, "web_orders", "b.csv", web_csv(*good_web_rows(3, prefix="B")))
    ingest(settings)
    log = lake.read_load_log(settings)
    assert sorted(log.column("rows_loaded").to_pylist()) == [2, 3]
    # The same entries through DuckDB, straight from the files.
    assert query("select sum(rows_received) from read_parquet(?)",
                 [lake.load_log_glob(settings)]) == [(5,)]
    raw_files = lake.committed_raw_files(settings, "web_orders")
    assert {p.stem for p in raw_files} == set(log.column("batch_id").to_pylist())


def test_an_unreadable_load_log_entry_is_a_clear_error(settings) -> None:
    folder = lake.load_log_dir(settings)
    folder.mkdir(parents=True)
    (folder / "deadbeef.parquet").write_bytes(b"not parquet")
    with pytest.raises(CdpError, match="load-log entry .*deadbeef.parquet is unreadable"):
        lake.read_load_log(settings)
