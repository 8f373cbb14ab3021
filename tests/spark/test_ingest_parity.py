"""`cdp ingest` on Spark gives the lake, quarantine and load log of the local ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from cdp import lake
from cdp.config import Settings
from tests.ingest.helpers import assert_reconciled
from tests.spark.conftest import Parity

pytestmark = pytest.mark.spark

# What differs by nature between two runs: when they ran.
RUN_DEPENDENT = {"loaded_at", "seconds", "load_date", "raw_file", "quarantine_file"}


def _log(settings: Settings) -> list[dict[str, Any]]:
    entries = []
    for entry in lake.read_load_log(settings).to_pylist():
        kept = {k: v for k, v in entry.items() if k not in RUN_DEPENDENT}
        # the lake files are named by batch id under a load_date folder
        kept["raw_file"] = entry["raw_file"] and Path(entry["raw_file"]).name
        kept["quarantine_file"] = entry["quarantine_file"] and Path(entry["quarantine_file"]).name
        entries.append(kept)
    return sorted(entries, key=lambda e: (e["channel"], e["file"]))


def _rows(settings: Settings, glob: str) -> list[tuple]:
    """Every row of the files (all columns but `_ingested_at`), sorted."""
    with duckdb.connect() as con:
        rel = con.read_parquet(glob, union_by_name=True, hive_partitioning=False)
        columns = ", ".join(f'"{c}"' for c in rel.columns if c != "_ingested_at")
        return sorted(con.execute(f"select {columns} from read_parquet(?, union_by_name = true, "
                                  "hive_partitioning = false)", [glob]).fetchall(), key=repr)


def test_same_files_loaded_skipped_and_failed_with_the_same_counts(parity: Parity) -> None:
    duck, spark = parity.duckdb, parity.spark
    ignore = {"seconds"}
    figures = {k: v for k, v in duck.ingest.figures.items() if k not in ignore}
    assert figures["files_failed"] == 1 and figures["files_skipped"] == 1
    assert figures["rows_quarantined"] >= 4
    assert {k: v for k, v in spark.ingest.figures.items() if k not in ignore
            and k != "channels"} == {k: v for k, v in figures.items() if k != "channels"}
    for channel, tally in duck.ingest.figures["channels"].items():
        assert {k: v for k, v in spark.ingest.figures["channels"][channel].items()
                if k not in ignore} == {k: v for k, v in tally.items() if k not in ignore}
    # the file that failed as a whole is named, with its rule, the same way
    assert "zz_empty.csv: empty file" in spark.ingest_error
    assert spark.ingest_error == duck.ingest_error


def test_same_load_log(parity: Parity) -> None:
    duck = _log(parity.duckdb.settings)
    assert duck and any(e["rows_quarantined"] for e in duck)
    assert _log(parity.spark.settings) == duck


def test_same_raw_and_quarantined_rows_in_every_channel(parity: Parity) -> None:
    for channel in parity.duckdb.settings.channels:
        for glob in (lake.raw_glob, lake.quarantine_glob):
            duck_glob = glob(parity.duckdb.settings, channel)
            if not list(Path(duck_glob).parent.parent.glob("*/*.parquet")):
                continue
            expected = _rows(parity.duckdb.settings, duck_glob)
            assert _rows(parity.spark.settings, glob(parity.spark.settings, channel)) == \
                expected, (channel, glob.__name__)
    assert_reconciled(parity.spark.settings)


def test_ingested_at_follows_the_landing_order(parity: Parity) -> None:
    """The latest `_ingested_at` wins downstream: files staged in parallel must still be
    stamped in landing-file order, as the local ingest stamps them."""
    with duckdb.connect() as con:
        for channel in parity.spark.settings.channels:
            stamps = con.execute(
                "select _source_file, min(_ingested_at) from read_parquet(?, "
                "hive_partitioning = false) group by 1 order by 2",
                [lake.raw_glob(parity.spark.settings, channel)]).fetchall()
            assert [s[0] for s in stamps] == sorted(s[0] for s in stamps)


def test_rerun_on_spark_is_idempotent(parity: Parity) -> None:
    from cdp.ingest import IngestError, ingest

    settings = parity.spark.settings
    raw = str(settings.resolved_paths.raw / "*/*/*.parquet")
    before = (_log(settings), _rows(settings, raw))
    with pytest.raises(IngestError, match="zz_empty.csv: empty file") as failed:
        ingest(settings)
    figures = failed.value.summary.figures
    assert figures["files_loaded"] == 0
    assert figures["files_skipped"] == figures["files_seen"] - 1
    assert (_log(settings), _rows(settings, raw)) == before
